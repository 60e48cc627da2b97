#pragma once
// SocksFrontDoor: the per-connection SOCKS5 / SOCKS4 / SOCKS4a server state machine for the `socks5`
// listener kind. Sans-I/O (see include/ugate/front_door.h): it reads the greeting, the optional
// RFC 1929 authentication and the request, fills StreamMeta with the requested destination and
// answers with the reply code that matches the routing and dialling outcome.
#include <ugate/front_door.h>

#include "socks/socks_codec.h"
#include "socks/socks_options.h"

namespace ugate::socks {

class SocksFrontDoor final : public FrontDoor {
 public:
  /** @param opts the listener's options (shared, immutable; may not be null). */
  explicit SocksFrontDoor(SocksOptionsPtr opts);

  // ugate::FrontDoor
  FrontDoorResult onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) override;
  std::string onUpstreamResult(const StreamMeta& meta, Errc result) override;
  size_t maxSniffBytes() const override { return kMaxSniffBytes; }
  /** serve starts the UDP ASSOCIATE relay; the reply names its address (BND.ADDR, BND.PORT). */
  Result<LocalServicePtr> serve(ServiceContext& ctx, std::string& reply) override;

  /** replyFor maps a routing/dialling outcome to the SOCKS5 REP code. */
  static Reply replyFor(Errc e);

  // kMaxSniffBytes: the largest message is the RFC 1929 request (513 bytes); a request follows.
  static constexpr size_t kMaxSniffBytes = 1024;

 private:
  enum class State : uint8_t { Start, Greeting, Auth, Request, Socks4, Routed, Associate, Finished };

  FrontDoorResult onGreeting(std::span<const uint8_t> data);
  FrontDoorResult onAuth(std::span<const uint8_t> data);
  FrontDoorResult onRequest(std::span<const uint8_t> data, StreamMeta& meta);
  FrontDoorResult onSocks4(std::span<const uint8_t> data, StreamMeta& meta);
  /** setDestination fills meta with the requested destination. */
  static void setDestination(const Address& dst, StreamMeta& meta);

  SocksOptionsPtr opts_;
  State state_{State::Start};
  bool socks4_{false};  // socks4_: the request was SOCKS4/4a (replies use its format)
  Address udpClient_;   // udpClient_: UDP ASSOCIATE's DST, where the client will send from
};

}  // namespace ugate::socks
