// The xds module's config section ("xds"): the only file of src/xds that sees JSON.
#include "xds/xds_config.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include <ugate/config_json.h>

#include "xds/xds_module.h"

namespace ugate::xds {

namespace {

using json = nlohmann::json;
using namespace cfgjson;  // NOLINT: the config helpers, in this parsing file only

constexpr const char* kDefaultAddress = "127.0.0.1:15010";

void parseServer(const json& j, XdsConfig& x) {
  const std::string path = "xds.server";
  if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  checkKeys(j, path, {"enabled", "address", "insecure", "tls"});
  x.serverEnabled = j.contains("enabled") ? getBool(j["enabled"], path + ".enabled") : true;
  if (j.contains("insecure")) x.insecure = getBool(j["insecure"], path + ".insecure");
  if (j.contains("tls")) {
    const json& t = j["tls"];
    if (!t.is_object()) fail(path + ".tls", "expected an object, got " + typeName(t));
    checkKeys(t, path + ".tls", {"requireClientCert"});
    auto tls = std::make_shared<ListenerTlsConfig>();
    if (t.contains("requireClientCert")) tls->requireClientCert = getBool(t["requireClientCert"], path + ".tls.requireClientCert");
    tls->alpn = {"h2"};  // gRPC over TLS
    if (x.insecure) fail(path + ".insecure", "\"insecure\" and \"tls\" exclude each other");
    x.serverTls = std::move(tls);
  }
  if (j.contains("address")) {
    const std::string a = getString(j["address"], path + ".address");
    auto sa = SocketAddress::parse(a);
    if (!sa) fail(path + ".address", "'" + a + "' is not an IP address and port (\"127.0.0.1:15010\", \"[::1]:15010\")");
    x.serverAddress = *sa;
  }
  if (x.serverEnabled && !x.serverAddress.isLoopback() && !x.insecure && !x.serverTls) {
    fail(path + ".address", "'" + x.serverAddress.str() +
                                "' is not a loopback address: serving other hosts needs \"tls\" (mutual TLS with the "
                                "node's identity) or \"insecure\": true (clients can read every route it publishes)");
  }
}

// parseAmbient: xds.client.ambient: the Istio ambient types, and the node metadata ztunnel sends.
void parseAmbient(const json& a, const std::string& path, bool deltaGiven, XdsClientConfig& k) {
  if (!a.is_object()) fail(path, "expected an object, got " + typeName(a));
  checkKeys(a, path, {"enabled", "name", "namespace", "instanceIps", "nodeName", "clusterId"});
  if (a.contains("enabled") && !getBool(a["enabled"], path + ".enabled")) return;
  if (deltaGiven && !k.delta) fail(path, "the ambient types are served over delta ADS only (\"delta\": true)");
  k.delta = true;
  k.ambient = true;
  auto meta = [&](const char* key, const char* name) {
    if (a.contains(key)) k.metadata[name] = getString(a[key], path + "." + key);
  };
  meta("name", "NAME");
  meta("namespace", "NAMESPACE");
  meta("nodeName", "NODE_NAME");
  meta("clusterId", "CLUSTER_ID");
  if (a.contains("clusterId")) k.clusterId = k.metadata["CLUSTER_ID"];
  if (a.contains("instanceIps")) {
    std::string ips;
    for (const std::string& ip : getStringList(a["instanceIps"], path + ".instanceIps")) {
      if (!SocketAddress::fromIp(ip, 0)) fail(path + ".instanceIps", "'" + ip + "' is not an IP address");
      ips += (ips.empty() ? "" : ",") + ip;
    }
    k.metadata["INSTANCE_IPS"] = ips;
  }
}

// parseMessages: xds.client.messages: true, or {"topics": [...]} (RFC 8030 topics: 1-32 base64url).
void parseMessages(const json& m, const std::string& path, XdsClientConfig& k) {
  if (m.is_boolean()) {
    k.messages = m.get<bool>();
    return;
  }
  if (!m.is_object()) fail(path, "expected true, false or {\"topics\": [...]}, got " + typeName(m));
  checkKeys(m, path, {"topics"});
  k.messages = true;
  if (!m.contains("topics")) return;
  const json& t = m["topics"];
  if (!t.is_array()) fail(path + ".topics", "expected an array of topics, got " + typeName(t));
  for (size_t i = 0; i < t.size(); ++i) {
    const std::string p = path + ".topics[" + std::to_string(i) + "]";
    const std::string topic = getString(t[i], p);
    const bool ok = !topic.empty() && topic.size() <= 32 && std::all_of(topic.begin(), topic.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
    });
    if (!ok) fail(p, "'" + topic.substr(0, 40) + "' is not 1-32 URL-safe base64 characters");
    k.messageTopics.push_back(topic);
  }
}

void parseClient(const json& j, const Config& c, XdsConfig& x) {
  const std::string path = "xds.client";
  if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  checkKeys(j, path,
            {"enabled", "address", "insecure", "tls", "delta", "node", "wildcard", "connectTimeout", "backoff",
             "ambient", "tokenFile", "messages"});
  if (j.contains("enabled") && !getBool(j["enabled"], path + ".enabled")) return;
  auto k = std::make_shared<XdsClientConfig>();
  if (!j.contains("address")) fail(path + ".address", "required: the control plane's host:port");
  const std::string a = getString(j["address"], path + ".address");
  auto hp = HostPort::parse(a);
  if (!hp) {
    fail(path + ".address", "'" + a + "' is not host:port (\"10.0.0.1:15010\", \"istiod.istio-system.svc:15012\")");
  }
  k->address = *hp;
  if (j.contains("insecure")) k->insecure = getBool(j["insecure"], path + ".insecure");
  if (j.contains("tls")) {
    const json& t = j["tls"];
    const std::string tp = path + ".tls";
    if (!t.is_object()) fail(tp, "expected an object, got " + typeName(t));
    checkKeys(t, tp, {"sni", "peerIds"});
    auto tls = std::make_shared<UpstreamTlsConfig>();
    if (t.contains("sni")) tls->sni = getString(t["sni"], tp + ".sni");
    if (t.contains("peerIds")) tls->peerIds = parseNodeIds(t["peerIds"], tp + ".peerIds");
    tls->alpn = {"h2"};
    if (k->insecure) fail(path + ".insecure", "\"insecure\" and \"tls\" exclude each other");
    k->tls = std::move(tls);
  }
  if (!k->insecure && !k->tls) {
    fail(path + ".tls", "required: mutual TLS with the node's identity ({} verifies the server against tls.trustedIds "
                        "or the CA; \"peerIds\" pins it), or \"insecure\": true for h2c");
  }
  if (j.contains("delta")) k->delta = getBool(j["delta"], path + ".delta");
  if (j.contains("wildcard")) k->wildcard = getBool(j["wildcard"], path + ".wildcard");
  k->nodeId = c.node.name.empty() ? "ugated" : c.node.name;
  if (j.contains("node")) {
    const json& n = j["node"];
    const std::string np = path + ".node";
    if (!n.is_object()) fail(np, "expected an object, got " + typeName(n));
    checkKeys(n, np, {"id", "cluster", "metadata"});
    if (n.contains("id")) k->nodeId = getString(n["id"], np + ".id");
    if (n.contains("cluster")) k->nodeCluster = getString(n["cluster"], np + ".cluster");
    if (n.contains("metadata")) {
      const json& m = n["metadata"];
      if (!m.is_object()) fail(np + ".metadata", "expected an object of strings, got " + typeName(m));
      for (const auto& [key, v] : m.items()) k->metadata[key] = getString(v, np + ".metadata." + key);
    }
  }
  if (j.contains("ambient")) parseAmbient(j["ambient"], path + ".ambient", j.contains("delta"), *k);
  if (j.contains("messages")) parseMessages(j["messages"], path + ".messages", *k);
  if (j.contains("tokenFile")) {
    k->tokenFile = getString(j["tokenFile"], path + ".tokenFile");
    if (k->tokenFile.empty()) fail(path + ".tokenFile", "must not be empty");
  }
  if (k->nodeId.empty()) fail(path + ".node.id", "must not be empty");
  if (j.contains("connectTimeout")) k->connectTimeout = getDuration(j["connectTimeout"], path + ".connectTimeout");
  if (j.contains("backoff")) {
    const json& b = j["backoff"];
    const std::string bp = path + ".backoff";
    if (!b.is_object()) fail(bp, "expected an object, got " + typeName(b));
    checkKeys(b, bp, {"min", "max"});
    if (b.contains("min")) k->backoffMin = getDuration(b["min"], bp + ".min");
    if (b.contains("max")) k->backoffMax = getDuration(b["max"], bp + ".max");
  }
  if (k->connectTimeout.count() < 10) fail(path + ".connectTimeout", "must be at least 10ms");
  if (k->backoffMin.count() < 10) fail(path + ".backoff.min", "must be at least 10ms");
  if (k->backoffMax < k->backoffMin) fail(path + ".backoff.max", "must not be shorter than backoff.min");
  x.client = std::move(k);
}

void parseXds(const json& j, const Config& c, XdsConfig& x) {
  if (!j.is_object()) fail("xds", "expected an object, got " + typeName(j));
  checkKeys(j, "xds", {"server", "client"});
  if (j.contains("server")) parseServer(j["server"], x);
  if (j.contains("client")) parseClient(j["client"], c, x);
}

}  // namespace

