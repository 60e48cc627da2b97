// The `udp` and `udp-tproxy` listener kinds: option parsing (the only file of src/udp that sees
// JSON), validation and registration.
#include <nlohmann/json.hpp>

#include <ugate/config.h>
#include <ugate/datagram_io.h>

#include <ugate/socket_util.h>
#include "udp/udp_forwarder.h"
#include "udp/udp_module.h"
#include "udp/udp_options.h"

namespace ugate::udp {
namespace {

// intOption reads an optional integer key of listener object j within [lo, hi] into out.
Result<void> intOption(const nlohmann::json& j, const char* key, const std::string& path, int64_t lo,
                       int64_t hi, uint32_t& out) {
  if (!j.contains(key)) return {};
  const auto& v = j[key];
  const std::string p = path + "." + key;
  if (!v.is_number_integer()) return makeError(Errc::InvalidArgument, p + ": expected an integer, got " + v.type_name());
  auto n = v.get<int64_t>();
  if (n < lo || n > hi) {
    return makeError(Errc::InvalidArgument,
                     p + ": " + std::to_string(n) + " out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  out = static_cast<uint32_t>(n);
  return {};
}

Result<ListenerOptionsPtr> parseUdpOptions(const nlohmann::json& j, const std::string& path, bool tproxy) {
  auto o = std::make_shared<UdpOptions>();
  o->tproxy = tproxy;
  if (auto r = intOption(j, "maxFlows", path, 1, UdpOptions::kMaxMaxFlows, o->maxFlows); !r) return r.error();
  if (auto r = intOption(j, "bufferBytes", path, 4096, 1 << 30, o->bufferBytes); !r) return r.error();
  return ListenerOptionsPtr(std::move(o));
}

// Keys every listener accepts that mean nothing for datagrams: refused rather than ignored.
Result<void> validateDatagramListener(const ListenerConfig& l, const std::string& path) {
  auto refuse = [&](const char* key) {
    return makeError(Errc::InvalidArgument,
                     path + "." + key + ": does not apply to kind '" + l.kind + "' (UDP has no handshake)");
  };
  if (l.proxyProtocol != 0) return refuse("proxyProtocol");
  if (l.acceptProxyProtocol) return refuse("acceptProxyProtocol");
  if (l.sniffTimeout) return refuse("sniffTimeout");
  if (l.connectTimeout) return refuse("connectTimeout");
  if (l.kind == "udp" && l.to.type == Target::Type::Original) {
    return makeError(Errc::InvalidArgument, path + ".to: kind 'udp' has no original destination " +
                                                "(use kind 'udp-tproxy' to capture one)");
  }
  return {};
}

ListenerKindSpec datagramKind(const char* name, bool tproxy) {
  ListenerKindSpec k;
  k.name = name;
  k.streamKind = StreamKind::UdpFlow;
  k.datagram = true;
  // udp: a forwarder needs `to`. udp-tproxy: without `to`, flows go to their original destination.
  k.toRequired = !tproxy;
  k.defaultOriginal = tproxy;
  k.optionKeys = {"maxFlows", "bufferBytes"};
  k.parseOptions = [tproxy](const nlohmann::json& j, const std::string& path) {
    return parseUdpOptions(j, path, tproxy);
  };
  k.validate = validateDatagramListener;
  k.configureListenSocket = [tproxy](int fd, const ListenerConfig& l) -> Result<void> {
    auto o = std::dynamic_pointer_cast<const UdpOptions>(l.options);
    setBufferBytes(fd, static_cast<int>(o ? o->bufferBytes : UdpOptions::kDefaultBufferBytes));
    const int family = l.address.family();
    if (tproxy) {
      if (auto r = setTransparent(fd, family); !r) return r;
      return setRecvOptions(fd, family, kRecvOrigDst | kRecvOverflow);
    }
    // A wildcard bind learns the address each client reached, so replies leave from it.
    return setRecvOptions(fd, family, kRecvOverflow | (l.address.isAny() ? kRecvPktInfo : 0));
  };
  k.newDatagramHandler = [](WorkerContext& w, const ListenerConfig& l,
                            int fd) -> DatagramHandlerPtr {
    return std::make_unique<UdpForwarder>(w, l, fd);
  };
  return k;
}

}  // namespace

void registerUdpModule(ListenerKindRegistry& r) {
  r.add(datagramKind("udp", false));
  r.add(datagramKind("udp-tproxy", true));
}

}  // namespace ugate::udp
