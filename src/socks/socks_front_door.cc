#include "socks/socks_front_door.h"

#include "socks/socks_udp_relay.h"

#include <algorithm>

namespace ugate::socks {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

SocksFrontDoor::SocksFrontDoor(SocksOptionsPtr opts) : opts_(std::move(opts)) {}

Reply SocksFrontDoor::replyFor(Errc e) {
  switch (e) {
    case Errc::Ok: return Reply::Succeeded;
    case Errc::RouteRejected:
    case Errc::NotExposed:
    case Errc::NoRoute: return Reply::NotAllowed;
    case Errc::NetworkUnreachable: return Reply::NetworkUnreachable;
    case Errc::HostUnreachable:
    case Errc::DnsFailure: return Reply::HostUnreachable;
    case Errc::ConnectRefused: return Reply::ConnectionRefused;
    case Errc::ConnectTimeout: return Reply::TtlExpired;
    case Errc::NotSupported: return Reply::CommandNotSupported;
    default: return Reply::GeneralFailure;
  }
}

void SocksFrontDoor::setDestination(const Address& dst, StreamMeta& meta) {
  meta.port = dst.port;
  if (dst.type == AddressType::Domain) {
    // A name may still be an IP literal ("127.0.0.1" sent as ATYP 03): treat it as the address.
    if (auto a = SocketAddress::fromIp(dst.host, dst.port)) {
      meta.host = a->ip();
      meta.originalDst = *a;
    } else {
      meta.host = lower(dst.host);
      meta.originalDst = SocketAddress{};
    }
    return;
  }
  // An IP: the host is its literal text (routes match it by CIDR), and it is the original
  // destination (StreamMeta: "SOCKS or CONNECT target when an IP"), so `to: "original"` dials it.
  meta.originalDst = dst.socketAddress();
  meta.host = meta.originalDst.ip();
}

FrontDoorResult SocksFrontDoor::onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) {
  switch (state_) {
    case State::Start:
      if (data.empty()) return FrontDoorResult::needMore();
      if (data[0] == kVersion5) {
        state_ = State::Greeting;
        return onGreeting(data);
      }
      if (data[0] == kVersion4) {
        state_ = State::Socks4;
        socks4_ = true;
        meta.kind = StreamKind::Socks4;
        return onSocks4(data, meta);
      }
      state_ = State::Finished;
      return FrontDoorResult::close(Errc::ProtocolError, "not a SOCKS client (first byte " +
                                                             std::to_string(data[0]) + ")");
    case State::Greeting: return onGreeting(data);
    case State::Auth: return onAuth(data);
    case State::Request: return onRequest(data, meta);
    case State::Socks4: return onSocks4(data, meta);
    case State::Routed:
    case State::Associate:
    case State::Finished: break;
  }
  return FrontDoorResult::close(Errc::ProtocolError, "SOCKS handshake already finished");
}

FrontDoorResult SocksFrontDoor::onGreeting(std::span<const uint8_t> data) {
  Greeting g;
  size_t n = 0;
  switch (parseGreeting(data, g, n)) {
    case Status::NeedMore: return FrontDoorResult::needMore();
    case Status::Error:
      state_ = State::Finished;
      return FrontDoorResult::close(Errc::ProtocolError, "malformed SOCKS5 greeting");
    case Status::Done: break;
  }
  const bool needAuth = !opts_->users.empty();
  if (needAuth && g.userPass) {
    state_ = State::Auth;
    return FrontDoorResult::replyAndRead(n, encodeMethodChoice(Method::UserPass));
  }
  if (!needAuth && g.noAuth) {
    state_ = State::Request;
    return FrontDoorResult::replyAndRead(n, encodeMethodChoice(Method::NoAuth));
  }
  // RFC 1928 §3: X'FF' and the client closes; we close too.
  state_ = State::Finished;
  return FrontDoorResult::close(Errc::AuthFailed,
                                needAuth ? "client did not offer username/password authentication"
                                         : "client did not offer the no-authentication method",
                                encodeMethodChoice(Method::NoAcceptable));
}

FrontDoorResult SocksFrontDoor::onAuth(std::span<const uint8_t> data) {
  UserPass up;
  size_t n = 0;
  switch (parseUserPass(data, up, n)) {
    case Status::NeedMore: return FrontDoorResult::needMore();
    case Status::Error:
      state_ = State::Finished;
      return FrontDoorResult::close(Errc::ProtocolError, "malformed RFC 1929 authentication request",
                                    encodeAuthStatus(false));
    case Status::Done: break;
  }
  if (!opts_->checkCredentials(up.user, up.password)) {
    state_ = State::Finished;
    // RFC 1929 §2: a failure status, then the server MUST close the connection.
    return FrontDoorResult::close(Errc::AuthFailed, "bad username or password for user '" + up.user + "'",
                                  encodeAuthStatus(false));
  }
  state_ = State::Request;
  return FrontDoorResult::replyAndRead(n, encodeAuthStatus(true));
}

