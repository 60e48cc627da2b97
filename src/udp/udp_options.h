#pragma once
// Options of the `udp` and `udp-tproxy` listener kinds, parsed by udp_config.cc. Immutable once parsed.
#include <cstdint>
#include <memory>

#include <ugate/time.h>

#include <ugate/listener.h>

namespace ugate::udp {

struct UdpOptions : ListenerOptions {
  static constexpr uint32_t kDefaultMaxFlows = 4096;
  static constexpr uint32_t kMaxMaxFlows = 1'000'000;
  /** kDefaultIdle: a flow's idle timeout when the listener sets no `idleTimeout`. */
  static constexpr Duration kDefaultIdle{60'000};
  // maxFlows: flows one worker keeps for this listener; a new flow beyond it evicts the least
  // recently used one.
  uint32_t maxFlows{kDefaultMaxFlows};
  static constexpr uint32_t kDefaultBufferBytes = 4 << 20;
  // bufferBytes: receive and send buffer of the listening socket (bursts from many clients queue
  // there while the worker is busy).
  uint32_t bufferBytes{kDefaultBufferBytes};
  // tproxy: the listener captures with TPROXY (kind `udp-tproxy`).
  bool tproxy{false};
};
using UdpOptionsPtr = std::shared_ptr<const UdpOptions>;

}  // namespace ugate::udp
