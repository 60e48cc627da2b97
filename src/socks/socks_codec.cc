#include "socks/socks_codec.h"

#include <cstring>

namespace ugate::socks {
namespace {

constexpr size_t kMaxSocks4Field = 255;  // USERID and the SOCKS4a host

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

void putBe16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v & 0xff));
}

// acceptableName: a domain the router and resolver can use, or an IP literal sent as a name.
bool acceptableName(std::string_view n) {
  return validDomainName(n) || SocketAddress::fromIp(n, 0).has_value();
}

// parseAddress parses ATYP DST.ADDR DST.PORT at in[0..]. Sets len to the bytes it took on Done.
Status parseAddress(std::span<const uint8_t> in, Address& out, size_t& len, Reply& errorReply) {
  if (in.empty()) return Status::NeedMore;
  size_t addrLen = 0;
  size_t off = 1;
  switch (in[0]) {
    case static_cast<uint8_t>(AddressType::IPv4):
      addrLen = 4;
      break;
    case static_cast<uint8_t>(AddressType::IPv6):
      addrLen = 16;
      break;
    case static_cast<uint8_t>(AddressType::Domain):
      if (in.size() < 2) return Status::NeedMore;
      addrLen = in[1];
      off = 2;
      if (addrLen == 0) {
        errorReply = Reply::GeneralFailure;
        return Status::Error;
      }
      break;
    default:
      errorReply = Reply::AddressTypeNotSupported;
      return Status::Error;
  }
  if (in.size() < off + addrLen + 2) return Status::NeedMore;
  out = Address{};
  out.type = static_cast<AddressType>(in[0]);
  if (out.type == AddressType::Domain) {
    out.host.assign(reinterpret_cast<const char*>(in.data() + off), addrLen);
    if (!acceptableName(out.host)) {
      errorReply = Reply::GeneralFailure;
      return Status::Error;
    }
  } else {
    memcpy(out.ip.data(), in.data() + off, addrLen);
  }
  out.port = be16(in.data() + off + addrLen);
  len = off + addrLen + 2;
  return Status::Done;
}

void appendAddress(std::string& s, const Address& a) {
  switch (a.type) {
    case AddressType::IPv4:
      s.push_back(static_cast<char>(AddressType::IPv4));
      s.append(reinterpret_cast<const char*>(a.ip.data()), 4);
      break;
    case AddressType::IPv6:
      s.push_back(static_cast<char>(AddressType::IPv6));
      s.append(reinterpret_cast<const char*>(a.ip.data()), 16);
      break;
    case AddressType::Domain: {
      size_t n = std::min<size_t>(a.host.size(), 255);
      s.push_back(static_cast<char>(AddressType::Domain));
      s.push_back(static_cast<char>(n));
      s.append(a.host.data(), n);
      break;
    }
  }
  putBe16(s, a.port);
}

// findNul returns the index of the first NUL in in[from..from+max], npos when absent within the cap
// (max+1 bytes examined, so "exactly max bytes then NUL" fits), or in.size() if more bytes are needed.
size_t findNul(std::span<const uint8_t> in, size_t from, size_t max, bool& tooLong) {
  tooLong = false;
  for (size_t i = from; i < in.size(); ++i) {
    if (in[i] == 0) return i;
    if (i - from >= max) {
      tooLong = true;
      return std::string::npos;
    }
  }
  return std::string::npos;
}

}  // namespace

SocketAddress Address::socketAddress() const {
  if (type == AddressType::Domain) return {};
  sockaddr_storage ss{};
  if (type == AddressType::IPv4) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    memcpy(&v4->sin_addr, ip.data(), 4);
    return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in));
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  memcpy(&v6->sin6_addr, ip.data(), 16);
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in6));
}

std::string Address::hostString() const {
  return type == AddressType::Domain ? host : socketAddress().ip();
}

Address Address::fromSocketAddress(const SocketAddress& a) {
  Address out;
  if (!a.valid()) return out;  // 0.0.0.0:0
  out.type = a.family() == AF_INET6 ? AddressType::IPv6 : AddressType::IPv4;
  memcpy(out.ip.data(), a.ipBytes(), static_cast<size_t>(a.ipLen()));
  out.port = a.port();
  return out;
}

