// kube.json: credentials in kubeconfig format, as Go ugate writes them. The only place of src/auth
// that parses JSON.
#include <nlohmann/json.hpp>

#include "auth/encoding.h"
#include "auth/identity.h"

namespace ugate::auth {

std::string kubeconfigToJson(const NodeCredentials& creds) {
  using nlohmann::json;
  std::string id = creds.nodeId();
  json user = {{"client-certificate-data", base64Encode(asBytes(creds.certChainPem))},
               {"client-key-data", base64Encode(asBytes(creds.key.toPem()))}};
  json cluster = json::object();
  if (!creds.rootsPem.empty()) {
    cluster["certificate-authority-data"] = base64Encode(asBytes(creds.rootsPem));
  }
  json j = {
      {"apiVersion", "v1"},
      {"kind", "Config"},
      {"clusters", json::array({{{"name", "default"}, {"cluster", cluster}}})},
      {"users", json::array({{{"name", id}, {"user", user}}})},
      {"contexts",
       json::array({{{"name", "default"}, {"context", {{"cluster", "default"}, {"user", id}}}}})},
      {"current-context", "default"},
  };
  return j.dump(2) + "\n";
}

namespace {
Result<std::string> decodeField(const nlohmann::json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return makeError(Errc::InvalidArgument, path + "." + key + ": missing or not a string");
  }
  auto bytes = base64Decode(it->get<std::string>());
  if (!bytes) return makeError(Errc::InvalidArgument, path + "." + key + ": invalid base64");
  return asString(*bytes);
}
}  // namespace

Result<NodeCredentials> kubeconfigFromJson(std::string_view text) {
  using nlohmann::json;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return makeError(Errc::InvalidArgument, "not JSON");
  auto users = j.find("users");
  if (users == j.end() || !users->is_array() || users->empty()) {
    return makeError(Errc::InvalidArgument, "users: missing or empty");
  }
  // users: the current context's user when named, else the first.
  size_t idx = 0;
  std::string wanted;
  if (auto cc = j.find("current-context"); cc != j.end() && cc->is_string()) {
    for (const auto& ctx : j.value("contexts", json::array())) {
      if (ctx.is_object() && ctx.value("name", "") == cc->get<std::string>() &&
          ctx.contains("context") && ctx["context"].is_object()) {
        wanted = ctx["context"].value("user", "");
      }
    }
  }
  for (size_t i = 0; i < users->size() && !wanted.empty(); ++i) {
    if ((*users)[i].is_object() && (*users)[i].value("name", "") == wanted) idx = i;
  }
  std::string path = "users[" + std::to_string(idx) + "].user";
  const json& entry = (*users)[idx];
  if (!entry.is_object() || !entry.contains("user") || !entry["user"].is_object()) {
    return makeError(Errc::InvalidArgument, path + ": missing");
  }
  const json& user = entry["user"];
  NodeCredentials c;
  auto keyPem = decodeField(user, "client-key-data", path);
  if (!keyPem) return keyPem.error();
  auto key = PrivateKey::fromPem(*keyPem);
  if (!key) return makeError(key.error().code, path + ".client-key-data: " + key.error().detail);
  c.key = std::move(*key);
  if (user.contains("client-certificate-data")) {
    auto cert = decodeField(user, "client-certificate-data", path);
    if (!cert) return cert.error();
    c.certChainPem = std::move(*cert);
  }
  if (auto clusters = j.find("clusters"); clusters != j.end() && clusters->is_array()) {
    for (size_t i = 0; i < clusters->size(); ++i) {
      const json& cl = (*clusters)[i];
      if (cl.is_object() && cl.contains("cluster") && cl["cluster"].is_object() &&
          cl["cluster"].contains("certificate-authority-data")) {
        auto roots = decodeField(cl["cluster"], "certificate-authority-data",
                                 "clusters[" + std::to_string(i) + "].cluster");
        if (!roots) return roots.error();
        c.rootsPem += *roots;
      }
    }
  }
  return c;
}

}  // namespace ugate::auth
