#pragma once
// Batched datagram I/O: recvmmsg into per-thread buffers, sendmmsg of messages that point into them
// (no copy between the two), and the ancillary data a UDP gateway needs: the original destination
// of a TPROXY-captured datagram (IP_RECVORIGDSTADDR) and the local address a datagram reached on a
// wildcard socket (IP_PKTINFO), plus setting the source address of a reply.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include <ugate/result.h>
#include <ugate/socket_address.h>


namespace ugate::udp {

/** kMaxDatagram: the buffer of one slot; any UDP payload fits (65507 bytes over IPv4, 65527 IPv6). */
inline constexpr size_t kMaxDatagram = 65536;
/** kBatch: datagrams per recvmmsg/sendmmsg call. */
inline constexpr unsigned kBatch = 32;

/** Ancillary data a socket asks for on receive (set the matching option on the socket too). */
enum RecvFlags : uint8_t {
  kRecvOrigDst = 1,  // IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR
  kRecvPktInfo = 2,  // IP_PKTINFO / IPV6_RECVPKTINFO
  kRecvOverflow = 4,  // SO_RXQ_OVFL: datagrams the kernel dropped on a full receive queue
  kRecvTos = 8,       // IP_RECVTOS / IPV6_RECVTCLASS: the datagram's TOS / traffic class (ECN bits)
  kRecvGro = 16,      // UDP_GRO: the kernel may coalesce datagrams of one flow (Datagram::segSize)
};

/** Datagram: one slot of a RecvBatch after recv(). */
struct Datagram {
  uint8_t* data{nullptr};
  size_t len{0};
  SocketAddress peer;     // who sent it
  SocketAddress origDst;  // TPROXY: the address:port it was sent to (kRecvOrigDst)
  SocketAddress local;    // the local IP it reached, port 0 (kRecvPktInfo)
  bool truncated{false};  // larger than kMaxDatagram (MSG_TRUNC): must be dropped
  /**
   * segSize: with kRecvGro, the kernel coalesced several datagrams of one flow into this one: each
   * is segSize bytes (the last may be shorter). 0: one datagram. See segments().
   */
  uint16_t segSize{0};
  uint8_t tos{0};  // kRecvTos: the TOS byte / IPv6 traffic class; the low 2 bits are ECN
};

/**
 * forEachSegment calls fn(data, len) for each datagram a (possibly GRO-coalesced) buffer holds: segSize 0
 * or >= len is one datagram.
 */
template <typename Fn>
void forEachSegment(const uint8_t* data, size_t len, uint16_t segSize, Fn&& fn) {
  if (segSize == 0 || segSize >= len) {
    fn(data, len);
    return;
  }
  for (size_t at = 0; at < len; at += segSize) fn(data + at, len - at < segSize ? len - at : size_t{segSize});
}

/**
 * parseRecvCmsgs reads the ancillary data of one received message into d (origDst, local, segSize,
 * tos) and overflow (SO_RXQ_OVFL). Sans I/O: the message may be built by hand (unit tests).
 */
void parseRecvCmsgs(const msghdr& h, Datagram& d, uint32_t& overflow);
/**
 * kSendCmsgSpace: room for the ancillary data of one sent message: a source address
 * (IP_PKTINFO / IPV6_PKTINFO), a TOS / traffic class and a UDP_SEGMENT size.
 */
inline constexpr size_t kSendCmsgSpace =
    CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint16_t));
/**
 * buildSendCmsgs writes into buf (kSendCmsgSpace bytes, cmsghdr-aligned) the ancillary data of one
 * message to a peer of `family`: the source address `from` (when valid), the TOS / traffic class
 * `tos` (when not 0: IP_TOS for AF_INET, IPV6_TCLASS for AF_INET6) and, last, UDP_SEGMENT segSize
 * (when not 0). Returns the msg_controllen (0: none). Sans I/O.
 */
size_t buildSendCmsgs(uint8_t* buf, int family, const SocketAddress& from, uint8_t tos, uint16_t segSize);

/**
 * RecvBatch: kBatch slots of kMaxDatagram bytes. One per thread (recvBatch()); a batch's data is
 * valid until the next recv() on that thread, so a caller handles a batch fully before reading
 * again. Pages are touched only as far as datagrams fill them.
 */
