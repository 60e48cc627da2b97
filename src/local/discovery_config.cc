// The discovery module's config section ("discovery"): the only file of src/local that sees JSON.
#include "local/discovery_config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include <ugate/config_json.h>

#include "local/discovery_module.h"

namespace ugate::local {

namespace {

using json = nlohmann::json;
using namespace cfgjson;  // NOLINT: the config helpers, in this parsing file only

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

// parseGroups: discovery.groups, one IPv4 and/or one IPv6 multicast group.
void parseGroups(const json& j, DiscoveryConfig& d) {
  const std::string path = "discovery.groups";
  std::vector<std::string> groups = getStringList(j, path);
  if (groups.empty() || groups.size() > 2) fail(path, "expected one IPv4 and/or one IPv6 multicast group");
  d.ipv4 = d.ipv6 = false;
  for (size_t i = 0; i < groups.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    IpAddr g;
    if (!IpAddr::parse(groups[i], g)) fail(p, "'" + groups[i] + "' is not an IP address");
    if (g.family == 4) {
      if ((g.bytes[0] & 0xf0) != 0xe0) fail(p, "'" + groups[i] + "' is not an IPv4 multicast address (224.0.0.0/4)");
      if (d.ipv4) fail(p, "a second IPv4 group");
      d.ipv4 = true;
      d.group4 = g;
    } else {
      if (g.bytes[0] != 0xff) fail(p, "'" + groups[i] + "' is not an IPv6 multicast address (ff00::/8)");
      if (d.ipv6) fail(p, "a second IPv6 group");
      d.ipv6 = true;
      d.group6 = g;
    }
  }
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return {};
  std::string h = buf;
  return h.substr(0, h.find('.'));
}

void parseDiscovery(const json& j, const Config& c, DiscoveryConfig& d) {
  if (!j.is_object()) fail("discovery", "expected an object, got " + typeName(j));
  checkKeys(j, "discovery",
            {"enabled", "interfaces", "groups", "port", "interval", "expire", "clockSkew", "name", "tcpPort",
             "quicPort", "announceAddresses", "maxNeighbours", "ratePerSecond", "rateBurst", "verifyPerSecond"});
  if (j.contains("enabled")) d.enabled = getBool(j["enabled"], "discovery.enabled");
  if (j.contains("interfaces")) {
    d.interfaces = getStringList(j["interfaces"], "discovery.interfaces");
    for (size_t i = 0; i < d.interfaces.size(); ++i) {
      const std::string& n = d.interfaces[i];
      if (n.empty() || n.size() >= 16 || n.find('/') != std::string::npos) {
        fail("discovery.interfaces[" + std::to_string(i) + "]", "'" + n + "' is not an interface name");
      }
    }
  }
  if (j.contains("groups")) parseGroups(j["groups"], d);
  if (j.contains("port")) d.port = static_cast<uint16_t>(getInt(j["port"], "discovery.port", 1, 65535));
  if (j.contains("interval")) d.interval = getDuration(j["interval"], "discovery.interval");
  if (d.interval < Duration(200)) fail("discovery.interval", "must be at least 200ms");
  d.expire = 3 * d.interval;
  if (j.contains("expire")) {
    d.expire = getDuration(j["expire"], "discovery.expire");
    if (d.expire <= d.interval) fail("discovery.expire", "must be longer than discovery.interval");
  }
  if (j.contains("clockSkew")) {
    d.clockSkew = getDuration(j["clockSkew"], "discovery.clockSkew");
    if (d.clockSkew < Duration(1000)) fail("discovery.clockSkew", "must be at least 1s");
  }
  if (j.contains("name")) {
    d.name = getString(j["name"], "discovery.name");
    if (!validName(d.name)) fail("discovery.name", "'" + d.name + "' is not a DNS label: 1-63 of [a-z0-9-], no '-' at either end");
  }
  if (j.contains("tcpPort")) d.tcpPort = static_cast<uint16_t>(getInt(j["tcpPort"], "discovery.tcpPort", 0, 65535));
  if (j.contains("quicPort")) d.quicPort = static_cast<uint16_t>(getInt(j["quicPort"], "discovery.quicPort", 0, 65535));
  if (j.contains("announceAddresses")) d.announceAddresses = getBool(j["announceAddresses"], "discovery.announceAddresses");
  if (j.contains("maxNeighbours")) {
    d.maxNeighbours = static_cast<uint32_t>(getInt(j["maxNeighbours"], "discovery.maxNeighbours", 1, 65536));
  }
  if (j.contains("ratePerSecond")) {
    d.ratePerSecond = static_cast<double>(getInt(j["ratePerSecond"], "discovery.ratePerSecond", 1, 10000));
  }
  if (j.contains("rateBurst")) d.rateBurst = static_cast<double>(getInt(j["rateBurst"], "discovery.rateBurst", 1, 10000));
  if (j.contains("verifyPerSecond")) {
    d.verifyPerSecond = static_cast<double>(getInt(j["verifyPerSecond"], "discovery.verifyPerSecond", 1, 100000));
  }
  if (!d.enabled) return;
  if (d.name.empty()) {
    const std::string from = c.node.name.empty() ? hostName() : c.node.name;
    d.name = lower(from);
    if (!validName(d.name)) {
      fail("discovery.name", "not set, and the node name '" + from +
                                 "' is not a DNS label (1-63 of [a-z0-9-]): set discovery.name");
    }
  }
  if (!j.contains("tcpPort")) {
    for (const ListenerConfig& l : c.listeners) {
      if (l.kind == "mesh") {
        d.tcpPort = l.address.port();
        break;
      }
    }
  }
}

}  // namespace

const DiscoveryConfig& discoveryConfig(const Config& c) {
  static const DiscoveryConfig kDefaults = [] {
    DiscoveryConfig d;
    IpAddr::parse("224.0.0.250", d.group4);
    IpAddr::parse("ff02::5227", d.group6);
    return d;
  }();
  const DiscoveryConfig* d = c.moduleConfig<DiscoveryConfig>("local");
  return d ? *d : kDefaults;
}

std::vector<std::string> DiscoveryModule::configSections() const { return {"discovery"}; }

void DiscoveryModule::parseConfig(const json& root, Config& c, ConfigErrors& errs) const {
  auto d = std::make_shared<DiscoveryConfig>(discoveryConfig(Config{}));
  if (root.contains("discovery")) errs.attempt([&] { parseDiscovery(root["discovery"], c, *d); });
  // The announced key is the node's TLS key: load the credentials, and let the TLS provider's
  // node ID be checked against it.
  if (d->enabled) c.fromModules.tls = true;
  c.modules[std::string(name())] = std::move(d);
}

}  // namespace ugate::local
