#include <ugate/result.h>
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

}  // namespace ugate
