#pragma once
// Options of the `sni` listener kind (docs/CONFIG.md "Kind sni"). Parsed by sni_config.cc, the only
// file of this module that includes nlohmann/json.
#include <ugate/result.h>
#include <ugate/socket_address.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <ugate/listener.h>
#include "sni/client_hello_parser.h"

namespace ugate::sni {

struct SniOptions : ListenerOptions {
  static constexpr size_t kMinHelloBytes = 256;
  static constexpr size_t kMaxHelloBytes = 65536;
  /** maxHelloBytes: the most wire bytes (records with headers) a ClientHello may take. */
  size_t maxHelloBytes{ClientHelloParser::kDefaultMaxBytes};
  /** fallback: where bytes that are not TLS go; none = such connections are closed. */
  std::optional<HostPort> fallback;
};

/** kSniOptionKeys: the keys the kind adds to a listener object. */
inline const std::vector<std::string>& sniOptionKeys() {
  static const std::vector<std::string> keys{"maxHelloBytes", "fallback"};
  return keys;
}

/**
 * parseSniOptions validates the kind's keys of listener object `j` at `path` ("listeners[2]");
 * errors name the full JSON path.
 */
Result<ListenerOptionsPtr> parseSniOptions(const nlohmann::json& j, const std::string& path);

}  // namespace ugate::sni
