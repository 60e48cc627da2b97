#pragma once
// Options of the capture listener kinds `redirect` and `tproxy` (docs/CONFIG.md). Parsed by
// capture_config.cc, the only file of this module that includes nlohmann/json.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <ugate/result.h>

#include <ugate/listener.h>

namespace ugate::iptables {

/** UpstreamSource: the source address of the connections a capture listener opens. */
enum class UpstreamSource : uint8_t {
  Default,      // the kernel's choice
  Passthrough,  // 127.0.0.6 / ::6: Istio's inbound passthrough source, which the rules let through
  Client,       // the client's own address (transparent; tproxy with a mark and its policy route)
};

struct CaptureListenerOptions : ListenerOptions {
  /** mark: SO_MARK on upstream sockets (0 = none); `ugated iptables` never captures it. */
  uint32_t mark{0};
  UpstreamSource upstreamSource{UpstreamSource::Default};
};

/** captureOptionKeys: the keys the capture kinds add to a listener object. */
const std::vector<std::string>& captureOptionKeys();
/** parseCaptureOptions validates the kind's keys of listener object `j` at `path`. */
Result<ListenerOptionsPtr> parseCaptureOptions(const nlohmann::json& j, const std::string& path);

}  // namespace ugate::iptables
