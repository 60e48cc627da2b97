// Config parsing and validation. The only core file that includes nlohmann/json.
#include <ugate/config.h>
#include <ugate/config_json.h>
#include <ugate/text.h>
#include <ugate/module.h>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/cluster_config.h"

namespace ugate {
namespace cfgjson {

using json = nlohmann::json;

// configs/default.json, embedded at build time (see CMakeLists.txt): one source for both.
constexpr std::string_view kDefaultConfig =
#include "default_config.inc"
    ;

// ConfigError carries a path-qualified message out of the recursive validators. It never leaves
// this file: parseConfig turns it into an Error value.
[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw ConfigError{path + ": " + why};
}

std::string typeName(const json& j) { return j.type_name(); }

bool ConfigErrors::attempt(const std::function<void()>& fn) {
  try {
    fn();
    return true;
  } catch (const ConfigError& e) {
    msgs_.push_back(e.msg);
    return false;
  }
}

std::string ConfigErrors::joined() const {
  std::string out;
  for (const auto& m : msgs_) out += (out.empty() ? "" : "\n") + m;
  return out;
}

// ErrorList: core's name for the errors of independent elements (a section, a listener, a route,
// an upstream): an element's parsing stops at its first problem, the others go on, so one run
// reports every broken element.
using ErrorList = ConfigErrors;

std::set<std::string> eachElement(const json& root, const std::string& key, ConfigErrors& errs,
                                  const std::function<void(const json&, size_t, const std::string&)>& parse) {
  std::set<std::string> broken;
  if (!root.contains(key)) return broken;
  const json& a = root[key];
  const bool isArray = errs.attempt([&] {
    if (!a.is_array()) fail(key, "expected an array, got " + typeName(a));
  });
  if (!isArray) return broken;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string path = key + "[" + std::to_string(i) + "]";
    if (!errs.attempt([&] { parse(a[i], i, path); })) {
      const bool named = a[i].is_object() && a[i].contains("name") && a[i]["name"].is_string();
      broken.insert(named ? a[i]["name"].get<std::string>() : path);
    }
  }
  return broken;
}

void checkKeys(const json& j, const std::string& path, std::initializer_list<std::string_view> keys) {
  if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
      std::string known;
      for (auto k : keys) known += (known.empty() ? "" : ", ") + std::string(k);
      fail(path + "." + it.key(), "unknown key (known: " + known + ")");
    }
  }
}

std::string getString(const json& j, const std::string& path) {
  if (!j.is_string()) fail(path, "expected a string, got " + typeName(j));
  return j.get<std::string>();
}

int64_t getInt(const json& j, const std::string& path, int64_t lo, int64_t hi) {
  if (!j.is_number_integer()) fail(path, "expected an integer, got " + typeName(j));
  int64_t v = j.get<int64_t>();
  if (v < lo || v > hi) {
    fail(path, std::to_string(v) + " out of range [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
  }
  return v;
}

bool getBool(const json& j, const std::string& path) {
  if (!j.is_boolean()) fail(path, "expected true or false, got " + typeName(j));
  return j.get<bool>();
}

Duration getDuration(const json& j, const std::string& path) {
  std::optional<Duration> d;
  if (j.is_number()) {
    double v = j.get<double>();
    if (v < 0 || v > 86400.0 * 365) fail(path, "duration out of range");
    d = Duration(std::llround(v * 1000));
  } else if (j.is_string()) {
    d = parseDuration(j.get<std::string>());
    if (!d) fail(path, "invalid duration '" + j.get<std::string>() + "' (use e.g. 500ms, 10s, 5m, 1h)");
  } else {
    fail(path, "expected a duration (\"10s\" or seconds), got " + typeName(j));
  }
  return *d;
}

std::vector<std::string> getStringList(const json& j, const std::string& path) {
  std::vector<std::string> out;
  if (j.is_string()) {
    out.push_back(j.get<std::string>());
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) out.push_back(getString(j[i], path + "[" + std::to_string(i) + "]"));
  } else {
    fail(path, "expected a string or an array of strings, got " + typeName(j));
  }
  return out;
}

// parseAddress checks "ip:port" where the host must be a literal IP (listeners bind, they don't resolve).
SocketAddress parseBindAddress(const json& j, const std::string& path) {
  std::string s = getString(j, path);
  auto hp = HostPort::parse(s, /*allowZero=*/true);
  if (!hp) {
    // Give a precise reason for the common mistakes.
    auto colon = s.rfind(':');
    if (colon != std::string::npos) {
      std::string_view port = std::string_view(s).substr(colon + 1);
      long v = -1;
      auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
      if (ec == std::errc() && p == port.data() + port.size() && (v < 0 || v > 65535)) {
        fail(path, "port " + std::string(port) + " out of range");
      }
    }
    fail(path, "'" + s + "' is not ip:port (IPv6 as [::1]:port)");
  }
  auto a = SocketAddress::fromIp(hp->host, hp->port);
  if (!a) fail(path, "'" + hp->host + "' is not a literal IP address (listeners bind to IPs)");
  return *a;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool validHostName(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  }
  return true;
}

