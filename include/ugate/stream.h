#pragma once
// Stream: a bidirectional byte stream with half-close and backpressure, and StreamMeta, the metadata
// a connection carries from its front door to the access log.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ugate/result.h>
#include <ugate/socket_address.h>
#include <ugate/time.h>

namespace ugate {

enum class StreamKind : uint8_t {
  Tcp, Tls, Socks5, Socks4, HttpConnect, Sni, Redirect, Tproxy, H2, H3, Quic, UdpFlow, Push, Pipe,
};
const char* streamKindName(StreamKind k);

/** PeerIdentity: who the authenticated peer is (filled by the TLS/mTLS layer). */
struct PeerIdentity {
  std::string nodeId;
  std::string spiffe;
  std::vector<std::string> dnsSans;
};

/**
 * StreamMeta: filled by whoever knows a fact, never re-parsed downstream. Owned by the session that
 * wraps an accepted stream; upstream legs have none.
 */
struct StreamMeta {
  uint64_t id{0};
  StreamKind kind{StreamKind::Tcp};
  std::string listener;
  SocketAddress source;        // the client
  SocketAddress local;         // our address the client reached
  SocketAddress originalDst;   // SO_ORIGINAL_DST / TPROXY local / SOCKS or CONNECT target when an IP
  std::string host;            // requested host name (SOCKS/CONNECT authority, or the listener's `to`)
  uint16_t port{0};            // requested port
  std::string sni;
  std::string alpn;
  std::unique_ptr<PeerIdentity> peer;                                      // null when anonymous
  bool peerMatchedSpiffe{false};  // a route authorized the peer by its SPIFFE URI: the log shows that
  std::unique_ptr<std::vector<std::pair<std::string, std::string>>> headers;  // carried across tunnels
  std::string route;           // the route chosen: its name, `listener:<name>` (the listener's `to`), "" none
  std::string upstream;        // what was dialled, "host:port"
  SocketAddress upstreamAddr;  // resolved address dialled
  std::string upstreamSpiffe;  // a mesh (HBONE) hop must present this SPIFFE ID (Istio ambient); "" = any trusted
  MonotonicTime start{};
  uint64_t bytesFromClient{0};
  uint64_t bytesToClient{0};
  uint64_t packetsFromClient{0};  // datagram streams (UDP flows, SOCKS UDP relays) only
  uint64_t packetsToClient{0};
  Errc closeReason{Errc::Ok};
  std::string closeDetail;
};

class Stream;

/** StreamCallbacks: readiness notifications. Non-owning; runs on the stream's reactor. */
class StreamCallbacks {
 public:
  virtual ~StreamCallbacks() = default;
  /** onStreamReadable: data, EOF or an error can be read. */
  virtual void onStreamReadable(Stream& s) = 0;
  /** onStreamWritable: a write that would have blocked may now proceed. */
  virtual void onStreamWritable(Stream& s) = 0;
};

/**
 * Stream: pull-model byte stream. read() and write() never block: IoResult::wouldBlock() means wait for
 * the matching callback. Readiness is edge-triggered and remembered in readReady()/writeReady().
 */
class Stream {
 public:
  virtual ~Stream() = default;
  virtual void setCallbacks(StreamCallbacks* cb) = 0;
  /** read: value>0 bytes read; value==0 and ok() means EOF (peer half-closed). */
  virtual IoResult read(uint8_t* buf, size_t len) = 0;
  virtual IoResult write(const uint8_t* buf, size_t len) = 0;
  /** shutdownWrite sends FIN / END_STREAM after everything written so far. */
  virtual void shutdownWrite() = 0;
  /** close releases the stream; abort=true resets it (RST) instead of a clean close. */
  virtual void close(bool abort) = 0;
  /**
   * spliceFd: a kernel socket fd the splice engine may move bytes on directly (zero-copy), or -1.
   * A stream that buffers bytes in userland must return -1 while it does.
   */
  virtual int spliceFd() const { return -1; }
  /**
   * readNeedsCopy: reading this stream's spliceFd() with splice(2) would stall or lose bytes (TCP
   * urgent data: splice stops at the urgent mark and reports nothing more), so bytes from it must
   * go through read(). Writing to spliceFd() is unaffected.
   */
  virtual bool readNeedsCopy() const { return false; }

  bool readReady() const { return readReady_; }
  bool writeReady() const { return writeReady_; }
  /** clearReadReady/clearWriteReady: the caller saw EAGAIN on spliceFd(). */
  void clearReadReady() { readReady_ = false; }
  void clearWriteReady() { writeReady_ = false; }

 protected:
  bool readReady_{false};
  bool writeReady_{false};
};
using StreamPtr = std::unique_ptr<Stream>;

}  // namespace ugate
