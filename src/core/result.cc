#include <ugate/result.h>
#include <ugate/tunnel.h>
#include <ugate/stream.h>

namespace ugate {

std::string_view errcReason(Errc e) {
  switch (e) {
    case Errc::Ok: return "ok";
    case Errc::InvalidArgument: return "invalid_argument";
    case Errc::NotFound: return "not_found";
    case Errc::AlreadyExists: return "already_exists";
    case Errc::ConnectRefused: return "connect_refused";
    case Errc::ConnectTimeout: return "connect_timeout";
    case Errc::HostUnreachable: return "host_unreachable";
    case Errc::NetworkUnreachable: return "network_unreachable";
    case Errc::DnsFailure: return "dns_failure";
    case Errc::Reset: return "reset";
    case Errc::IdleTimeout: return "idle_timeout";
    case Errc::RouteRejected: return "route_rejected";
    case Errc::NoRoute: return "no_route";
    case Errc::ResourceExhausted: return "resource_exhausted";
    case Errc::Shutdown: return "shutdown";
    case Errc::ProtocolError: return "protocol_error";
    case Errc::HandshakeTimeout: return "handshake_timeout";
    case Errc::AuthFailed: return "auth_failed";
    case Errc::TooLarge: return "too_large";
    case Errc::NotSupported: return "not_supported";
    case Errc::LoopDetected: return "loop_detected";
    case Errc::NotExposed: return "not_exposed";
    case Errc::Io: return "io_error";
  }
  return "unknown";
}

Errc errcFromErrno(int err) {
  switch (err) {
    case 0: return Errc::Ok;
    case ECONNREFUSED: return Errc::ConnectRefused;
    case ETIMEDOUT: return Errc::ConnectTimeout;
    case EHOSTUNREACH: case EHOSTDOWN: return Errc::HostUnreachable;
    case ENETUNREACH: case ENETDOWN: return Errc::NetworkUnreachable;
    case ECONNRESET: case EPIPE: case ECONNABORTED: return Errc::Reset;
    case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM: return Errc::ResourceExhausted;
    case EINVAL: case EAFNOSUPPORT: case EADDRNOTAVAIL: return Errc::InvalidArgument;
    default: return Errc::Io;
  }
}

const char* streamKindName(StreamKind k) {
  switch (k) {
    case StreamKind::Tcp: return "tcp";
    case StreamKind::Tls: return "tls";
    case StreamKind::Socks5: return "socks5";
    case StreamKind::Socks4: return "socks4";
    case StreamKind::HttpConnect: return "http-connect";
    case StreamKind::Sni: return "sni";
    case StreamKind::Redirect: return "redirect";
    case StreamKind::Tproxy: return "tproxy";
    case StreamKind::H2: return "h2";
    case StreamKind::H3: return "h3";
    case StreamKind::Quic: return "quic";
    case StreamKind::UdpFlow: return "udp-flow";
    case StreamKind::Push: return "push";
    case StreamKind::Pipe: return "pipe";
  }
  return "unknown";
}

// The tunnel status mapping (ugate/tunnel.h): the mesh over HTTP/2 and QUIC, HTTP/3 CONNECT.
int tunnelStatus(Errc e) {
  switch (e) {
    case Errc::Ok: return 200;
    case Errc::RouteRejected:
    case Errc::NotExposed:
    case Errc::AuthFailed: return 403;
    case Errc::NoRoute: return 404;
    case Errc::ConnectTimeout:
    case Errc::HandshakeTimeout: return 504;
    case Errc::LoopDetected: return 508;
    case Errc::Shutdown:
    case Errc::ResourceExhausted: return 503;
    default: return 502;
  }
}

Errc tunnelErrc(int status, std::string_view reason) {
  // The gateway names its reason in x-ugate-error; keep it when it is one of ours.
  for (size_t i = 1; i < static_cast<size_t>(Errc::Io) + 1; ++i) {
    if (reason == errcReason(static_cast<Errc>(i))) return static_cast<Errc>(i);
  }
  switch (status) {
    case 403: return Errc::RouteRejected;
    case 404: return Errc::NoRoute;
    case 504: return Errc::ConnectTimeout;
    case 508: return Errc::LoopDetected;
    case 503: return Errc::ResourceExhausted;
    case 0: return Errc::Reset;
    default: return Errc::ConnectRefused;
  }
}

}  // namespace ugate