bool validClusterName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// targetFromString: the grammar of a target; nullopt with `why` set on error.
std::optional<Target> targetFromString(std::string_view s, std::string& why) {
  Target t;
  if (s == "reject") {
    t.type = Target::Type::Reject;
    return t;
  }
  if (s == "original") {
    t.type = Target::Type::Original;
    return t;
  }
  if (s.starts_with("cluster:")) {
    std::string_view name = s.substr(8);
    if (!validClusterName(name)) {
      why = "'" + std::string(s) + "': a cluster name is 1 to 64 letters, digits, '.', '_' or '-'";
      return std::nullopt;
    }
    t.type = Target::Type::Cluster;
    t.cluster = std::string(name);
    return t;
  }
  if (s.starts_with("sni:")) {
    // The stream's own SNI name on a fixed port (egress gateways). "sni" is never a host here.
    std::string_view port = s.substr(4);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v < 1 || v > 65535) {
      why = "'" + std::string(s) + "': the port of sni:PORT must be 1..65535";
      return std::nullopt;
    }
    t.type = Target::Type::SniHost;
    t.hostPort.port = static_cast<uint16_t>(v);
    return t;
  }
  auto hp = HostPort::parse(s);
  if (!hp) {
    why = "'" + std::string(s) + "' is not a target (host:port, sni:PORT, cluster:NAME, original or reject)";
    return std::nullopt;
  }
  if (!SocketAddress::fromIp(hp->host, hp->port) && !validHostName(hp->host)) {
    why = "'" + hp->host + "' is not a valid host name";
    return std::nullopt;
  }
  hp->host = lower(hp->host);
  t.type = Target::Type::HostPort;
  t.hostPort = *hp;
  return t;
}

Target parseTarget(const json& j, const std::string& path) {
  std::string s = getString(j, path);
  std::string why;
  auto t = targetFromString(s, why);
  if (!t) fail(path, why);
  return *t;
}

// parseAlpnList: exact ALPN protocol names (RFC 7301: 1..255 bytes).
std::vector<std::string> parseAlpnList(const json& j, const std::string& path) {
  auto v = getStringList(j, path);
  for (size_t i = 0; i < v.size(); ++i) {
    std::string p = path + (j.is_array() ? "[" + std::to_string(i) + "]" : "");
    if (v[i].empty() || v[i].size() > 255) fail(p, "an ALPN protocol name is 1 to 255 bytes");
    if (v[i].find(',') != std::string::npos) {
      fail(p, "'" + v[i] + "': ALPN names with ',' cannot be matched");
    }
  }
  return v;
}

std::vector<std::string> parseNamePatterns(const json& j, const std::string& path) {
  auto v = getStringList(j, path);
  for (size_t i = 0; i < v.size(); ++i) {
    std::string p = path + (j.is_array() ? "[" + std::to_string(i) + "]" : "");
    std::string_view s = v[i];
    if (s == "*") continue;
    if (s.starts_with("*.")) s.remove_prefix(2);
    if (!validHostName(s)) fail(p, "'" + v[i] + "' is not a host name or *.suffix pattern");
    v[i] = lower(v[i]);
  }
  return v;
}

std::vector<PortRange> parsePorts(const json& j, const std::string& path) {
  std::vector<PortRange> out;
  auto one = [&](const json& e, const std::string& p) {
    if (e.is_number_integer()) {
      auto v = static_cast<uint16_t>(getInt(e, p, 1, 65535));
      out.push_back({v, v});
    } else if (e.is_string()) {
      std::string s = e.get<std::string>();
      auto dash = s.find('-');
      unsigned lo = 0, hi = 0;
      auto parseU = [](std::string_view t, unsigned& v) {
        auto [q, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        return ec == std::errc() && q == t.data() + t.size();
      };
      bool ok = dash == std::string::npos
                    ? parseU(s, lo) && (hi = lo, true)
                    : parseU(std::string_view(s).substr(0, dash), lo) &&
                          parseU(std::string_view(s).substr(dash + 1), hi);
      if (!ok || lo < 1 || hi > 65535 || lo > hi) fail(p, "'" + s + "' is not a port or range lo-hi");
      out.push_back({static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)});
    } else {
      fail(p, "expected a port number or \"lo-hi\", got " + typeName(e));
    }
  };
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) one(j[i], path + "[" + std::to_string(i) + "]");
  } else {
    one(j, path);
  }
  return out;
}

std::vector<Cidr> parseCidrs(const json& j, const std::string& path) {
  std::vector<Cidr> out;
  auto v = getStringList(j, path);
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = Cidr::parseChecked(v[i]);
    if (!c) {
      fail(path + (j.is_array() ? "[" + std::to_string(i) + "]" : ""),
           "'" + v[i] + "' is not a CIDR: " + c.error().detail);
    }
    out.push_back(*c);
  }
  return out;
}

uint8_t parseProxyVersion(const json& j, const std::string& path) {
  std::string v = getString(j, path);
  if (v == "v1") return 1;
  if (v == "v2") return 2;
  if (v == "none") return 0;
  fail(path, "'" + v + "' is not one of v1, v2, none");
}

std::vector<std::string> parseNodeIds(const json& j, const std::string& path) {
  auto ids = getStringList(j, path);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!isNodeId(ids[i])) {
      fail(path + (j.is_array() ? "[" + std::to_string(i) + "]" : ""),
           "'" + ids[i] + "' is not a node ID (52 base32 characters, as printed by `ugated id`)");
    }
    for (auto& ch : ids[i]) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  }
  return ids;
}

