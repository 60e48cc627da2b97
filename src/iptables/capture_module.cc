#include "iptables/capture_module.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include <ugate/config.h>
#include <ugate/socket_util.h>
#include "iptables/capture_options.h"
#include "iptables/original_dst.h"

namespace ugate::iptables {

namespace {

const CaptureListenerOptions& optionsOf(const ListenerConfig& l) {
  static const CaptureListenerOptions defaults;
  // The registry entry guarantees the type: only parseCaptureOptions fills these listeners'
  // options.
  const auto* o = static_cast<const CaptureListenerOptions*>(l.options.get());
  return o ? *o : defaults;
}

Result<void> validate(const ListenerConfig& l, const std::string& path, bool tproxy) {
  const CaptureListenerOptions& o = optionsOf(l);
  if (tproxy && l.address.port() == 0) {
    return makeError(
        Errc::InvalidArgument,
        path + ".address: kind 'tproxy' needs a fixed port (the TPROXY rule names it)");
  }
  if (o.upstreamSource == UpstreamSource::Client) {
    if (!tproxy) {
      return makeError(Errc::InvalidArgument,
                       path +
                           ".upstreamSource: 'client' needs kind 'tproxy' (the replies come back "
                           "through the tproxy policy route)");
    }
    if (o.mark == 0) {
      return makeError(
          Errc::InvalidArgument,
          path +
              ".mark: upstreamSource 'client' needs the mark of `ugated iptables --mode "
              "tproxy` (1337 by default), so that the replies are routed back to ugated");
    }
  }
  return {};
}

// probe: socket options that need privileges are tried once at bind time on a scratch socket, so
// a missing CAP_NET_ADMIN stops startup instead of failing every connection.
Result<void> probe(int family, const CaptureListenerOptions& o) {
  if (o.mark == 0 && o.upstreamSource != UpstreamSource::Client) return {};
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return makeError(errcFromErrno(errno), "socket: " + std::string(strerror(errno)));
  Result<void> r;
  if (o.mark != 0) {
    r = setMark(s, o.mark);
    if (!r) {
      r = makeError(r.error().code, "mark " + std::to_string(o.mark) + ": " + r.error().detail);
    }
  }
  if (r && o.upstreamSource == UpstreamSource::Client) {
    r = setTransparent(s, family);
    if (!r) r = makeError(r.error().code, "upstreamSource client: " + r.error().detail);
  }
  close(s);
  return r;
}

Result<void> configureSocket(int fd, const ListenerConfig& l, bool tproxy) {
  if (tproxy) {
    if (auto r = setTransparent(fd, l.address.family()); !r) return r;
  }
  return probe(l.address.family(), optionsOf(l));
}

Result<void> onAccept(int fd, const ListenerConfig& l, StreamMeta& meta, bool tproxy) {
  uint16_t listenPort = l.address.port();
  if (tproxy) {
    // TPROXY keeps the destination: the socket's own address is where the client was going.
    meta.local = localAddress(fd);
    meta.originalDst = meta.local;
    // Addressed to our own port: REDIRECTed to us (the proxy reaching this host's addresses is
    // captured by the nat rules even in tproxy mode), or a direct connection.
    if (meta.local.port() == listenPort) {
      if (auto od = originalDestination(fd, meta.local.family())) meta.originalDst = *od;
    }
  } else {
    auto od = originalDestination(fd, meta.local.family());
    if (!od) return makeError(Errc::NoRoute, "no original destination: " + od.error().detail);
    meta.originalDst = *od;
    listenPort = meta.local.port();
  }
  return checkLoop(meta.originalDst, meta.local, listenPort);
}

void upstreamOptions(const ListenerConfig& l, const StreamMeta& meta, const SocketAddress& to,
                     ConnectOptions& out) {
  const CaptureListenerOptions& o = optionsOf(l);
  out.mark = o.mark;
  switch (o.upstreamSource) {
    case UpstreamSource::Default: break;
    case UpstreamSource::Passthrough: {
      static const SocketAddress v4 = *SocketAddress::fromIp("127.0.0.6", 0);
      static const SocketAddress v6 = *SocketAddress::fromIp("::6", 0);
      out.source = to.family() == AF_INET6 ? v6 : v4;
      break;
    }
    case UpstreamSource::Client:
      // The client's address, any port; a client of the other family keeps the default source.
      if (meta.source.family() == to.family()) {
        out.source = meta.source;
        out.source.setPort(0);
        out.transparent = true;
      }
      break;
  }
}

}  // namespace

void registerCaptureModule(ListenerKindRegistry& r) {
  for (bool tproxy : {false, true}) {
    ListenerKindSpec spec;
    spec.name = tproxy ? "tproxy" : "redirect";
    spec.streamKind = tproxy ? StreamKind::Tproxy : StreamKind::Redirect;
    spec.defaultOriginal = true;
    spec.optionKeys = captureOptionKeys();
    spec.parseOptions = parseCaptureOptions;
    spec.validate = [tproxy](const ListenerConfig& l, const std::string& path) {
      return validate(l, path, tproxy);
    };
    spec.configureListenSocket = [tproxy](int fd, const ListenerConfig& l) {
      return configureSocket(fd, l, tproxy);
    };
    spec.onAccept = [tproxy](int fd, const ListenerConfig& l, StreamMeta& m) {
      return onAccept(fd, l, m, tproxy);
    };
    spec.upstreamOptions = upstreamOptions;
    r.add(std::move(spec));
  }
}

}  // namespace ugate::iptables
