// The webpush module's config: the `webpush` section and kind `push`'s listener checks; the only
// file of the service that sees JSON config.
#include "webpush/webpush_config.h"

#include <nlohmann/json.hpp>

#include <ugate/config_json.h>

#include "auth/crypto.h"
#include "auth/encoding.h"
#include "webpush/push_api.h"
#include "webpush/vapid.h"
#include "webpush/webpush_module.h"

namespace ugate::webpush {

namespace {

using json = nlohmann::json;
using namespace cfgjson;  // NOLINT: the config helpers, in this parsing file only

double getRate(const json& j, const std::string& path) {
  if (!j.is_number() || j.get<double>() < 0 || j.get<double>() > 1e6) fail(path, "expected a number from 0 to 1000000");
  return j.get<double>();
}

GatewayConfig parseGateway(const json& g) {
  const std::string path = "webpush.gateway";
  if (!g.is_object()) fail(path, "expected an object, got " + typeName(g));
  checkKeys(g, path, {"target", "via", "peerId", "roots", "retryMin", "retryMax"});
  GatewayConfig c;
  if (!g.contains("target")) fail(path + ".target", "required: the gateway's push listener as <node>.mesh:<port>");
  const std::string t = getString(g["target"], path + ".target");
  auto hp = HostPort::parse(t);
  if (!hp) fail(path + ".target", "'" + t + "' is not host:port");
  c.target = *hp;
  if (g.contains("via")) c.via = getString(g["via"], path + ".via");
  if (g.contains("peerId")) c.peerId = getString(g["peerId"], path + ".peerId");
  if (g.contains("roots")) c.rootsFile = getString(g["roots"], path + ".roots");
  if (c.peerId.empty() == c.rootsFile.empty()) {
    fail(path, "give exactly one of peerId (the gateway's node ID) and roots (a CA file) to check its certificate");
  }
  if (g.contains("retryMin")) c.retryMin = getDuration(g["retryMin"], path + ".retryMin");
  if (g.contains("retryMax")) c.retryMax = getDuration(g["retryMax"], path + ".retryMax");
  if (c.retryMin.count() < 10 || c.retryMax < c.retryMin) fail(path, "retryMin must be at least 10ms and retryMax at least retryMin");
  return c;
}

TopicConfig parseTopic(const json& t, const std::string& path, const WebpushConfig& w) {
  if (!t.is_object()) fail(path, "expected an object, got " + typeName(t));
  checkKeys(t, path, {"name", "publishers", "identities", "rate", "burst", "maxSubscribers", "maxQueued"});
  TopicConfig c;
  if (!t.contains("name")) fail(path + ".name", "required");
  c.name = getString(t["name"], path + ".name");
  if (!isTopicName("n/" + c.name)) fail(path + ".name", "'" + c.name + "' is not 1 to 32 base64url characters");
  for (const auto& o : w.topics) {
    if (o.name == c.name) fail(path + ".name", "topic '" + c.name + "' is listed twice");
  }
  if (t.contains("identities")) {
    if (!t["identities"].is_array()) fail(path + ".identities", "expected an array of node IDs or SPIFFE IDs");
    for (const auto& i : t["identities"]) c.identities.push_back(getString(i, path + ".identities[]"));
  }
  if (t.contains("publishers") && !t["publishers"].is_array()) fail(path + ".publishers", "expected an array");
  if ((!t.contains("publishers") || t["publishers"].empty()) && c.identities.empty()) {
    fail(path, "who may publish: publishers (VAPID public keys, base64url) and/or identities (node or SPIFFE IDs)");
  }
  for (const auto& k : t.value("publishers", json::array())) {
    const std::string s = getString(k, path + ".publishers[]");
    auto raw = auth::base64Decode(s);
    if (!raw || raw->size() != 65 || !auth::isP256PublicKey(*raw)) {
      fail(path + ".publishers", "'" + s + "' is not the base64url of an uncompressed P-256 public key");
    }
    c.publishers.emplace_back(raw->begin(), raw->end());
  }
  if (t.contains("rate")) c.rate = getRate(t["rate"], path + ".rate");
  if (t.contains("burst")) c.burst = std::max(1.0, getRate(t["burst"], path + ".burst"));
  if (t.contains("maxSubscribers")) {
    c.maxSubscribers = static_cast<size_t>(getInt(t["maxSubscribers"], path + ".maxSubscribers", 1, 100000));
  }
  if (t.contains("maxQueued")) c.maxQueued = getInt(t["maxQueued"], path + ".maxQueued", 1, 1000000);
  return c;
}

void parseWebpush(const json& j, WebpushConfig& w) {
  if (!j.is_object()) fail("webpush", "expected an object, got " + typeName(j));
  checkKeys(j, "webpush", {"store", "sync", "maxTtl", "maxBody", "subscriptionTtl", "maxInFlight", "rateLimits",
                           "keepalive", "sweepInterval", "publicUrl", "storeBatch", "gateway", "topics"});
  if (j.contains("store")) w.store = getString(j["store"], "webpush.store");
  if (j.contains("sync")) {
    const std::string s = getString(j["sync"], "webpush.sync");
    if (s == "full") w.sync = SyncMode::Full;
    else if (s == "normal") w.sync = SyncMode::Normal;
    else fail("webpush.sync", "'" + s + "' is not full or normal");
  }
  auto seconds = [&](const char* key, int64_t lo) {
    const Duration d = getDuration(j[key], std::string("webpush.") + key);
    if (d.count() < lo * 1000) fail(std::string("webpush.") + key, "must be at least " + std::to_string(lo) + "s");
    return d.count() / 1000;
  };
  if (j.contains("maxTtl")) w.maxTtlSeconds = seconds("maxTtl", 0);
  if (j.contains("subscriptionTtl")) w.subscriptionTtlSeconds = seconds("subscriptionTtl", 1);
  if (j.contains("maxBody")) {
    // RFC 8030 §7.2: a push service must accept payloads of 4096 bytes.
    w.maxBody = static_cast<size_t>(getInt(j["maxBody"], "webpush.maxBody", 4096, 1 << 20));
  }
  if (j.contains("storeBatch")) w.storeBatch = static_cast<size_t>(getInt(j["storeBatch"], "webpush.storeBatch", 1, 4096));
  if (j.contains("maxInFlight")) w.maxInFlight = static_cast<uint32_t>(getInt(j["maxInFlight"], "webpush.maxInFlight", 1, 10000));
  if (j.contains("rateLimits")) {
    const json& r = j["rateLimits"];
    const std::string path = "webpush.rateLimits";
    if (!r.is_object()) fail(path, "expected an object, got " + typeName(r));
    checkKeys(r, path, {"subscriptionRate", "subscriptionBurst", "sourceRate", "sourceBurst"});
    if (r.contains("subscriptionRate")) w.subscriptionRate = getRate(r["subscriptionRate"], path + ".subscriptionRate");
    if (r.contains("subscriptionBurst")) w.subscriptionBurst = getRate(r["subscriptionBurst"], path + ".subscriptionBurst");
    if (r.contains("sourceRate")) w.sourceRate = getRate(r["sourceRate"], path + ".sourceRate");
    if (r.contains("sourceBurst")) w.sourceBurst = getRate(r["sourceBurst"], path + ".sourceBurst");
    if (w.subscriptionBurst < 1) w.subscriptionBurst = 1;
    if (w.sourceBurst < 1) w.sourceBurst = 1;
  }
  if (j.contains("keepalive")) {
    w.keepalive = getDuration(j["keepalive"], "webpush.keepalive");
    if (w.keepalive.count() < 100) fail("webpush.keepalive", "must be at least 100ms");
  }
  if (j.contains("sweepInterval")) {
    w.sweepInterval = getDuration(j["sweepInterval"], "webpush.sweepInterval");
    if (w.sweepInterval.count() < 100) fail("webpush.sweepInterval", "must be at least 100ms");
  }
  if (j.contains("publicUrl")) {
    const std::string u = getString(j["publicUrl"], "webpush.publicUrl");
    if (u.rfind("https://", 0) != 0 || u.size() <= 8 || u.find('/', 8) != std::string::npos) {
      fail("webpush.publicUrl", "'" + u + "' is not an https origin (\"https://push.example.net\")");
    }
    w.publicUrl = normalizeOrigin(u);
  }
  if (j.contains("gateway")) w.gateway = parseGateway(j["gateway"]);
  if (j.contains("topics")) {
    const json& ts = j["topics"];
    if (!ts.is_array()) fail("webpush.topics", "expected an array, got " + typeName(ts));
    for (size_t i = 0; i < ts.size(); ++i) w.topics.push_back(parseTopic(ts[i], "webpush.topics[" + std::to_string(i) + "]", w));
  }
}

}  // namespace

const TopicConfig* WebpushConfig::topic(std::string_view nodeName, std::string_view fullName) const {
  if (fullName.size() <= nodeName.size() + 1 || !fullName.starts_with(nodeName) || fullName[nodeName.size()] != '/') {
    return nullptr;
  }
  const std::string_view name = fullName.substr(nodeName.size() + 1);
  for (const auto& t : topics) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const WebpushConfig& webpushConfig(const Config& c) {
  static const WebpushConfig kDefaults;
  const WebpushConfig* w = c.moduleConfig<WebpushConfig>("webpush");
  return w ? *w : kDefaults;
}

std::string storePath(const Config& c) {
  const WebpushConfig& w = webpushConfig(c);
  if (!w.store.empty()) return w.store;
  return (c.node.dataDir.empty() ? std::string(".") : c.node.dataDir) + "/webpush.db";
}

std::vector<std::string> WebpushModule::configSections() const { return {"webpush"}; }

void WebpushModule::parseConfig(const json& root, Config& c, ConfigErrors& errs) const {
  auto w = std::make_shared<WebpushConfig>();
  if (root.contains("webpush")) errs.attempt([&] { parseWebpush(root["webpush"], *w); });
  c.modules[std::string(name())] = std::move(w);
}

ListenerKindSpec pushKindSpec() {
  ListenerKindSpec k;
  k.name = "push";
  k.streamKind = StreamKind::Tls;
  // Always HTTPS: browsers' and application servers' clients have no certificate of their own.
  auto tls = std::make_shared<ListenerTlsConfig>();
  tls->requireClientCert = false;
  tls->alpn = {"h2", "http/1.1"};
  k.defaultTls = std::move(tls);
  k.validate = [](const ListenerConfig& l, const std::string& path) -> Result<void> {
    if (l.to.type != Target::Type::None) {
      return makeError(Errc::InvalidArgument, path + ".to: kind 'push' is the push service itself and dials nothing");
    }
    for (const auto& a : l.tls->alpn) {
      if (a != "h2" && a != "http/1.1") {
        return makeError(Errc::InvalidArgument, path + ".tls.alpn: kind 'push' speaks h2 and http/1.1, not '" + a + "'");
      }
    }
    return {};
  };
  return k;
}

}  // namespace ugate::webpush
