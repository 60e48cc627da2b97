// The capture kinds' options. The only file of src/iptables that includes nlohmann/json.
#include <memory>
#include <nlohmann/json.hpp>

#include "iptables/capture_options.h"

namespace ugate::iptables {

const std::vector<std::string>& captureOptionKeys() {
  static const std::vector<std::string> keys{"mark", "upstreamSource"};
  return keys;
}

Result<ListenerOptionsPtr> parseCaptureOptions(const nlohmann::json& j, const std::string& path) {
  auto o = std::make_shared<CaptureListenerOptions>();
  if (j.contains("mark")) {
    const auto& v = j["mark"];
    const std::string p = path + ".mark";
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xffffffffULL) {
      return makeError(Errc::InvalidArgument,
                       p + ": expected an integer 0..4294967295, got " +
                           (v.is_number() ? v.dump() : std::string(v.type_name())));
    }
    o->mark = static_cast<uint32_t>(v.get<uint64_t>());
  }
  if (j.contains("upstreamSource")) {
    const auto& v = j["upstreamSource"];
    const std::string p = path + ".upstreamSource";
    std::string s = v.is_string() ? v.get<std::string>() : std::string();
    if (s == "default") {
      o->upstreamSource = UpstreamSource::Default;
    } else if (s == "passthrough") {
      o->upstreamSource = UpstreamSource::Passthrough;
    } else if (s == "client") {
      o->upstreamSource = UpstreamSource::Client;
    } else {
      return makeError(
          Errc::InvalidArgument,
          p + ": expected \"default\", \"passthrough\" or \"client\", got " + v.dump());
    }
  }
  return ListenerOptionsPtr(std::move(o));
}

}  // namespace ugate::iptables