// parsePeerIds: node IDs (normalised to upper case) or spiffe:// IDs, and "*" (any authenticated
// peer) when star is allowed.
std::vector<std::string> parsePeerIds(const json& j, const std::string& path, bool star) {
  auto ids = getStringList(j, path);
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string& id = ids[i];
    if ((star && id == "*") || (id.rfind("spiffe://", 0) == 0 && id.size() > 9)) continue;
    if (!isNodeId(id)) {
      fail(path + (j.is_array() ? "[" + std::to_string(i) + "]" : ""),
           "'" + id + "' is neither a node ID (as printed by `ugated id`) nor a spiffe:// ID" +
               (star ? " nor \"*\"" : ""));
    }
    for (auto& ch : id) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  }
  return ids;
}

// parseListenerTls: a listener's "tls"; keys it omits take the kind's defaults (`base`) when it has any.
std::shared_ptr<const ListenerTlsConfig> parseListenerTls(const json& j, const std::string& path,
                                                          const ListenerTlsConfig* base) {
  checkKeys(j, path, {"requireClientCert", "alpn"});
  auto t = std::make_shared<ListenerTlsConfig>();
  if (base) t->requireClientCert = base->requireClientCert;
  if (j.contains("requireClientCert")) t->requireClientCert = getBool(j["requireClientCert"], path + ".requireClientCert");
  if (j.contains("alpn")) t->alpn = parseAlpnList(j["alpn"], path + ".alpn");
  return t;
}

std::shared_ptr<const UpstreamTlsConfig> parseUpstreamTls(const json& j, const std::string& path) {
  checkKeys(j, path, {"sni", "peerIds", "alpn", "insecureSkipVerify"});
  auto t = std::make_shared<UpstreamTlsConfig>();
  if (j.contains("sni")) t->sni = getString(j["sni"], path + ".sni");
  if (j.contains("peerIds")) t->peerIds = parseNodeIds(j["peerIds"], path + ".peerIds");
  if (j.contains("alpn")) t->alpn = parseAlpnList(j["alpn"], path + ".alpn");
  if (j.contains("insecureSkipVerify")) t->insecureSkipVerify = getBool(j["insecureSkipVerify"], path + ".insecureSkipVerify");
  if (t->insecureSkipVerify && !t->peerIds.empty()) {
    fail(path + ".insecureSkipVerify", "contradicts peerIds (pinning): use one or the other");
  }
  return t;
}

void parseTls(const json& j, const std::string& path, TlsConfig& t) {
  checkKeys(j, path, {"certDir", "rootsFile", "trustedIds", "requireTrustDomain", "namespace",
                      "handshakeTimeout", "reloadInterval", "certValidity", "renewBefore"});
  if (j.contains("certDir")) t.certDir = getString(j["certDir"], path + ".certDir");
  if (j.contains("rootsFile")) t.rootsFile = getString(j["rootsFile"], path + ".rootsFile");
  if (j.contains("trustedIds")) t.trustedIds = parseNodeIds(j["trustedIds"], path + ".trustedIds");
  if (j.contains("requireTrustDomain")) {
    t.requireTrustDomain = getBool(j["requireTrustDomain"], path + ".requireTrustDomain");
  }
  if (j.contains("namespace")) t.ns = getString(j["namespace"], path + ".namespace");
  if (j.contains("handshakeTimeout")) t.handshakeTimeout = getDuration(j["handshakeTimeout"], path + ".handshakeTimeout");
  if (j.contains("reloadInterval")) {
    t.reloadInterval = getDuration(j["reloadInterval"], path + ".reloadInterval");
    if (t.reloadInterval.count() < 100) fail(path + ".reloadInterval", "must be at least 100ms");
  }
  if (j.contains("certValidity")) t.certValidity = getDuration(j["certValidity"], path + ".certValidity");
  if (j.contains("renewBefore")) t.renewBefore = getDuration(j["renewBefore"], path + ".renewBefore");
  if (t.handshakeTimeout.count() <= 0) fail(path + ".handshakeTimeout", "must be positive");
  if (t.certValidity.count() < 1000) fail(path + ".certValidity", "must be at least 1s");
  if (t.renewBefore >= t.certValidity) {
    fail(path + ".renewBefore", "must be shorter than certValidity (or every check would renew)");
  }
}

