#pragma once
// SocksUdpRelay: the UDP side of a SOCKS5 UDP ASSOCIATE (RFC 1928 §7), alive exactly as long as the
// TCP control connection (the session owns it as its LocalService). The client sends datagrams with
// a SOCKS UDP header to the relay socket; each is routed like a CONNECT to its DST (routes see the
// requested host and port; names resolve asynchronously) and sent, without the header, from one
// outbound socket per address family. Answers from those destinations come back to the client with
// a header naming their source. Datagrams from any address but the client's, fragments (FRAG != 0)
// and malformed headers are dropped and counted; so are answers from addresses the client did not
// send to.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/front_door.h>

#include "socks/socks_codec.h"
#include <ugate/datagram_io.h>
#include <ugate/flow_table.h>

namespace ugate::socks {

/** ClientDatagram: what the relay makes of one datagram from the client (sans-I/O). */
struct ClientDatagram {
  Errc drop{Errc::Ok};  // Ok: forward; else the reason it is dropped
  Address dst;
  size_t payloadOffset{0};
};

/**
 * decodeClientDatagram checks a client datagram: a well-formed header (ProtocolError), FRAG 0
 * (NotSupported: this relay does not reassemble), and a destination port that is not 0
 * (InvalidArgument).
 */
ClientDatagram decodeClientDatagram(std::span<const uint8_t> datagram);

/**
 * encodeReplyHeader writes the UDP header for an answer from `from` (an IPv4 or IPv6 address) into
 * out (at least 22 bytes); returns its length (10 or 22).
 */
size_t encodeReplyHeader(const SocketAddress& from, uint8_t* out);

class SocksUdpRelay final : public LocalService, private IoWatcher {
 public:
  /** kMaxDestinations: distinct destinations one association may use; more are dropped. */
  static constexpr size_t kMaxDestinations = 256;
  /** kMaxPending: datagrams held per destination while its name resolves. */
  static constexpr size_t kMaxPending = 8;

  /**
   * start opens the relay socket on the IP the client reached over TCP (port chosen by the
   * kernel). `requested` is the request's DST: the address the client will send from (0.0.0.0:0 or
   * a zero port when it does not know yet: the client's TCP address then, and the port of its
   * first datagram). Returns the relay, or an error for the SOCKS reply.
   */
  static Result<std::unique_ptr<SocksUdpRelay>> start(ServiceContext& ctx, const Address& requested);
  ~SocksUdpRelay() override;

  /** bound: where the client sends its datagrams (the reply's BND.ADDR and BND.PORT). */
  const SocketAddress& bound() const { return bound_; }

 private:
  struct Destination {
    bool resolving{false};
    SocketAddress addr;                 // valid once resolved
    std::vector<std::string> pending;   // payloads waiting for the address
    DnsQueryPtr dns;
  };
  /** Outbound: the socket toward destinations of one address family. */
  struct Outbound final : IoWatcher {
    SocksUdpRelay* relay{nullptr};
    int fd{-1};
    void onIoEvent(uint32_t) override { relay->readDestinations(*this); }
  };

  SocksUdpRelay(ServiceContext& ctx, int fd, SocketAddress bound, SocketAddress client);

  // ugate::IoWatcher (the relay socket, client side)
  void onIoEvent(uint32_t events) override;
  void readClient();
  void readDestinations(Outbound& o);
  /** forward routes and sends one payload; dst as the client named it. */
  void forward(const Address& dst, std::span<const uint8_t> payload);
  void sendTo(const SocketAddress& to, std::span<const uint8_t> payload);
  void flushOut();
  Outbound* outbound(int family);
  void resolved(const std::string& key, Result<std::vector<SocketAddress>> r);

  ServiceContext& ctx_;
  int fd_;
  SocketAddress bound_;
  SocketAddress client_;  // the allowed sender (port 0 until its first datagram pins it)
  std::map<std::string, Destination> dests_;  // by "host:port" as the client named it
  std::unordered_map<udp::FlowKey, bool, udp::FlowKeyHash> sentTo_;  // addresses answers may come from
  Outbound out4_, out6_;
  Outbound* pendingOut_{nullptr};  // the socket sendBatch_ holds datagrams for
  udp::SendBatch sendBatch_;
  std::array<std::array<uint8_t, 24>, udp::kBatch> headers_{};
};

}  // namespace ugate::socks
