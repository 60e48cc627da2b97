// JSON side of the proxy kinds' shared options (one of the few files that include nlohmann/json).
#include <nlohmann/json.hpp>

#include <ugate/proxy_auth.h>

namespace ugate {
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
  if (s.empty() || s.size() > 255) return configError(p, "must be 1 to 255 bytes");
  return s;
}

}  // namespace

Result<ListenerOptionsPtr> parseProxyAuthOptions(const json& j, const std::string& path, bool basicAuth) {
  auto o = std::make_shared<ProxyAuthOptions>();
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
      if (basicAuth && user->find(':') != std::string::npos) {
        return configError(p + ".username", "must not contain ':' (HTTP Basic authentication)");
      }
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

ListenerKindSpec proxyKind(std::string name, StreamKind kind, bool basicAuth) {
  ListenerKindSpec k;
  k.name = std::move(name);
  k.streamKind = kind;
  k.toRequired = false;
  k.dialsRequested = true;  // no `to` = dial what the client asked for
  k.optionKeys = {"users", "allowOpenProxy"};
  k.parseOptions = [basicAuth](const nlohmann::json& j, const std::string& path) {
    return parseProxyAuthOptions(j, path, basicAuth);
  };
  k.validate = validateOpenProxy;
  return k;
}

}  // namespace ugate