bool validDomainName(std::string_view n) {
  if (n.empty() || n.size() > 255) return false;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Status parseGreeting(std::span<const uint8_t> in, Greeting& out, size_t& consumed) {
  if (in.empty()) return Status::NeedMore;
  if (in[0] != kVersion5) return Status::Error;
  if (in.size() < 2) return Status::NeedMore;
  const size_t n = in[1];
  if (n == 0) return Status::Error;
  if (in.size() < 2 + n) return Status::NeedMore;
  out = Greeting{};
  for (size_t i = 0; i < n; ++i) {
    if (in[2 + i] == static_cast<uint8_t>(Method::NoAuth)) out.noAuth = true;
    if (in[2 + i] == static_cast<uint8_t>(Method::UserPass)) out.userPass = true;
  }
  consumed = 2 + n;
  return Status::Done;
}

Status parseUserPass(std::span<const uint8_t> in, UserPass& out, size_t& consumed) {
  if (in.empty()) return Status::NeedMore;
  if (in[0] != kAuthVersion) return Status::Error;
  if (in.size() < 2) return Status::NeedMore;
  const size_t ulen = in[1];
  if (ulen == 0) return Status::Error;
  if (in.size() < 2 + ulen + 1) return Status::NeedMore;
  const size_t plen = in[2 + ulen];
  if (in.size() < 3 + ulen + plen) return Status::NeedMore;
  out.user.assign(reinterpret_cast<const char*>(in.data() + 2), ulen);
  out.password.assign(reinterpret_cast<const char*>(in.data() + 3 + ulen), plen);
  consumed = 3 + ulen + plen;
  return Status::Done;
}

Status parseRequest(std::span<const uint8_t> in, Request& out, size_t& consumed, Reply& errorReply) {
  if (in.empty()) return Status::NeedMore;
  if (in[0] != kVersion5) {
    errorReply = Reply::GeneralFailure;
    return Status::Error;
  }
  if (in.size() < 4) return Status::NeedMore;
  // RSV must be 0; being lenient here costs nothing and some clients are sloppy.
  size_t len = 0;
  Status s = parseAddress(in.subspan(3), out.dst, len, errorReply);
  if (s != Status::Done) return s;
  out.command = in[1];
  consumed = 3 + len;
  return Status::Done;
}

Status parseSocks4Request(std::span<const uint8_t> in, Socks4Request& out, size_t& consumed) {
  if (in.empty()) return Status::NeedMore;
  if (in[0] != kVersion4) return Status::Error;
  if (in.size() < 8) return Status::NeedMore;
  bool tooLong = false;
  size_t userEnd = findNul(in, 8, kMaxSocks4Field, tooLong);
  if (tooLong) return Status::Error;
  if (userEnd == std::string::npos) return Status::NeedMore;
  Socks4Request r;
  r.command = in[1];
  r.dst.port = be16(in.data() + 2);
  r.userId.assign(reinterpret_cast<const char*>(in.data() + 8), userEnd - 8);
  // SOCKS4a: DSTIP 0.0.0.x with x != 0 means a host name follows the USERID.
  const bool is4a = in[4] == 0 && in[5] == 0 && in[6] == 0 && in[7] != 0;
  size_t end = userEnd + 1;
  if (is4a) {
    size_t hostEnd = findNul(in, userEnd + 1, kMaxSocks4Field, tooLong);
    if (tooLong) return Status::Error;
    if (hostEnd == std::string::npos) return Status::NeedMore;
    r.dst.type = AddressType::Domain;
    r.dst.host.assign(reinterpret_cast<const char*>(in.data() + userEnd + 1), hostEnd - userEnd - 1);
    if (!acceptableName(r.dst.host)) return Status::Error;
    end = hostEnd + 1;
  } else {
    r.dst.type = AddressType::IPv4;
    memcpy(r.dst.ip.data(), in.data() + 4, 4);
  }
  out = std::move(r);
  consumed = end;
  return Status::Done;
}

std::string encodeMethodChoice(Method m) {
  return std::string{static_cast<char>(kVersion5), static_cast<char>(m)};
}

std::string encodeAuthStatus(bool ok) {
  return std::string{static_cast<char>(kAuthVersion), static_cast<char>(ok ? 0x00 : 0x01)};
}

std::string encodeReply(Reply rep, const Address& bnd) {
  std::string s{static_cast<char>(kVersion5), static_cast<char>(rep), 0x00};
  appendAddress(s, bnd);
  return s;
}

std::string encodeReply(Reply rep) { return encodeReply(rep, Address{}); }

std::string encodeSocks4Reply(Socks4Reply cd) {
  return std::string{0x00, static_cast<char>(cd), 0, 0, 0, 0, 0, 0};
}

Status parseUdpHeader(std::span<const uint8_t> d, UdpHeader& out) {
  if (d.size() < 4 || d[0] != 0 || d[1] != 0) return Status::Error;
  size_t len = 0;
  Reply ignored{};
  UdpHeader h;
  h.frag = d[2];
  if (parseAddress(d.subspan(3), h.dst, len, ignored) != Status::Done) return Status::Error;
  h.headerLen = 3 + len;
  out = std::move(h);
  return Status::Done;
}

std::string encodeUdpHeader(const Address& dst) {
  std::string s{0x00, 0x00, 0x00};
  appendAddress(s, dst);
  return s;
}

}  // namespace ugate::socks
