#include "xds/cluster_convert.h"

#include <algorithm>
#include <unordered_map>

#include <ugate/config.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "xds/messages.h"

namespace ugate::xds {

namespace {

namespace cluster = envoy::config::cluster::v3;
namespace core = envoy::config::core::v3;
namespace endpoint = envoy::config::endpoint::v3;

Error invalid(std::string why) { return Error{Errc::InvalidArgument, std::move(why)}; }

bool validClusterName(const std::string& n) {
  auto t = parseTarget("cluster:" + n);
  return t && t->type == Target::Type::Cluster && t->cluster == n;
}

// printable: `s` cut and with control bytes replaced, for a NACK message or a log line.
std::string printable(std::string_view s) {
  std::string o(s.substr(0, 80));
  for (char& ch : o) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  return o;
}

}  // namespace

Result<CdsCluster> parseCdsCluster(std::string_view bytes) {
  cluster::Cluster m;
  if (!parseMessage(bytes, m)) return invalid("not a Cluster");
  CdsCluster c;
  c.name = m.name();
  if (!validClusterName(c.name)) {
    return invalid("cluster name '" + printable(c.name) + "': 1 to 64 letters, digits, '.', '_' or '-'");
  }
  if (m.type() != cluster::Cluster::EDS) {
    return invalid("cluster " + c.name + ": discovery type " + std::to_string(m.type()) + " (only EDS is supported)");
  }
  c.edsName = m.eds_cluster_config().service_name().empty() ? c.name : m.eds_cluster_config().service_name();
  if (c.edsName.size() > 256) return invalid("cluster " + c.name + ": eds service_name longer than 256 bytes");
  switch (m.lb_policy()) {
    case cluster::Cluster::ROUND_ROBIN: c.lb = LbPolicy::RoundRobin; break;
    case cluster::Cluster::LEAST_REQUEST: c.lb = LbPolicy::LeastConnections; break;
    case cluster::Cluster::RANDOM: c.lb = LbPolicy::RandomTwo; break;
    case cluster::Cluster::RING_HASH:
    case cluster::Cluster::MAGLEV: c.lb = LbPolicy::HashSource; break;
    default:
      return invalid("cluster " + c.name + ": lb_policy " + std::to_string(m.lb_policy()) + " is not supported");
  }
  return c;
}

namespace {
// addressKey: an address's IP bytes and port, as a hash key.
std::string addressKey(const SocketAddress& a) {
  std::string k(reinterpret_cast<const char*>(a.ipBytes()), static_cast<size_t>(a.ipLen()));
  const uint16_t port = a.port();
  k.push_back(static_cast<char>(port >> 8));
  k.push_back(static_cast<char>(port & 0xff));
  return k;
}
}  // namespace

Result<EdsAssignment> parseEdsAssignment(std::string_view bytes) {
  endpoint::ClusterLoadAssignment m;
  if (!parseMessage(bytes, m)) return invalid("not a ClusterLoadAssignment");
  EdsAssignment a;
  a.name = m.cluster_name();
  if (a.name.empty() || a.name.size() > 256) return invalid("a ClusterLoadAssignment needs a cluster_name (at most 256 bytes)");
  uint32_t lowest = UINT32_MAX;
  size_t total = 0;
  for (const auto& loc : m.endpoints()) {
    lowest = std::min(lowest, loc.priority());
    total += static_cast<size_t>(loc.lb_endpoints_size());
  }
  if (total > kMaxEdsEndpoints) {
    return invalid("assignment " + a.name + ": " + std::to_string(total) + " endpoints (at most " +
                   std::to_string(kMaxEdsEndpoints) + ")");
  }
  std::unordered_map<std::string, size_t> seen;  // addressKey -> index in a.endpoints
  seen.reserve(total);
  a.endpoints.reserve(total);
  for (const auto& loc : m.endpoints()) {
    for (const auto& lb : loc.lb_endpoints()) {
      const std::string where = "assignment " + a.name + ": endpoint " + std::to_string(a.endpoints.size());
      if (!lb.has_endpoint() || !lb.endpoint().address().has_socket_address()) {
        return invalid(where + " has no socket address");
      }
      const core::SocketAddress& sa = lb.endpoint().address().socket_address();
      if (sa.protocol() != core::SocketAddress::TCP) return invalid(where + ": protocol is not TCP");
      if (sa.port_value() == 0 || sa.port_value() > 65535) {
        return invalid(where + ": port " + std::to_string(sa.port_value()) + " is not 1..65535");
      }
      auto addr = SocketAddress::fromIp(sa.address(), static_cast<uint16_t>(sa.port_value()));
      if (!addr) return invalid(where + ": '" + printable(sa.address()) + "' is not an IP address");
      uint32_t w = 1;
      if (lb.has_load_balancing_weight()) {
        w = lb.load_balancing_weight().value();
        if (w == 0 || w > kMaxEndpointWeight) {
          return invalid(where + ": weight " + std::to_string(w) + " is not 1.." + std::to_string(kMaxEndpointWeight));
        }
      }
      if (loc.priority() != lowest) continue;
      const core::HealthStatus hs = lb.health_status();
      const bool healthy = hs != core::UNHEALTHY && hs != core::DRAINING && hs != core::TIMEOUT;
      // The same address twice is one endpoint: found in a hash map (a scan per endpoint was
      // quadratic: 10 000 endpoints took a quarter of a second of worker 0's loop).
      auto [dup, fresh] = seen.emplace(addressKey(*addr), a.endpoints.size());
      if (!fresh) {
        DynamicEndpoint& e = a.endpoints[dup->second];
        e.weight = std::min(kMaxEndpointWeight, e.weight + w);
        e.healthy = e.healthy || healthy;
        continue;
      }
      a.endpoints.push_back({*addr, w, healthy});
    }
  }
  return a;
}

DynamicCluster buildCluster(const CdsCluster& c, const EdsAssignment* a, std::string version) {
  DynamicCluster d;
  d.name = c.name;
  d.source = "xds";
  d.version = std::move(version);
  d.lb = c.lb;
  if (a) d.endpoints = a->endpoints;
  return d;
}

}  // namespace ugate::xds
