// The `http-connect` listener kind: option parsing (the only file of the proxy that sees JSON),
// validation and registration.
#include <nlohmann/json.hpp>

#include <ugate/config.h>
#include "http/connect_proxy.h"
#include "http/connect_proxy_module.h"

namespace ugate::http {
namespace {

using json = nlohmann::json;

}  // namespace

void registerConnectProxyModule(ListenerKindRegistry& r) {
  ListenerKindSpec k;
  k.name = "http-connect";
  k.streamKind = StreamKind::HttpConnect;
  k.toRequired = false;
  k.dialsRequested = true;  // no `to` = dial what the client asked for
  k.optionKeys = {"users", "allowOpenProxy"};
  k.parseOptions = [](const nlohmann::json& j, const std::string& path) {
    return parseProxyAuthOptions(j, path, /*basicAuth=*/true);
  };
  k.validate = validateOpenProxy;
  k.newFrontDoor = [](const ListenerConfig& l) -> FrontDoorPtr {
    auto o = std::dynamic_pointer_cast<const ConnectProxyOptions>(l.options);
    if (!o) o = std::make_shared<const ConnectProxyOptions>();
    return std::make_unique<ConnectProxyFrontDoor>(std::move(o));
  };
  r.add(std::move(k));
}

}  // namespace ugate::http
