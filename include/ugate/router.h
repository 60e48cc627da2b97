#pragma once
// The Router turns a stream's metadata into a decision. Sans-I/O; immutable once built.
#include <memory>
#include <string>
#include <string_view>

#include <ugate/socket_address.h>
#include <ugate/stream.h>

namespace ugate {

struct UpstreamTlsConfig;

struct RouteDecision {
  enum class Action : uint8_t {
    Dial,          // dial `target`
    DialOriginal,  // dial meta.originalDst
    Reject,        // a route said reject
    NoRoute,       // nothing matched and the listener has no default
  };
  Action action{Action::NoRoute};
  HostPort target;         // for Dial
  std::string_view route;  // name of the route that matched ("" = the listener's default)
  uint8_t proxyProtocol{0};  // 1|2: send a PROXY v1/v2 header to the upstream before any byte
  std::shared_ptr<const UpstreamTlsConfig> upstreamTls;  // wrap the upstream in mTLS (null = plain)
  std::string_view via;  // a mesh gateway to go through (an upstream's name or host:port), "" = none
};

class Router {
 public:
  virtual ~Router() = default;
  /** route decides where a stream goes. The returned route name lives as long as the Router. */
  virtual RouteDecision route(const StreamMeta& meta) const = 0;
};

}  // namespace ugate
