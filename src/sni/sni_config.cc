// The `sni` listener kind's options. The only file of src/sni that includes nlohmann/json.
#include "sni/sni_config.h"

#include <memory>
#include <nlohmann/json.hpp>

#include <ugate/config.h>

namespace ugate::sni {

Result<ListenerOptionsPtr> parseSniOptions(const nlohmann::json& j, const std::string& path) {
  auto o = std::make_shared<SniOptions>();
  if (j.contains("maxHelloBytes")) {
    const auto& v = j["maxHelloBytes"];
    const std::string p = path + ".maxHelloBytes";
    if (!v.is_number_integer())
      return makeError(Errc::InvalidArgument, p + ": expected an integer, got " + v.type_name());
    auto n = v.get<int64_t>();
    if (n < static_cast<int64_t>(SniOptions::kMinHelloBytes) ||
        n > static_cast<int64_t>(SniOptions::kMaxHelloBytes)) {
      return makeError(Errc::InvalidArgument, p + ": " + std::to_string(n) + " out of range [" +
                                                  std::to_string(SniOptions::kMinHelloBytes) +
                                                  ", " +
                                                  std::to_string(SniOptions::kMaxHelloBytes) + "]");
    }
    o->maxHelloBytes = static_cast<size_t>(n);
  }
  if (j.contains("fallback")) {
    const auto& v = j["fallback"];
    const std::string p = path + ".fallback";
    if (!v.is_string())
      return makeError(Errc::InvalidArgument,
                       p + ": expected a host:port string, got " + v.type_name());
    auto t = parseTarget(v.get<std::string>());
    if (!t) return makeError(Errc::InvalidArgument, p + ": " + t.error().detail);
    if (t->type != Target::Type::HostPort) {
      return makeError(Errc::InvalidArgument,
                       p + ": '" + v.get<std::string>() +
                           "' must be host:port (leave fallback out to close non-TLS connections)");
    }
    o->fallback = t->hostPort;
  }
  return ListenerOptionsPtr(std::move(o));
}

}  // namespace ugate::sni
