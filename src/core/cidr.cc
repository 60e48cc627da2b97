// Cidr: address prefixes for route matching (match.cidr, match.sourceCidr). Sans-I/O: strings in,
// values out; fuzzed by fuzz/cidr_fuzz.cc.
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include <ugate/config.h>

namespace ugate {
namespace {

// v4Mapped: the IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else null. A
// dual-stack listener sees IPv4 clients this way.
const uint8_t* v4Mapped(const SocketAddress& a) {
  if (a.family() != AF_INET6) return nullptr;
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const uint8_t* b = a.ipBytes();
  return memcmp(b, kPrefix, sizeof(kPrefix)) == 0 ? b + 12 : nullptr;
}

// prefixMatches: the first `len` bits of x and y are equal.
bool prefixMatches(const uint8_t* x, const uint8_t* y, int len) {
  const int full = len / 8;
  if (memcmp(x, y, static_cast<size_t>(full)) != 0) return false;
  const int rem = len % 8;
  if (rem == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rem));
  return (x[full] & mask) == (y[full] & mask);
}

// masked: a with the bits after the first `len` cleared (port 0).
SocketAddress masked(const SocketAddress& a, int len) {
  uint8_t b[16] = {};
  memcpy(b, a.ipBytes(), static_cast<size_t>(a.ipLen()));
  for (int i = 0; i < a.ipLen(); ++i) {
    const int keep = std::clamp(len - 8 * i, 0, 8);
    b[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  if (a.family() == AF_INET) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    memcpy(&s.sin_addr, b, 4);
    return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&s), sizeof(s));
  }
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  memcpy(&s.sin6_addr, b, 16);
  return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&s), sizeof(s));
}

}  // namespace

Result<Cidr> Cidr::parseChecked(std::string_view s) {
  if (s.empty()) return makeError(Errc::InvalidArgument, "empty");
  const auto slash = s.find('/');
  const std::string_view ip = s.substr(0, slash);
  if (ip.empty() || ip.front() == '[') return makeError(Errc::InvalidArgument, "expected ip/len, e.g. 10.0.0.0/8 or fd00::/8");
  auto a = SocketAddress::fromIp(ip, 0);
  if (!a) return makeError(Errc::InvalidArgument, "'" + std::string(ip) + "' is not an IPv4 or IPv6 address");
  const int maxLen = a->family() == AF_INET6 ? 128 : 32;
  int len = maxLen;
  if (slash != std::string_view::npos) {
    const std::string_view l = s.substr(slash + 1);
    const auto digits = l.find_first_not_of("0123456789");
    auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), len);
    if (l.empty() || l.size() > 3 || digits != std::string_view::npos || ec != std::errc() || p != l.data() + l.size()) {
      return makeError(Errc::InvalidArgument, "prefix length '" + std::string(l) + "' is not a number 0-" + std::to_string(maxLen));
    }
    if (len > maxLen) {
      return makeError(Errc::InvalidArgument,
                       "prefix length " + std::to_string(len) + " is over " + std::to_string(maxLen));
    }
  }
  return Cidr{masked(*a, len), len};
}

std::optional<Cidr> Cidr::parse(std::string_view s) {
  auto c = parseChecked(s);
  if (!c) return std::nullopt;
  return *c;
}

bool Cidr::contains(const SocketAddress& a) const {
  return a.valid() && a.family() == addr.family() && prefixMatches(a.ipBytes(), addr.ipBytes(), prefixLen);
}

bool Cidr::containsClient(const SocketAddress& a) const {
  if (contains(a)) return true;
  // An IPv4 client seen by a dual-stack socket matches IPv4 prefixes.
  const uint8_t* v4 = addr.family() == AF_INET ? v4Mapped(a) : nullptr;
  return v4 != nullptr && prefixMatches(v4, addr.ipBytes(), prefixLen);
}

std::string Cidr::str() const { return addr.ip() + "/" + std::to_string(prefixLen); }

}  // namespace ugate