void parseListener(const json& j, const std::string& path, ListenerConfig& l) {
  if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  if (!j.contains("kind")) fail(path + ".kind", "required");
  l.kind = getString(j["kind"], path + ".kind");
  const ListenerKindSpec* spec = listenerKinds().find(l.kind);
  if (!spec) {
    std::string known;
    for (const auto& k : listenerKinds().names()) known += (known.empty() ? "" : ", ") + k;
    fail(path + ".kind", "'" + l.kind + "' is not available in this build (available: " + known + ")");
  }
  l.spec = spec;
  l.streamKind = spec->streamKind;
  static const std::vector<std::string> common{"name", "kind", "address", "to", "backlog",
                                               "idleTimeout", "connectTimeout", "sniffTimeout",
                                               "proxyProtocol", "acceptProxyProtocol", "tls",
                                               "upstreamTls", "sharePort"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = std::find(common.begin(), common.end(), it.key()) != common.end() ||
                 std::find(spec->optionKeys.begin(), spec->optionKeys.end(), it.key()) != spec->optionKeys.end();
    if (!known) {
      std::string keys;
      for (const auto& k : common) keys += (keys.empty() ? "" : ", ") + k;
      for (const auto& k : spec->optionKeys) keys += ", " + k;
      fail(path + "." + it.key(), "unknown key for kind '" + l.kind + "' (known: " + keys + ")");
    }
  }
  if (!j.contains("name")) fail(path + ".name", "required");
  if (!j.contains("address")) fail(path + ".address", "required");
  l.name = getString(j["name"], path + ".name");
  if (l.name.empty() || l.name.size() > 64) fail(path + ".name", "must be 1 to 64 characters");
  l.address = parseBindAddress(j["address"], path + ".address");
  if (j.contains("to")) l.to = parseTarget(j["to"], path + ".to");
  if (spec->defaultOriginal && l.to.type == Target::Type::None) l.to.type = Target::Type::Original;
  if (l.to.type == Target::Type::SniHost && !spec->newFrontDoor) {
    fail(path + ".to", "'" + l.to.str() + "' needs a front door that reads SNI (kind 'sni'), " +
                           "not kind '" + l.kind + "'");
  }
  if (l.to.type == Target::Type::Cluster && spec->datagram) {
    fail(path + ".to", "'" + l.to.str() + "': clusters serve TCP streams, not kind '" + l.kind + "'");
  }
  if (spec->toRequired && l.to.type == Target::Type::None) {
    fail(path + ".to", "required for kind '" + l.kind + "'");
  }
  if (j.contains("backlog")) l.backlog = static_cast<int>(getInt(j["backlog"], path + ".backlog", 1, 65535));
  if (j.contains("sharePort")) l.sharePort = getBool(j["sharePort"], path + ".sharePort");
  if (j.contains("idleTimeout")) l.idleTimeout = getDuration(j["idleTimeout"], path + ".idleTimeout");
  if (j.contains("connectTimeout")) {
    l.connectTimeout = getDuration(j["connectTimeout"], path + ".connectTimeout");
  }
  if (j.contains("sniffTimeout")) l.sniffTimeout = getDuration(j["sniffTimeout"], path + ".sniffTimeout");
  if (j.contains("proxyProtocol")) l.proxyProtocol = parseProxyVersion(j["proxyProtocol"], path + ".proxyProtocol");
  if (j.contains("acceptProxyProtocol")) {
    l.acceptProxyProtocol = getBool(j["acceptProxyProtocol"], path + ".acceptProxyProtocol");
  }
  if (spec->fixedTls) {
    if (j.contains("tls")) fail(path + ".tls", "kind '" + l.kind + "' always uses mutual TLS; its settings are fixed");
    l.tls = spec->fixedTls;
  } else if (j.contains("tls")) {
    l.tls = parseListenerTls(j["tls"], path + ".tls", spec->defaultTls.get());
    if (spec->defaultTls && l.tls && l.tls->alpn.empty() && !spec->defaultTls->alpn.empty()) {
      auto t = std::make_shared<ListenerTlsConfig>(*l.tls);
      t->alpn = spec->defaultTls->alpn;
      l.tls = std::move(t);
    }
  } else if (spec->defaultTls) {
    l.tls = spec->defaultTls;
  }
  if (j.contains("upstreamTls")) {
    if (l.to.type == Target::Type::None || l.to.type == Target::Type::Reject) {
      fail(path + ".upstreamTls", "applies to the listener's `to`, which is not set to a destination");
    }
    l.upstreamTls = parseUpstreamTls(j["upstreamTls"], path + ".upstreamTls");
  }
  if (spec->parseOptions) {
    auto o = spec->parseOptions(j, path);
    if (!o) throw ConfigError{o.error().detail};
    l.options = *o;
  }
  if (spec->validate) {
    auto v = spec->validate(l, path);
    if (!v) throw ConfigError{v.error().detail};
  }
}

