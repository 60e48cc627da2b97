#pragma once
// Options shared by the proxy listener kinds (socks5, http-connect): who may use the proxy, and
// whether it may listen beyond loopback without credentials. Parsed in proxy_auth_config.cc.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <ugate/result.h>

#include <ugate/listener.h>

namespace ugate {

struct ListenerConfig;

/** ProxyCredential: one username/password pair from a listener's `users`. */
struct ProxyCredential {
  std::string user;
  std::string password;
};

struct ProxyAuthOptions : ListenerOptions {
  // users: accepted credentials; empty = no authentication.
  std::vector<ProxyCredential> users;
  // allowOpenProxy: permit a non-loopback bind address without authentication.
  bool allowOpenProxy{false};
  /**
   * checkCredentials compares against every configured pair in constant time for a given input
   * length (no early exit on the first differing byte or on the first matching user).
   */
  bool checkCredentials(std::string_view user, std::string_view password) const;
};
using ProxyAuthOptionsPtr = std::shared_ptr<const ProxyAuthOptions>;

/** constantTimeEquals: equality whose duration does not depend on where the inputs differ. */
bool constantTimeEquals(std::string_view a, std::string_view b);

/**
 * parseProxyAuthOptions reads `users` (1..255 bytes each, no duplicates) and `allowOpenProxy` from
 * listener object j. basicAuth: usernames may not contain ':' (HTTP Basic). Errors name the path.
 */
Result<ListenerOptionsPtr> parseProxyAuthOptions(const nlohmann::json& j, const std::string& path,
                                                 bool basicAuth);
/** validateOpenProxy refuses a non-loopback listener without users unless allowOpenProxy. */
Result<void> validateOpenProxy(const ListenerConfig& l, const std::string& path);

/**
 * proxyKind: what every proxy listener kind (socks5, http-connect) shares: clients name their
 * destination (no `to` needed), the `users` and `allowOpenProxy` options, and an open proxy on a
 * public address refused. The module adds its newFrontDoor.
 */
ListenerKindSpec proxyKind(std::string name, StreamKind kind, bool basicAuth);

}  // namespace ugate
