// libFuzzer target for the CIDR parser (src/core/cidr.cc), used by routes' match.cidr and
// match.sourceCidr. Contract checked: a parsed prefix prints as "ip/len" that parses again to the
// same prefix; the prefix contains its own address, and every address the input's IP names when it
// parses as one; containsClient agrees with contains on addresses of the prefix's family.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <ugate/config.h>

using ugate::Cidr;
using ugate::SocketAddress;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto check = [](bool ok) {
    if (!ok) __builtin_trap();
  };
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto c = Cidr::parseChecked(in);
  check(c.has_value() == Cidr::parse(in).has_value());
  if (!c) {
    check(!c.error().detail.empty());
    return 0;
  }
  check(c->prefixLen >= 0 && c->prefixLen <= (c->addr.family() == AF_INET6 ? 128 : 32));
  check(c->contains(c->addr) && c->containsClient(c->addr));
  auto again = Cidr::parseChecked(c->str());
  check(again.has_value() && again->str() == c->str() && again->addr == c->addr);
  if (auto a = SocketAddress::fromIp(in.substr(0, in.find('/')), 0)) {
    check(c->contains(*a) && c->containsClient(*a));
  }
  return 0;
}