void parseRoute(const json& j, const std::string& path, size_t index, RouteConfig& r) {
  checkKeys(j, path, {"name", "match", "to", "proxyProtocol", "upstreamTls", "via", "http", "upstreamQuic"});
  if (j.contains("http")) r.http = getBool(j["http"], path + ".http");
  if (j.contains("upstreamQuic")) r.upstreamQuic = getBool(j["upstreamQuic"], path + ".upstreamQuic");
  if (r.upstreamQuic) {
    if (j.contains("http") && !r.http) fail(path + ".http", "an upstreamQuic route is an HTTP (HTTP/3) origin");
    r.http = true;
  }
  if (j.contains("via")) {
    r.via = getString(j["via"], path + ".via");
    if (r.via.empty()) fail(path + ".via", "must name an upstream or a gateway host:port");
  }
  if (j.contains("proxyProtocol")) r.proxyProtocol = parseProxyVersion(j["proxyProtocol"], path + ".proxyProtocol");
  r.name = j.contains("name") ? getString(j["name"], path + ".name") : "routes[" + std::to_string(index) + "]";
  if (!j.contains("to")) fail(path + ".to", "required");
  r.to = parseTarget(j["to"], path + ".to");
  if (!r.via.empty() && r.to.type == Target::Type::Cluster) {
    fail(path + ".via", "a cluster's endpoints are dialled directly; `via` does not apply to '" + r.to.str() + "'");
  }
  if (r.http && r.to.type != Target::Type::HostPort) {
    fail(path + ".http", "an HTTP origin route needs a host:port `to`");
  }
  if (j.contains("upstreamTls")) {
    if (r.to.type == Target::Type::Reject) fail(path + ".upstreamTls", "a route to 'reject' dials nothing");
    r.upstreamTls = parseUpstreamTls(j["upstreamTls"], path + ".upstreamTls");
  }
  if (r.upstreamQuic) {
    // HTTP/3 over QUIC: always TLS 1.3, ALPN h3 unless the route names its own.
    if (!r.via.empty()) fail(path + ".via", "an upstreamQuic origin is dialled directly over QUIC");
    if (r.proxyProtocol != 0) fail(path + ".proxyProtocol", "not sent to an upstreamQuic (HTTP/3) origin");
    auto t = r.upstreamTls ? std::make_shared<UpstreamTlsConfig>(*r.upstreamTls) : std::make_shared<UpstreamTlsConfig>();
    if (t->alpn.empty()) t->alpn = {"h3"};
    r.upstreamTls = std::move(t);
  }
  if (j.contains("match")) {
    const json& m = j["match"];
    std::string mp = path + ".match";
    checkKeys(m, mp, {"listener", "sni", "alpn", "host", "port", "cidr", "sourceCidr", "identity"});
    if (m.contains("listener")) r.match.listeners = getStringList(m["listener"], mp + ".listener");
    if (m.contains("sni")) r.match.sni = parseNamePatterns(m["sni"], mp + ".sni");
    if (m.contains("alpn")) r.match.alpn = parseAlpnList(m["alpn"], mp + ".alpn");
    if (m.contains("host")) r.match.hosts = parseNamePatterns(m["host"], mp + ".host");
    if (m.contains("port")) r.match.ports = parsePorts(m["port"], mp + ".port");
    if (m.contains("cidr")) r.match.cidrs = parseCidrs(m["cidr"], mp + ".cidr");
    if (m.contains("sourceCidr")) r.match.sourceCidrs = parseCidrs(m["sourceCidr"], mp + ".sourceCidr");
    if (m.contains("identity")) r.match.identities = getStringList(m["identity"], mp + ".identity");
  }
}

void parseLimits(const json& j, const std::string& path, LimitsConfig& l) {
  checkKeys(j, path, {"connectTimeout", "idleTimeout", "drainTimeout", "sniffTimeout",
                      "maxConnections", "maxConnectionsPerWorker", "copyBufferBytes", "pipeBytes", "splice"});
  if (j.contains("maxConnections")) {
    l.maxConnections = static_cast<uint32_t>(getInt(j["maxConnections"], path + ".maxConnections", 0, 100'000'000));
    if (j.contains("maxConnectionsPerWorker")) {
      fail(path + ".maxConnections", "set either maxConnections (the whole process) or maxConnectionsPerWorker, not both");
    }
  }
  if (j.contains("sniffTimeout")) l.sniffTimeout = getDuration(j["sniffTimeout"], path + ".sniffTimeout");
  if (j.contains("connectTimeout")) l.connectTimeout = getDuration(j["connectTimeout"], path + ".connectTimeout");
  if (j.contains("idleTimeout")) l.idleTimeout = getDuration(j["idleTimeout"], path + ".idleTimeout");
  if (j.contains("drainTimeout")) l.drainTimeout = getDuration(j["drainTimeout"], path + ".drainTimeout");
  if (j.contains("maxConnectionsPerWorker")) {
    l.maxConnectionsPerWorker = static_cast<uint32_t>(
        getInt(j["maxConnectionsPerWorker"], path + ".maxConnectionsPerWorker", 0, 10'000'000));
  }
  if (j.contains("copyBufferBytes")) {
    l.copyBufferBytes = static_cast<uint32_t>(getInt(j["copyBufferBytes"], path + ".copyBufferBytes", 4096, 1 << 24));
  }
  if (j.contains("pipeBytes")) {
    l.pipeBytes = static_cast<uint32_t>(getInt(j["pipeBytes"], path + ".pipeBytes", 4096, 1 << 24));
  }
  if (j.contains("splice")) {
    l.splice = getString(j["splice"], path + ".splice");
    if (l.splice != "auto" && l.splice != "always" && l.splice != "never") {
      fail(path + ".splice", "'" + l.splice + "' is not one of auto, always, never");
    }
  }
}

void parseLog(const json& j, const std::string& path, LogConfig& l) {
  checkKeys(j, path, {"level", "format", "accessLog", "file"});
  if (j.contains("format")) {
    const std::string f = getString(j["format"], path + ".format");
    if (f != "text" && f != "json") fail(path + ".format", "'" + f + "' is not one of text, json");
    l.json = f == "json";
  }
  if (j.contains("level")) {
    l.level = getString(j["level"], path + ".level");
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (!levels.count(l.level)) fail(path + ".level", "'" + l.level + "' is not a log level (trace, debug, info, warn, error, critical, off)");
  }
  if (j.contains("accessLog")) l.accessLog = getString(j["accessLog"], path + ".accessLog");
  if (j.contains("file")) {
    l.file = getString(j["file"], path + ".file");
    if (l.file == "-") fail(path + ".file", "\"-\" is not a file: leave log.file out to log to stderr");
  }
}

