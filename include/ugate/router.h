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
    DialCluster,   // dial an endpoint of cluster `cluster` (TCP streams; datagrams drop it as NoRoute)
  };
  Action action{Action::NoRoute};
  HostPort target;         // for Dial
  std::string_view cluster;  // for DialCluster: the cluster's name (lives as long as the Router)
  std::string_view route;  // name of the route that matched ("" = the listener's default)
  std::string_view identity;  // the route's match.identity entry the peer matched ("" = none given)
  uint8_t proxyProtocol{0};  // 1|2: send a PROXY v1/v2 header to the upstream before any byte
  std::shared_ptr<const UpstreamTlsConfig> upstreamTls;  // wrap the upstream in mTLS (null = plain)
  std::string_view via;  // a mesh gateway to go through (an upstream's name or host:port), "" = none
  bool http{false};      // the route's target is an HTTP/1.1 origin (route key "http")
  bool upstreamQuic{false};  // ... an HTTP/3 origin over QUIC (route key "upstreamQuic")
};

/**
 * routeLogName: what the access log calls the decision's route: the matched route's name,
 * `listener:<listener>` when the listener's own `to` decided, "" when nothing did (no_route).
 */
inline std::string routeLogName(const RouteDecision& d, std::string_view listener) {
  if (!d.route.empty()) return std::string(d.route);
  if (d.action == RouteDecision::Action::NoRoute) return {};
  return "listener:" + std::string(listener);
}

class Router {
 public:
  virtual ~Router() = default;
  /** route decides where a stream goes. The returned route name lives as long as the Router. */
  virtual RouteDecision route(const StreamMeta& meta) const = 0;
};

}  // namespace ugate
