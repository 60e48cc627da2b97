// Parsing of the top-level "clusters" section (one of the few files that include nlohmann/json).
#include "core/cluster_config.h"

#include <string>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include <ugate/config_json.h>

namespace ugate {

const char* lbPolicyName(LbPolicy p) {
  switch (p) {
    case LbPolicy::RoundRobin: return "round_robin";
    case LbPolicy::LeastConnections: return "least_connections";
    case LbPolicy::RandomTwo: return "random_two";
    case LbPolicy::HashSource: return "hash_source";
  }
  return "?";
}

namespace cfgjson {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxWeight = 10'000;
// kMaxEndpoints: big fleets fit (an xDS control plane hands out 10 000-endpoint clusters); the
// duplicate check is a hash set and the pickers are linear or better, so this only bounds a mistyped file.
constexpr size_t kMaxEndpoints = 16384;

ClusterEndpointConfig parseEndpoint(const json& j, const std::string& path) {
  ClusterEndpointConfig e;
  std::string addrPath = path;
  std::string addr;
  if (j.is_string()) {
    addr = j.get<std::string>();
  } else if (j.is_object()) {
    checkKeys(j, path, {"address", "weight"});
    if (!j.contains("address")) fail(path + ".address", "required");
    addrPath = path + ".address";
    addr = getString(j["address"], addrPath);
    if (j.contains("weight")) {
      const json& w = j["weight"];
      if (!w.is_number_integer()) {
        fail(path + ".weight", "expected an integer 1.." + std::to_string(kMaxWeight) + ", got " +
                                   (w.is_number() ? w.dump() : typeName(w)));
      }
      e.weight = static_cast<uint32_t>(getInt(w, path + ".weight", 1, kMaxWeight));
    }
  } else {
    fail(path, "expected \"host:port\" or {\"address\": \"host:port\", \"weight\": N}, got " + typeName(j));
  }
  auto t = parseTarget(addr);
  if (!t || t->type != Target::Type::HostPort) {
    fail(addrPath, "'" + addr + "' is not host:port (a literal IP or a DNS name, and a port 1..65535)");
  }
  e.address = t->hostPort;
  return e;
}

void parseHealthCheck(const json& j, const std::string& path, HealthCheckConfig& h) {
  checkKeys(j, path, {"kind", "path", "interval", "timeout", "healthyThreshold", "unhealthyThreshold"});
  h.enabled = true;
  if (j.contains("kind")) {
    std::string k = getString(j["kind"], path + ".kind");
    if (k == "tcp") {
      h.kind = HealthCheckConfig::Kind::Tcp;
    } else if (k == "http") {
      h.kind = HealthCheckConfig::Kind::Http;
    } else {
      fail(path + ".kind", "'" + k + "' is not one of tcp, http");
    }
  }
  if (j.contains("path")) {
    if (h.kind != HealthCheckConfig::Kind::Http) fail(path + ".path", "applies to kind \"http\" only");
    h.path = getString(j["path"], path + ".path");
    if (h.path.empty() || h.path.front() != '/') fail(path + ".path", "must start with '/'");
    for (char ch : h.path) {
      if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f) {
        fail(path + ".path", "must not contain spaces or control characters");
      }
    }
  }
  if (j.contains("interval")) h.interval = getDuration(j["interval"], path + ".interval");
  if (j.contains("timeout")) h.timeout = getDuration(j["timeout"], path + ".timeout");
  if (h.interval.count() < 100) fail(path + ".interval", "must be at least 100ms");
  if (h.timeout.count() < 10) fail(path + ".timeout", "must be at least 10ms");
  if (h.timeout > h.interval) fail(path + ".timeout", "must not be longer than the interval");
  if (j.contains("healthyThreshold")) {
    h.healthyThreshold = static_cast<uint32_t>(getInt(j["healthyThreshold"], path + ".healthyThreshold", 1, 100));
  }
  if (j.contains("unhealthyThreshold")) {
    h.unhealthyThreshold =
        static_cast<uint32_t>(getInt(j["unhealthyThreshold"], path + ".unhealthyThreshold", 1, 100));
  }
}

void parseOutlier(const json& j, const std::string& path, OutlierConfig& o) {
  checkKeys(j, path, {"consecutiveFailures", "ejectFor", "maxEjectedPercent"});
  o.enabled = true;
  if (j.contains("consecutiveFailures")) {
    o.consecutiveFailures =
        static_cast<uint32_t>(getInt(j["consecutiveFailures"], path + ".consecutiveFailures", 1, 1000));
  }
  if (j.contains("ejectFor")) {
    o.ejectFor = getDuration(j["ejectFor"], path + ".ejectFor");
    if (o.ejectFor.count() < 100) fail(path + ".ejectFor", "must be at least 100ms");
  }
  if (j.contains("maxEjectedPercent")) {
    o.maxEjectedPercent = static_cast<uint32_t>(getInt(j["maxEjectedPercent"], path + ".maxEjectedPercent", 0, 100));
  }
}

}  // namespace