void parseDns(const json& j, const std::string& path, DnsConfig& d) {
  checkKeys(j, path, {"servers", "timeout", "minTtl", "maxTtl", "negativeTtl"});
  if (j.contains("servers")) {
    d.servers = getStringList(j["servers"], path + ".servers");
    for (size_t i = 0; i < d.servers.size(); ++i) {
      const auto& s = d.servers[i];
      if (!SocketAddress::fromIp(s, 53) && !SocketAddress::parse(s)) {
        fail(path + ".servers[" + std::to_string(i) + "]", "'" + s + "' is not an IP or ip:port");
      }
    }
  }
  if (j.contains("timeout")) d.timeout = getDuration(j["timeout"], path + ".timeout");
  if (j.contains("minTtl")) d.minTtl = getDuration(j["minTtl"], path + ".minTtl");
  if (j.contains("maxTtl")) d.maxTtl = getDuration(j["maxTtl"], path + ".maxTtl");
  if (j.contains("negativeTtl")) d.negativeTtl = getDuration(j["negativeTtl"], path + ".negativeTtl");
}

void parseNode(const json& n, NodeConfig& node) {
  checkKeys(n, "node", {"name", "trustDomain", "dataDir", "meshSuffix"});
  if (n.contains("name")) node.name = getString(n["name"], "node.name");
  if (n.contains("trustDomain")) node.trustDomain = getString(n["trustDomain"], "node.trustDomain");
  if (n.contains("dataDir")) node.dataDir = getString(n["dataDir"], "node.dataDir");
  if (n.contains("meshSuffix")) {
    node.meshSuffix = getString(n["meshSuffix"], "node.meshSuffix");
    if (node.meshSuffix.empty() || node.meshSuffix.front() == '.' || node.meshSuffix.back() == '.') {
      fail("node.meshSuffix", "must be a domain suffix like \"mesh\" (no leading or trailing dot)");
    }
  }
}

void parseAdmin(const json& a, AdminConfig& admin) {
  checkKeys(a, "admin", {"address", "enabled"});
  if (a.contains("enabled")) admin.enabled = getBool(a["enabled"], "admin.enabled");
  if (a.contains("address")) admin.address = parseBindAddress(a["address"], "admin.address");
}

void parseHealth(const json& h, const AdminConfig& admin, HealthConfig& health) {
  checkKeys(h, "health", {"address", "path"});
  health.enabled = true;
  health.address = *SocketAddress::parse("0.0.0.0:15021");
  if (h.contains("address")) health.address = parseBindAddress(h["address"], "health.address");
  if (h.contains("path")) {
    health.path = getString(h["path"], "health.path");
    const auto& p = health.path;
    if (p.empty() || p.front() != '/' || p.size() > 256 ||
        std::any_of(p.begin(), p.end(), [](char ch) { return ch <= ' ' || ch == '?' || ch == '#' || ch == 0x7f; })) {
      fail("health.path", "'" + p + "' is not an absolute path (starts with /, at most 256 characters, no spaces, ? or #)");
    }
  }
  if (admin.enabled && health.address.port() != 0 && health.address == admin.address) {
    fail("health.address", health.address.str() + " is admin.address: the readiness port must be a port of its own");
  }
}

// Broken: names of listeners that failed to parse (already reported), so references to them are
// not reported again (modules keep theirs in fromModules.broken).
struct Broken {
  std::set<std::string> listeners;
  std::set<std::string> clusters;
};

// checkClusterTarget: a `cluster:NAME` target names a cluster of this config.
void checkClusterTarget(const Target& t, const std::string& path, const Config& c, const Broken& broken) {
  if (t.type != Target::Type::Cluster || c.findCluster(t.cluster) || broken.clusters.count(t.cluster)) return;
  if (c.fromModules.dynamicClusters) return;  // defined at run time (a stream fails until it is)
  std::string known;
  for (const auto& k : c.clusters) known += (known.empty() ? "" : ", ") + k.name;
  fail(path, "no cluster named '" + t.cluster + "'" +
                 (known.empty() ? " (the config has no clusters)" : " (clusters: " + known + ")"));
}

// addListener parses listeners[i] (path p) and checks it against the listeners parsed before it.
// (Its `cluster:NAME` target is checked once modules have parsed: one may define clusters.)
void addListener(const json& j, const std::string& p, Config& c, std::vector<std::pair<std::string, Target>>& clusterTargets) {
  ListenerConfig l;
  parseListener(j, p, l);
  if (l.to.type == Target::Type::Cluster) clusterTargets.emplace_back(p + ".to", l.to);
  for (const auto& o : c.listeners) {
    if (o.name == l.name) fail(p + ".name", "duplicate listener name '" + l.name + "'");
  }
  for (const auto& o : c.listeners) {
    // A TCP and a UDP listener may share an address (DNS, QUIC beside TLS, ...).
    const bool sameProtocol = (o.spec && o.spec->datagram) == (l.spec && l.spec->datagram);
    if (o.address == l.address && l.address.port() != 0 && sameProtocol) {
      fail(p + ".address", l.address.str() + " is already used by listener '" + o.name + "'");
    }
  }
  c.listeners.push_back(std::move(l));
}

