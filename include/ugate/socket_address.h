#pragma once
// A compact IPv4/IPv6 socket address (28 bytes) with parsing and formatting.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ugate {

class SocketAddress {
 public:
  SocketAddress() { u_.sa.sa_family = AF_UNSPEC; }
  /** fromSockaddr copies an AF_INET or AF_INET6 address; other families give an empty address. */
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);
  /** parse accepts "1.2.3.4:80", "[::1]:80"; the host must be a literal IP. */
  static std::optional<SocketAddress> parse(std::string_view hostport);
  /** fromIp builds an address from a literal IP and a port. */
  static std::optional<SocketAddress> fromIp(std::string_view ip, uint16_t port);

  bool valid() const { return family() == AF_INET || family() == AF_INET6; }
  int family() const { return u_.sa.sa_family; }
  uint16_t port() const;
  void setPort(uint16_t p);
  const sockaddr* sa() const { return &u_.sa; }
  socklen_t len() const { return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
  /** ip formats the address without port. */
  std::string ip() const;
  /** str formats "1.2.3.4:80" or "[::1]:80". */
  std::string str() const;
  bool isLoopback() const;
  bool isAny() const;
  /** ipBytes returns a pointer to the 4 or 16 address bytes. */
  const uint8_t* ipBytes() const;
  int ipLen() const { return family() == AF_INET6 ? 16 : 4; }
  bool operator==(const SocketAddress& o) const;

 private:
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } u_{};
};

/** HostPort: a target as written in config or requested by a client ("name:port"). */
struct HostPort {
  std::string host;  // name or literal IP (without brackets)
  uint16_t port{0};
  /** parse splits "host:port" / "[v6]:port"; port is required and must be 1..65535 unless allowZero. */
  static std::optional<HostPort> parse(std::string_view s, bool allowZero = false);
  std::string str() const;
};

}  // namespace ugate
