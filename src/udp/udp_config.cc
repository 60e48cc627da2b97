// The `udp` and `udp-tproxy` listener kinds: option parsing (the only file of src/udp that sees
// JSON), validation and registration.
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "udp/datagram_io.h"
#include "udp/udp_forwarder.h"
#include "udp/udp_module.h"
#include "udp/udp_options.h"

namespace ugate::udp {
namespace {

Result<ListenerOptionsPtr> parseUdpOptions(const nlohmann::json& j, const std::string& path, bool tproxy) {
  auto o = std::make_shared<UdpOptions>();
  o->tproxy = tproxy;
  if (j.contains("maxFlows")) {
    const auto& v = j["maxFlows"];
    const std::string p = path + ".maxFlows";
    if (!v.is_number_integer()) {
      return makeError(Errc::InvalidArgument, p + ": expected an integer, got " + v.type_name());
    }
    auto n = v.get<int64_t>();
    if (n < 1 || n > UdpOptions::kMaxMaxFlows) {
      return makeError(Errc::InvalidArgument, p + ": " + std::to_string(n) + " out of range [1, " +
                                                  std::to_string(UdpOptions::kMaxMaxFlows) + "]");
    }
    o->maxFlows = static_cast<uint32_t>(n);
  }
  if (j.contains("bufferBytes")) {
    const auto& v = j["bufferBytes"];
    const std::string p = path + ".bufferBytes";
    if (!v.is_number_integer()) {
      return makeError(Errc::InvalidArgument, p + ": expected an integer, got " + v.type_name());
    }
    auto n = v.get<int64_t>();
    if (n < 4096 || n > (1 << 30)) {
      return makeError(Errc::InvalidArgument, p + ": " + std::to_string(n) + " out of range [4096, 1073741824]");
    }
    o->bufferBytes = static_cast<uint32_t>(n);
  }
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
  k.dialsRequested = tproxy;
  k.optionKeys = {"maxFlows", "bufferBytes"};
  k.parseOptions = [tproxy](const nlohmann::json& j, const std::string& path) {
    return parseUdpOptions(j, path, tproxy);
  };
  k.validate = validateDatagramListener;
  k.beforeBind = [tproxy](int fd, const ListenerConfig& l) -> Result<void> {
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
  k.newDatagramHandler = [](Worker& w, const ListenerConfig& l, int fd) -> DatagramHandlerPtr {
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
