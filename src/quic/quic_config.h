#pragma once
// The `quic` listener kind's registry entry (options, validation); the module adds the handlers.
#include <string_view>

#include <ugate/listener.h>

namespace ugate {
struct Config;
namespace cfgjson {
class ConfigErrors;
}
}  // namespace ugate

namespace ugate::quic {

inline constexpr std::string_view kAlpnH3 = "h3";
inline constexpr std::string_view kAlpnMesh = "ugate";
inline constexpr std::string_view kAlpnMeshReverse = "ugater";  // a node's reverse-accept association

/** quicKindSpec: kind `quic` with its option parser and validation (no handler set yet). */
ListenerKindSpec quicKindSpec();

/** checkQuicPush: each quic listener's "push" names a listener of kind push (QuicModule::finishConfig). */
void checkQuicPush(const Config& c, cfgjson::ConfigErrors& errs);

}  // namespace ugate::quic