void addCluster(const json& j, const std::string& path, Config& c) {
  checkKeys(j, path, {"name", "endpoints", "lb", "healthCheck", "outlier", "connectRetries", "dnsRefresh"});
  ClusterConfig k;
  if (!j.contains("name")) fail(path + ".name", "required");
  k.name = getString(j["name"], path + ".name");
  auto t = parseTarget("cluster:" + k.name);
  if (!t) fail(path + ".name", "'" + k.name + "': a cluster name is 1 to 64 letters, digits, '.', '_' or '-'");
  if (c.findCluster(k.name)) fail(path + ".name", "duplicate cluster name '" + k.name + "'");
  if (!j.contains("endpoints")) fail(path + ".endpoints", "required");
  const json& eps = j["endpoints"];
  if (!eps.is_array()) fail(path + ".endpoints", "expected an array, got " + typeName(eps));
  if (eps.empty()) fail(path + ".endpoints", "empty: a cluster needs at least one endpoint");
  if (eps.size() > kMaxEndpoints) {
    fail(path + ".endpoints", "more than " + std::to_string(kMaxEndpoints) + " endpoints");
  }
  std::unordered_set<std::string> seen;  // "host:port" of the endpoints so far
  for (size_t i = 0; i < eps.size(); ++i) {
    const std::string p = path + ".endpoints[" + std::to_string(i) + "]";
    ClusterEndpointConfig e = parseEndpoint(eps[i], p);
    if (!seen.insert(e.address.host + ":" + std::to_string(e.address.port)).second) {
      fail(p, "duplicate endpoint " + e.address.str() + " (give it a weight instead)");
    }
    k.endpoints.push_back(std::move(e));
  }
  if (j.contains("lb")) {
    std::string lb = getString(j["lb"], path + ".lb");
    bool found = false;
    for (LbPolicy p : {LbPolicy::RoundRobin, LbPolicy::LeastConnections, LbPolicy::RandomTwo, LbPolicy::HashSource}) {
      if (lb == lbPolicyName(p)) {
        k.lb = p;
        found = true;
      }
    }
    if (!found) {
      fail(path + ".lb", "'" + lb + "' is not one of round_robin, least_connections, random_two, hash_source");
    }
  }
  if (j.contains("healthCheck")) parseHealthCheck(j["healthCheck"], path + ".healthCheck", k.healthCheck);
  if (j.contains("outlier")) parseOutlier(j["outlier"], path + ".outlier", k.outlier);
  if (j.contains("connectRetries")) {
    k.connectRetries = static_cast<uint32_t>(getInt(j["connectRetries"], path + ".connectRetries", 0, 10));
  }
  if (j.contains("dnsRefresh")) {
    k.dnsRefresh = getDuration(j["dnsRefresh"], path + ".dnsRefresh");
    if (k.dnsRefresh.count() < 100) fail(path + ".dnsRefresh", "must be at least 100ms");
  }
  c.clusters.push_back(std::move(k));
}

}  // namespace cfgjson
}  // namespace ugate
