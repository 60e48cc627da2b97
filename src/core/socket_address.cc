#include <ugate/socket_address.h>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ugate {

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    memcpy(&a.u_.v4, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    memcpy(&a.u_.v6, sa, sizeof(sockaddr_in6));
  }
  return a;
}

std::optional<SocketAddress> SocketAddress::fromIp(std::string_view ip, uint16_t port) {
  std::string s(ip);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    s = s.substr(1, s.size() - 2);
  }
  SocketAddress a;
  if (inet_pton(AF_INET, s.c_str(), &a.u_.v4.sin_addr) == 1) {
    a.u_.v4.sin_family = AF_INET;
    a.u_.v4.sin_port = htons(port);
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), &a.u_.v6.sin6_addr) == 1) {
    a.u_.v6.sin6_family = AF_INET6;
    a.u_.v6.sin6_port = htons(port);
    return a;
  }
  return std::nullopt;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view hostport) {
  auto hp = HostPort::parse(hostport, /*allowZero=*/true);
  if (!hp) {
    return std::nullopt;
  }
  return fromIp(hp->host, hp->port);
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(u_.v4.sin_port);
  if (family() == AF_INET6) return ntohs(u_.v6.sin6_port);
  return 0;
}

void SocketAddress::setPort(uint16_t p) {
  if (family() == AF_INET) u_.v4.sin_port = htons(p);
  if (family() == AF_INET6) u_.v6.sin6_port = htons(p);
}

std::string SocketAddress::ip() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &u_.v4.sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &u_.v6.sin6_addr, buf, sizeof(buf));
  } else {
    return "";
  }
  return buf;
}

std::string SocketAddress::str() const {
  if (!valid()) return "";
  if (family() == AF_INET6) return "[" + ip() + "]:" + std::to_string(port());
  return ip() + ":" + std::to_string(port());
}

bool SocketAddress::isLoopback() const {
  if (family() == AF_INET) return (ntohl(u_.v4.sin_addr.s_addr) >> 24) == 127;
  if (family() == AF_INET6) {
    if (IN6_IS_ADDR_LOOPBACK(&u_.v6.sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&u_.v6.sin6_addr)) return u_.v6.sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

bool SocketAddress::isAny() const {
  if (family() == AF_INET) return u_.v4.sin_addr.s_addr == INADDR_ANY;
  if (family() == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&u_.v6.sin6_addr);
  return false;
}

const uint8_t* SocketAddress::ipBytes() const {
  if (family() == AF_INET6) return u_.v6.sin6_addr.s6_addr;
  return reinterpret_cast<const uint8_t*>(&u_.v4.sin_addr.s_addr);
}

bool SocketAddress::operator==(const SocketAddress& o) const {
  if (family() != o.family()) return false;
  if (!valid()) return true;
  return port() == o.port() && memcmp(ipBytes(), o.ipBytes(), ipLen()) == 0;
}

std::optional<HostPort> HostPort::parse(std::string_view s, bool allowZero) {
  HostPort hp;
  std::string_view portStr;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    hp.host = std::string(s.substr(1, close - 1));
    portStr = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos || s.find(':') != colon) {
      return std::nullopt;  // no port, or an unbracketed IPv6 literal
    }
    hp.host = std::string(s.substr(0, colon));
    portStr = s.substr(colon + 1);
  }
  if (hp.host.empty() || portStr.empty() || portStr.size() > 5) {
    return std::nullopt;
  }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(portStr.data(), portStr.data() + portStr.size(), v);
  if (ec != std::errc() || p != portStr.data() + portStr.size() || v > 65535 ||
      (v == 0 && !allowZero)) {
    return std::nullopt;
  }
  hp.port = static_cast<uint16_t>(v);
  return hp;
}

std::string HostPort::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace ugate
