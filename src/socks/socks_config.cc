// The `socks5` listener kind: option parsing (the only file of this module that sees JSON),
// validation and registration.
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "socks/socks_front_door.h"
#include "socks/socks_module.h"
#include "socks/socks_options.h"

namespace ugate::socks {
namespace {

using json = nlohmann::json;

Error configError(const std::string& path, const std::string& why) {
  return makeError(Errc::InvalidArgument, path + ": " + why);
}

// credentialField reads users[i].username / users[i].password: 1..255 bytes (RFC 1929 lengths).
Result<std::string> credentialField(const json& u, const std::string& path, const char* key) {
  const std::string p = path + "." + key;
  if (!u.contains(key)) return configError(p, "required");
  const json& v = u[key];
  if (!v.is_string()) return configError(p, std::string("expected a string, got ") + v.type_name());
  std::string s = v.get<std::string>();
  if (s.empty() || s.size() > 255) return configError(p, "must be 1 to 255 bytes (RFC 1929)");
  return s;
}

Result<ListenerOptionsPtr> parseOptions(const json& j, const std::string& path) {
  auto o = std::make_shared<SocksOptions>();
  if (j.contains("allowOpenProxy")) {
    const json& v = j["allowOpenProxy"];
    if (!v.is_boolean()) {
      return configError(path + ".allowOpenProxy", std::string("expected true or false, got ") + v.type_name());
    }
    o->allowOpenProxy = v.get<bool>();
  }
  if (j.contains("users")) {
    const json& us = j["users"];
    const std::string up = path + ".users";
    if (!us.is_array()) return configError(up, std::string("expected an array, got ") + us.type_name());
    for (size_t i = 0; i < us.size(); ++i) {
      const std::string p = up + "[" + std::to_string(i) + "]";
      const json& u = us[i];
      if (!u.is_object()) return configError(p, std::string("expected an object, got ") + u.type_name());
      for (auto it = u.begin(); it != u.end(); ++it) {
        if (it.key() != "username" && it.key() != "password") {
          return configError(p + "." + it.key(), "unknown key (known: username, password)");
        }
      }
      auto user = credentialField(u, p, "username");
      if (!user) return user.error();
      auto pass = credentialField(u, p, "password");
      if (!pass) return pass.error();
      for (const auto& c : o->users) {
        if (c.user == *user) return configError(p + ".username", "duplicate user '" + *user + "'");
      }
      o->users.push_back({std::move(*user), std::move(*pass)});
    }
  }
  return ListenerOptionsPtr(std::move(o));
}

Result<void> validate(const ListenerConfig& l, const std::string& path) {
  const auto* o = dynamic_cast<const SocksOptions*>(l.options.get());
  const bool auth = o && !o->users.empty();
  const bool open = o && o->allowOpenProxy;
  if (!l.address.isLoopback() && !auth && !open) {
    return configError(path + ".address",
                       l.address.str() +
                           " is not a loopback address and the listener has no users: anyone who can "
                           "reach it could proxy through it (add users, or set allowOpenProxy: true)");
  }
  return {};
}

}  // namespace

void registerSocksModule(ListenerKindRegistry& r) {
  ListenerKindSpec k;
  k.name = "socks5";
  k.streamKind = StreamKind::Socks5;
  k.toRequired = false;
  k.dialsRequested = true;  // no `to` = dial what the client asked for
  k.optionKeys = {"users", "allowOpenProxy"};
  k.parseOptions = parseOptions;
  k.validate = validate;
  k.newFrontDoor = [](const ListenerConfig& l) -> FrontDoorPtr {
    auto o = std::dynamic_pointer_cast<const SocksOptions>(l.options);
    if (!o) o = std::make_shared<const SocksOptions>();
    return std::make_unique<SocksFrontDoor>(std::move(o));
  };
  r.add(std::move(k));
}

}  // namespace ugate::socks
