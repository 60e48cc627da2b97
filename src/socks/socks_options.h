#pragma once
// The `socks5` listener kind's options, parsed by socks_config.cc. Immutable once parsed.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/listener_kind.h"

namespace ugate::socks {

/** Credential: one RFC 1929 username/password pair from the listener's `users`. */
struct Credential {
  std::string user;
  std::string password;
};

struct SocksOptions final : ListenerOptions {
  // users: accepted credentials; empty = no authentication (method 00 and SOCKS4/4a are accepted).
  std::vector<Credential> users;
  // allowOpenProxy: permit a non-loopback bind address without authentication.
  bool allowOpenProxy{false};

  /**
   * checkCredentials compares against every configured pair in constant time for a given input
   * length (no early exit on the first differing byte or on the first matching user).
   */
  bool checkCredentials(std::string_view user, std::string_view password) const;
};
using SocksOptionsPtr = std::shared_ptr<const SocksOptions>;

/** constantTimeEquals: equality whose duration does not depend on where the inputs differ. */
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace ugate::socks
