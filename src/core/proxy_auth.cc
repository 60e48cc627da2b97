#include <ugate/proxy_auth.h>

#include <algorithm>
#include <cstdint>

#include <ugate/config.h>

namespace ugate {

bool constantTimeEquals(std::string_view a, std::string_view b) {
  // Only the lengths may leak (through the loop bound), never the position of a difference.
  const size_t n = std::max(a.size(), b.size());
  volatile uint8_t diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t x = i < a.size() ? static_cast<uint8_t>(a[i]) : 0;
    const uint8_t y = i < b.size() ? static_cast<uint8_t>(b[i]) : 0;
    diff = static_cast<uint8_t>(diff | (x ^ y));
  }
  return diff == 0;
}

bool ProxyAuthOptions::checkCredentials(std::string_view user, std::string_view password) const {
  bool ok = false;
  for (const auto& c : users) {
    // Both comparisons always run, for every configured user.
    const bool u = constantTimeEquals(c.user, user);
    const bool p = constantTimeEquals(c.password, password);
    ok = ok | (u & p);
  }
  return ok;
}

Result<void> validateOpenProxy(const ListenerConfig& l, const std::string& path) {
  const auto* o = dynamic_cast<const ProxyAuthOptions*>(l.options.get());
  const bool auth = o && !o->users.empty();
  const bool open = o && o->allowOpenProxy;
  if (!l.address.isLoopback() && !auth && !open) {
    return makeError(Errc::InvalidArgument,
                     path + ".address: " + l.address.str() +
                         " is not a loopback address and the listener has no users: anyone who can "
                         "reach it could proxy through it (add users, or set allowOpenProxy: true)");
  }
  return {};
}

}  // namespace ugate