FrontDoorResult SocksFrontDoor::onRequest(std::span<const uint8_t> data, StreamMeta& meta) {
  Request req;
  size_t n = 0;
  Reply err = Reply::GeneralFailure;
  switch (parseRequest(data, req, n, err)) {
    case Status::NeedMore: return FrontDoorResult::needMore();
    case Status::Error:
      state_ = State::Finished;
      return FrontDoorResult::close(
          err == Reply::AddressTypeNotSupported ? Errc::NotSupported : Errc::ProtocolError,
          err == Reply::AddressTypeNotSupported ? "SOCKS5 address type not supported"
                                                : "malformed SOCKS5 request",
          encodeReply(err));
    case Status::Done: break;
  }
  if (req.command == static_cast<uint8_t>(Command::UdpAssociate)) {
    // The session keeps the control connection and serves it with a relay (serve()).
    udpClient_ = req.dst;
    state_ = State::Associate;
    return FrontDoorResult::serve(n);
  }
  if (req.command != static_cast<uint8_t>(Command::Connect)) {
    state_ = State::Finished;
    // BIND is answered 07 (RFC 1928 allows it): nothing asks for it in practice.
    const char* what = req.command == static_cast<uint8_t>(Command::Bind) ? "BIND" : "unknown command";
    return FrontDoorResult::close(Errc::NotSupported, std::string("SOCKS5 ") + what + " not supported",
                                  encodeReply(Reply::CommandNotSupported));
  }
  if (req.dst.port == 0) {
    state_ = State::Finished;
    return FrontDoorResult::close(Errc::InvalidArgument, "SOCKS5 CONNECT to port 0",
                                  encodeReply(Reply::GeneralFailure));
  }
  setDestination(req.dst, meta);
  state_ = State::Routed;
  return FrontDoorResult::route(n);
}

FrontDoorResult SocksFrontDoor::onSocks4(std::span<const uint8_t> data, StreamMeta& meta) {
  Socks4Request req;
  size_t n = 0;
  switch (parseSocks4Request(data, req, n)) {
    case Status::NeedMore: return FrontDoorResult::needMore();
    case Status::Error:
      state_ = State::Finished;
      return FrontDoorResult::close(Errc::ProtocolError, "malformed SOCKS4 request",
                                    encodeSocks4Reply(Socks4Reply::Rejected));
    case Status::Done: break;
  }
  state_ = State::Finished;
  if (!opts_->users.empty()) {
    // SOCKS4 has no passwords (its USERID is not a credential): refused when auth is configured.
    return FrontDoorResult::close(Errc::AuthFailed, "SOCKS4 refused: the listener requires authentication",
                                  encodeSocks4Reply(Socks4Reply::Rejected));
  }
  if (req.command != static_cast<uint8_t>(Command::Connect)) {
    return FrontDoorResult::close(Errc::NotSupported, "SOCKS4 command not supported",
                                  encodeSocks4Reply(Socks4Reply::Rejected));
  }
  if (req.dst.port == 0) {
    return FrontDoorResult::close(Errc::InvalidArgument, "SOCKS4 CONNECT to port 0",
                                  encodeSocks4Reply(Socks4Reply::Rejected));
  }
  setDestination(req.dst, meta);
  state_ = State::Routed;
  return FrontDoorResult::route(n);
}

Result<LocalServicePtr> SocksFrontDoor::serve(ServiceContext& ctx, std::string& reply) {
  if (state_ != State::Associate) return makeError(Errc::NotSupported, "no UDP ASSOCIATE request");
  state_ = State::Finished;
  auto relay = SocksUdpRelay::start(ctx, udpClient_);
  if (!relay) return relay.error();
  reply = encodeReply(Reply::Succeeded, Address::fromSocketAddress((*relay)->bound()));
  return LocalServicePtr(std::move(relay.value()));
}

std::string SocksFrontDoor::onUpstreamResult(const StreamMeta&, Errc result) {
  state_ = State::Finished;
  if (socks4_) {
    return encodeSocks4Reply(result == Errc::Ok ? Socks4Reply::Granted : Socks4Reply::Rejected);
  }
  // BND.ADDR/BND.PORT should be the local address of the upstream socket, which the session does
  // not expose (StreamMeta has only the remote upstreamAddr). 0.0.0.0:0 is what RFC 1928 clients
  // accept for CONNECT; curl and most clients ignore it.
  return encodeReply(replyFor(result));
}

}  // namespace ugate::socks