// addRoute parses routes[i]; the listeners it matches and the upstream it goes via must exist.
void addRoute(const json& j, size_t i, Config& c, const Broken& broken) {
  std::string p = "routes[" + std::to_string(i) + "]";
  RouteConfig r;
  parseRoute(j, p, i, r);
  checkClusterTarget(r.to, p + ".to", c, broken);
  // Each names a listener, or an upstream: the streams its gateway sends over our association,
  // whose meta.listener is "upstream:<name>".
  for (size_t k = 0; k < r.match.listeners.size(); ++k) {
    std::string& name = r.match.listeners[k];
    if (c.findListener(name) || broken.listeners.count(name)) continue;
    // A name a module gives its streams (the mesh: an upstream, as "gw1" or "upstream:gw1").
    if (auto src = c.fromModules.routeSources.find(name); src != c.fromModules.routeSources.end()) {
      name = src->second;
      continue;
    }
    if (c.fromModules.broken.count(name)) continue;
    bool list = j["match"]["listener"].is_array();
    fail(p + ".match.listener" + (list ? "[" + std::to_string(k) + "]" : ""),
         "no listener or upstream named '" + name + "'");
  }
  if (!r.via.empty() && !c.fromModules.broken.count(r.via)) {
    const bool named = c.fromModules.gateways.count(r.via) != 0;
    auto hp = HostPort::parse(r.via);
    if (!named && (!hp || hp->port == 0)) {
      fail(p + ".via", "'" + r.via + "' is neither an upstream's name nor host:port");
    }
  }
  c.routes.push_back(std::move(r));
}

// kDumpOnlyKeys: what /config_dump adds beside the config (which source supplied what, the clusters
// modules defined at run time). Not config: ignored on load, so a dump fed back is a valid config.
constexpr std::string_view kDumpOnlyKeys[] = {"configSources", "dynamicClusters"};

void parseConfigWatch(const json& j, ConfigWatchConfig& w) {
  checkKeys(j, "configWatch", {"enabled", "debounce"});
  w.enabled = j.contains("enabled") ? getBool(j["enabled"], "configWatch.enabled") : true;
  if (j.contains("debounce")) {
    w.debounce = getDuration(j["debounce"], "configWatch.debounce");
    if (w.debounce.count() < 10 || w.debounce.count() > 60'000) {
      fail("configWatch.debounce", "must be between 10ms and 60s");
    }
  }
}

// resourcesOf: each top-level element of the (redacted) document with the hash of its JSON.
std::vector<StoredResource> resourcesOf(const json& root) {
  std::vector<StoredResource> out;
  if (!root.is_object()) return out;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(std::begin(kDumpOnlyKeys), std::end(kDumpOnlyKeys), key) != std::end(kDumpOnlyKeys)) continue;
    const bool list = key == "listeners" || key == "routes" || key == "clusters";
    if (!list || !it->is_array()) {
      out.push_back({"section", key, contentVersion(it->dump())});
      continue;
    }
    const std::string type = key.substr(0, key.size() - 1);
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      const bool named = e.is_object() && e.contains("name") && e["name"].is_string();
      out.push_back({type, named ? e["name"].get<std::string>() : key + "[" + std::to_string(i) + "]",
                     contentVersion(e.dump())});
    }
  }
  return out;
}

// parseRoot parses every section; each section, listener, route and upstream is an element of its
// own (ErrorList), so one broken element does not hide the errors of the others.
void parseRoot(const json& root, const ConfigDefaults& defaults, Config& c, ErrorList& errs) {
  errs.attempt([&] {
    // Core's keys, then each module's sections.
    static constexpr std::string_view kCore[] = {"node", "workers", "admin", "listeners", "routes",
                                                 "limits", "log", "dns", "tls", "clusters", "health",
                                                 "configWatch", kDumpOnlyKeys[0], kDumpOnlyKeys[1]};
    std::vector<std::string> known(std::begin(kCore), std::end(kCore));
    for (const auto& m : modules().list()) {
      for (auto& k : m->configSections()) known.push_back(std::move(k));
    }
    if (!root.is_object()) fail("$", "expected an object, got " + typeName(root));
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        fail("$." + it.key(), "unknown key (known: " + list + ")");
      }
    }
  });
  if (!root.is_object()) return;
  bool credentialsOk = true;  // node and tls parsed: the dataDir requirement below can be judged
  if (root.contains("node")) credentialsOk &= errs.attempt([&] { parseNode(root["node"], c.node); });
  // A packaged service keeps its identity in its state directory without saying so in the file.
  if (!root.contains("node") || !root["node"].is_object() || !root["node"].contains("dataDir")) {
    c.node.dataDir = defaults.dataDir;
    c.node.dataDirFromEnvironment = !defaults.dataDir.empty();
  }
  if (root.contains("workers")) {
    errs.attempt([&] { c.workers = static_cast<int>(getInt(root["workers"], "workers", 0, 256)); });
  }
  c.admin.address = *SocketAddress::parse("127.0.0.1:15000");
  if (root.contains("admin")) errs.attempt([&] { parseAdmin(root["admin"], c.admin); });
  if (root.contains("health")) errs.attempt([&] { parseHealth(root["health"], c.admin, c.health); });
  if (root.contains("configWatch")) errs.attempt([&] { parseConfigWatch(root["configWatch"], c.watch); });
  if (root.contains("limits")) errs.attempt([&] { parseLimits(root["limits"], "limits", c.limits); });
  if (root.contains("log")) errs.attempt([&] { parseLog(root["log"], "log", c.log); });
  if (root.contains("dns")) errs.attempt([&] { parseDns(root["dns"], "dns", c.dns); });
  if (root.contains("tls")) credentialsOk &= errs.attempt([&] { parseTls(root["tls"], "tls", c.tls); });
  Broken broken;
  // Clusters first: listeners and routes may target them.
  broken.clusters = eachElement(root, "clusters", errs, [&](const json& j, size_t, const std::string& p) {
    addCluster(j, p, c);
  });
  std::vector<std::pair<std::string, Target>> listenerClusterTargets;
  broken.listeners = eachElement(root, "listeners", errs, [&](const json& j, size_t, const std::string& p) {
    addListener(j, p, c, listenerClusterTargets);
  });
  // Modules' sections, before the routes: a route may name their streams or go via their gateways.
  for (const auto& m : modules().list()) m->parseConfig(root, c, errs);
  for (const auto& pt : listenerClusterTargets) errs.attempt([&] { checkClusterTarget(pt.second, pt.first, c, broken); });
  eachElement(root, "routes", errs, [&](const json& j, size_t i, const std::string&) { addRoute(j, i, c, broken); });
  for (const auto& m : modules().list()) m->finishConfig(c, errs);
  if (credentialsOk && c.usesTls() && c.node.dataDir.empty() && c.tls.certDir.empty()) {
    errs.attempt([&] {
      fail("node.dataDir", "required when a listener or route uses TLS (the node's key and certificate "
                           "live there), unless tls.certDir names the certificates (under systemd, "
                           "StateDirectory= provides it through $STATE_DIRECTORY)");
    });
  }
}