const XdsConfig& xdsConfig(const Config& c) {
  static const XdsConfig kDefaults = [] {
    XdsConfig x;
    x.serverAddress = *SocketAddress::parse(kDefaultAddress);
    return x;
  }();
  const XdsConfig* x = c.moduleConfig<XdsConfig>("xds");
  return x ? *x : kDefaults;
}

std::vector<std::string> XdsModule::configSections() const { return {"xds"}; }

void XdsModule::parseConfig(const json& root, Config& c, ConfigErrors& errs) const {
  auto x = std::make_shared<XdsConfig>(xdsConfig(Config{}));
  if (root.contains("xds")) errs.attempt([&] { parseXds(root["xds"], c, *x); });
  // Routes may name clusters the control plane defines (`cluster:NAME` not in "clusters").
  if (x->client) c.fromModules.dynamicClusters = true;
  // TLS contexts for the ADS server and client, built with the node's credentials.
  if (x->serverEnabled && x->serverTls) {
    c.fromModules.tls = true;
    c.fromModules.serverTls.push_back({*x->serverTls, "xds.server.tls"});
  }
  if (x->client && x->client->ambient) {
    // HBONE: mutual TLS with the node's identity (ALPN h2) to each workload's or waypoint's :15008,
    // dialled by the mesh as a `via` host:port (the context it asks for).
    c.fromModules.tls = true;
    UpstreamTlsConfig hbone;
    hbone.alpn = {"h2"};
    c.fromModules.clientTls.push_back({std::move(hbone), "xds.client.ambient (HBONE)"});
  }
  if (x->client && x->client->tls) {
    c.fromModules.tls = true;
    c.fromModules.clientTls.push_back({*x->client->tls, "xds.client.tls", false});
  }
  c.modules[std::string(name())] = std::move(x);
}

}  // namespace ugate::xds
