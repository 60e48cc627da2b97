// The xds module's config section ("xds"): the only file of src/xds that sees JSON.
#include "xds/xds_config.h"

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
  checkKeys(j, path, {"enabled", "address", "insecure"});
  x.serverEnabled = j.contains("enabled") ? getBool(j["enabled"], path + ".enabled") : true;
  if (j.contains("insecure")) x.insecure = getBool(j["insecure"], path + ".insecure");
  if (j.contains("address")) {
    const std::string a = getString(j["address"], path + ".address");
    auto sa = SocketAddress::parse(a);
    if (!sa) fail(path + ".address", "'" + a + "' is not an IP address and port (\"127.0.0.1:15010\", \"[::1]:15010\")");
    x.serverAddress = *sa;
  }
  if (x.serverEnabled && !x.serverAddress.isLoopback() && !x.insecure) {
    fail(path + ".address", "'" + x.serverAddress.str() +
                                "' is not a loopback address: the ADS server has no TLS yet, so serving other hosts "
                                "needs \"insecure\": true (clients can read every route it publishes)");
  }
}

void parseXds(const json& j, XdsConfig& x) {
  if (!j.is_object()) fail("xds", "expected an object, got " + typeName(j));
  checkKeys(j, "xds", {"server"});
  if (j.contains("server")) parseServer(j["server"], x);
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
  if (root.contains("xds")) errs.attempt([&] { parseXds(root["xds"], *x); });
  c.modules[std::string(name())] = std::move(x);
}

}  // namespace ugate::xds