// redactSecrets replaces the values of secret keys (proxy users' passwords, and keys modules add
// under these names) so /config_dump never shows them: the admin endpoint has no authentication.
void redactSecrets(json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const bool secret = k == "password" || k == "secret" || k == "token" || k == "privateKey";
      if (secret && it.value().is_string()) {
        it.value() = "[redacted]";
      } else {
        redactSecrets(it.value());
      }
    }
  } else if (j.is_array()) {
    for (auto& e : j) redactSecrets(e);
  }
}

}  // namespace cfgjson

using namespace cfgjson;  // NOLINT: this file is where the helpers live

std::string Target::str() const {
  switch (type) {
    case Type::None: return "";
    case Type::HostPort: return hostPort.str();
    case Type::Original: return "original";
    case Type::Reject: return "reject";
    case Type::SniHost: return "sni:" + std::to_string(hostPort.port);
    case Type::Cluster: return "cluster:" + cluster;
  }
  return "";
}

Result<Target> parseTarget(std::string_view s) {
  std::string why;
  auto t = targetFromString(s, why);
  if (!t) return makeError(Errc::InvalidArgument, why);
  return *t;
}


const ListenerConfig* Config::findListener(std::string_view name) const {
  for (const auto& l : listeners) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

const ClusterConfig* Config::findCluster(std::string_view name) const {
  for (const auto& k : clusters) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::optional<Duration> parseDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  while (i < s.size() && (isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + i, v);
  if (ec != std::errc() || p != s.data() + i || v < 0) return std::nullopt;
  std::string_view unit = s.substr(i);
  double ms;
  if (unit == "ms") ms = v;
  else if (unit == "s" || unit.empty()) ms = v * 1000;
  else if (unit == "m") ms = v * 60'000;
  else if (unit == "h") ms = v * 3'600'000;
  else return std::nullopt;
  if (ms > 86400.0 * 365 * 1000) return std::nullopt;
  return Duration(std::llround(ms));
}

bool Config::usesTls() const {
  if (fromModules.tls) return true;
  for (const auto& l : listeners) {
    if (l.tls || l.upstreamTls) return true;
  }
  for (const auto& r : routes) {
    if (r.upstreamTls) return true;
  }
  return false;
}

std::vector<std::string> supportedListenerKinds() { return listenerKinds().names(); }

std::string_view defaultConfigJson() { return kDefaultConfig; }

ConfigDefaults ConfigDefaults::fromEnvironment() {
  ConfigDefaults d;
  if (const char* env = std::getenv("STATE_DIRECTORY")) {
    std::string_view first(env);
    first = first.substr(0, first.find(':'));
    if (first.starts_with('/')) d.dataDir = std::string(first);
  }
  return d;
}

Result<ConfigPtr> parseConfig(std::string_view text, std::string_view origin, const ConfigDefaults& defaults) {
  auto c = std::make_shared<Config>();
  c->origin = std::string(origin);
  json root;
  try {
    root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers that overflow
    std::string what = e.what();
    // nlohmann's message starts with "[json.exception.parse_error.101] ": keep the useful tail.
    auto pos = what.find("] ");
    return makeError(Errc::InvalidArgument,
                     std::string(origin) + ": invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
  }
  ErrorList errs;
  try {
    parseRoot(root, defaults, *c, errs);
  } catch (const json::exception& e) {
    return makeError(Errc::InvalidArgument, std::string(origin) + ": " + e.what());
  }
  if (!errs.empty()) return makeError(Errc::InvalidArgument, errs.joined());
  redactSecrets(root);
  for (auto k : kDumpOnlyKeys) root.erase(std::string(k));
  c->json = root.dump(2);
  c->resources = resourcesOf(root);
  return ConfigPtr(std::move(c));
}

Result<ConfigPtr> loadConfigFile(const std::string& path, const ConfigDefaults& defaults) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return makeError(Errc::NotFound, path + ": cannot open: " + strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  if (ss.str().size() > (16u << 20)) return makeError(Errc::InvalidArgument, path + ": larger than 16 MiB");
  return parseConfig(ss.str(), path, defaults);
}

}  // namespace ugate
