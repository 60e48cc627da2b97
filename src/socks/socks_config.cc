// The `socks5` listener kind: option parsing (the only file of this module that sees JSON),
// validation and registration.
#include <nlohmann/json.hpp>

#include <ugate/config.h>
#include "socks/socks_front_door.h"
#include "socks/socks_module.h"
#include "socks/socks_options.h"

namespace ugate::socks {
namespace {

using json = nlohmann::json;

}  // namespace

void registerSocksModule(ListenerKindRegistry& r) {
  ListenerKindSpec k;
  k.name = "socks5";
  k.streamKind = StreamKind::Socks5;
  k.toRequired = false;
  k.dialsRequested = true;  // no `to` = dial what the client asked for
  k.optionKeys = {"users", "allowOpenProxy"};
  k.parseOptions = [](const nlohmann::json& j, const std::string& path) {
    return parseProxyAuthOptions(j, path, /*basicAuth=*/false);
  };
  k.validate = validateOpenProxy;
  k.newFrontDoor = [](const ListenerConfig& l) -> FrontDoorPtr {
    auto o = std::dynamic_pointer_cast<const SocksOptions>(l.options);
    if (!o) o = std::make_shared<const SocksOptions>();
    return std::make_unique<SocksFrontDoor>(std::move(o));
  };
  r.add(std::move(k));
}

}  // namespace ugate::socks
