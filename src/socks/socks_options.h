#pragma once
// The `socks5` listener kind's options, parsed by socks_config.cc. Immutable once parsed.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/listener.h>
#include <ugate/proxy_auth.h>

namespace ugate::socks {

/** SocksOptions: `users` (RFC 1929 pairs) and `allowOpenProxy`, shared with http-connect. */
using SocksOptions = ProxyAuthOptions;
using SocksOptionsPtr = ProxyAuthOptionsPtr;
using ugate::constantTimeEquals;

}  // namespace ugate::socks