class RecvBatch {
 public:
  RecvBatch();
  ~RecvBatch();
  RecvBatch(const RecvBatch&) = delete;
  RecvBatch& operator=(const RecvBatch&) = delete;
  /**
   * recv reads up to `max` (<= kBatch) datagrams from fd with one recvmmsg. value = datagrams read
   * (slots 0..value-1); wouldBlock() when none is waiting.
   */
  IoResult recv(int fd, uint8_t flags, unsigned max = kBatch);
  Datagram& operator[](size_t i) { return slots_[i]; }
  /**
   * kernelDrops: with kRecvOverflow, the socket's SO_RXQ_OVFL counter carried by the last recv()
   * (datagrams the kernel dropped on a full receive queue since the socket was created), or 0 when
   * the datagrams carried none (the kernel adds it only once it is not 0).
   */
  uint32_t kernelDrops() const { return kernelDrops_; }

 private:
  uint32_t kernelDrops_{0};
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Datagram slots_[kBatch];
};

/** recvBatch: this thread's RecvBatch (created on first use). */
RecvBatch& recvBatch();

/**
 * SendBatch: up to kBatch messages gathered and sent with one sendmmsg. Messages point at caller
 * memory (e.g. RecvBatch slots) that must stay valid until flush().
 */
class SendBatch {
 public:
  SendBatch();
  ~SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;
  /** Per-message outcome of flush(): err is 0 when the kernel took it. */
  struct Outcome {
    unsigned sent{0};
    unsigned dropped{0};
    int lastErr{0};  // the errno of the last dropped message
    bool gsoRefused{false};  // a segmented message got EIO: its segments went one by one
  };
  /**
   * add queues one datagram: `to` for an unconnected socket (invalid = connected), `from` sets the
   * source address (IP_PKTINFO / IPV6_PKTINFO; invalid = the kernel chooses). Returns false when
   * the batch is full (flush first).
   */
  bool add(const uint8_t* data, size_t len, const SocketAddress& to = {}, const SocketAddress& from = {});
  /**
   * addSegmented queues len bytes that are several datagrams of segSize bytes each (the last may
   * be shorter), sent with one message through UDP GSO (UDP_SEGMENT); segSize 0 or >= len is one
   * datagram. If the kernel or the device refuses GSO (EIO), flush() sends the segments one by one
   * and reports gsoRefused.
   */
  bool addSegmented(const uint8_t* data, size_t len, uint16_t segSize, const SocketAddress& to,
                    const SocketAddress& from, uint8_t tos = 0);
  /** head is an optional prefix sent before data in the same datagram (a SOCKS UDP header). */
  bool add2(const uint8_t* head, size_t headLen, const uint8_t* data, size_t len, const SocketAddress& to);
  unsigned size() const { return n_; }
  bool full() const { return n_ == kBatch; }
  /**
   * flush sends everything queued on fd (non-blocking). A message the kernel refuses (EAGAIN: the
   * socket buffer is full, ECONNREFUSED: an ICMP error came back, ...) is dropped, not retried:
   * that is what UDP promises. Empties the batch.
   */
  Outcome flush(int fd);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  unsigned n_{0};
};

/** dropReason maps the errno of a refused send to the reason a dropped datagram is counted under. */
Errc dropReason(int err);

/**
 * setRecvOptions enables the ancillary data of `flags` on a socket of `family`. Returns the failing
 * option's error (e.g. EPERM for IP_TRANSPARENT without CAP_NET_ADMIN).
 */
Result<void> setRecvOptions(int fd, int family, uint8_t flags);
/**
 * setBufferBytes asks for `bytes` of receive and send buffer (SO_RCVBUFFORCE with CAP_NET_ADMIN,
 * else SO_RCVBUF, which the kernel caps at net.core.rmem_max). Best effort.
 */
void setBufferBytes(int fd, int bytes);
/**
 * enableGro turns on UDP_GRO receive coalescing (Linux 5.0+): datagrams then come with
 * Datagram::segSize (ask for kRecvGro in recv()). Returns false when the kernel refuses it (then
 * every datagram arrives on its own, as before).
 */
bool enableGro(int fd);
/**
 * setDontFragment sets DF on what fd sends (IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE: never
 * fragmented, and the kernel's path-MTU cache is not applied), so a too-large path-MTU probe is
 * lost instead of fragmented. For AF_INET6 both options are set (an IPv4-mapped peer). Best effort.
 */
void setDontFragment(int fd, int family);

}  // namespace ugate::udp
