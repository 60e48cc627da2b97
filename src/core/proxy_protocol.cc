#include "core/proxy_protocol.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace ugate {
namespace {

constexpr uint8_t kV2Sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";

ProxyParseResult fail(ProxyError e) {
  ProxyParseResult r;
  r.status = ProxyStatus::Error;
  r.error = e;
  return r;
}

SocketAddress v4Address(const uint8_t* ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  memcpy(&sa.sin_addr, ip, 4);
  sa.sin_port = htons(port);
  return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
}

SocketAddress v6Address(const uint8_t* ip, uint16_t port) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  memcpy(&sa.sin6_addr, ip, 16);
  sa.sin6_port = htons(port);
  return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
}

// asV6: the address as IPv6 (IPv4 becomes v4-mapped ::ffff:a.b.c.d).
SocketAddress asV6(const SocketAddress& a) {
  if (a.family() == AF_INET6) return a;
  uint8_t ip[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  memcpy(ip + 12, a.ipBytes(), 4);
  return v6Address(ip, a.port());
}

// parsePort: decimal 0..65535 without a leading zero.
bool parsePort(std::string_view s, uint16_t& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

ProxyParseResult parseV1(std::span<const uint8_t> data) {
  // Find CRLF within the first 107 bytes; a lone CR or LF before it is an error.
  size_t end = 0;
  bool found = false;
  const size_t limit = std::min(data.size(), kProxyV1MaxBytes);
  for (size_t i = 0; i < limit; ++i) {
    if (data[i] == '\r') {
      if (i + 1 >= data.size()) break;  // need the next byte
      if (data[i + 1] != '\n') return fail(ProxyError::V1BadLineEnd);
      if (i + 2 > kProxyV1MaxBytes) return fail(ProxyError::V1TooLong);
      end = i;
      found = true;
      break;
    }
    if (data[i] == '\n') return fail(ProxyError::V1BadLineEnd);
  }
  if (!found) {
    if (data.size() >= kProxyV1MaxBytes) return fail(ProxyError::V1TooLong);
    ProxyParseResult r;  // NeedMore
    return r;
  }
  std::string_view line(reinterpret_cast<const char*>(data.data()), end);
  line.remove_prefix(kV1Prefix.size());
  // Split on single spaces: an empty field means two spaces in a row (or a trailing space).
  std::array<std::string_view, 6> f{};
  size_t n = 0;
  size_t from = 0;
  for (;;) {
    size_t sp = line.find(' ', from);
    std::string_view tok =
        line.substr(from, sp == std::string_view::npos ? std::string_view::npos : sp - from);
    if (n == 0 && tok == "UNKNOWN") {
      // "For UNKNOWN the rest of the line may be omitted" (and is ignored when present).
      ProxyParseResult r;
      r.status = ProxyStatus::Done;
      r.consumed = end + 2;
      r.header.version = 1;
      r.header.unknown = true;
      return r;
    }
    if (tok.empty() || n == f.size())
      return fail(n == 0 ? ProxyError::V1BadProtocol : ProxyError::V1BadField);
    f[n++] = tok;
    if (sp == std::string_view::npos) break;
    from = sp + 1;
  }
  int family;
  if (f[0] == "TCP4") {
    family = AF_INET;
  } else if (f[0] == "TCP6") {
    family = AF_INET6;
  } else {
    return fail(ProxyError::V1BadProtocol);
  }
  if (n != 5) return fail(ProxyError::V1BadField);
  uint8_t src[16], dst[16];
  std::string s(f[1]), d(f[2]);
  if (inet_pton(family, s.c_str(), src) != 1 || inet_pton(family, d.c_str(), dst) != 1) {
    return fail(ProxyError::V1BadAddress);
  }
  uint16_t sport, dport;
  if (!parsePort(f[3], sport) || !parsePort(f[4], dport)) return fail(ProxyError::V1BadPort);
  ProxyParseResult r;
  r.status = ProxyStatus::Done;
  r.consumed = end + 2;
  r.header.version = 1;
  r.header.source = family == AF_INET ? v4Address(src, sport) : v6Address(src, sport);
  r.header.destination = family == AF_INET ? v4Address(dst, dport) : v6Address(dst, dport);
  return r;
}

ProxyParseResult parseV2(std::span<const uint8_t> data, size_t maxBytes) {
  ProxyParseResult r;
  if (data.size() < 16) return r;  // NeedMore
  const uint8_t verCmd = data[12];
  const uint8_t fam = data[13];
  const size_t len = size_t{data[14]} << 8 | data[15];
  if ((verCmd >> 4) != 2) return fail(ProxyError::V2BadVersion);
  const uint8_t cmd = verCmd & 0x0f;
  if (cmd > 1) return fail(ProxyError::V2BadCommand);
  size_t addrLen;
  switch (fam) {
    case 0x00:
      addrLen = 0;
      break;
    case 0x11:
    case 0x12:
      addrLen = 12;
      break;
    case 0x21:
    case 0x22:
      addrLen = 36;
      break;
    case 0x31:
    case 0x32:
      addrLen = 216;
      break;
    default:
      return fail(ProxyError::V2BadFamily);
  }
  if (16 + len > maxBytes) return fail(ProxyError::TooLarge);
  if (data.size() < 16 + len) return r;  // NeedMore
  r.header.version = 2;
  r.consumed = 16 + len;
  if (cmd == 0) {  // LOCAL: the block is skipped whatever it holds
    r.header.local = true;
    r.status = ProxyStatus::Done;
    return r;
  }
  if (fam == 0x00) {  // PROXY with AF_UNSPEC: receivers ignore the block
    r.header.unknown = true;
    r.status = ProxyStatus::Done;
    return r;
  }
  if (len < addrLen) return fail(ProxyError::V2ShortAddress);
  const uint8_t* a = data.data() + 16;
  r.header.datagram = (fam & 0x0f) == 0x02;
  if ((fam >> 4) == 1) {
    r.header.source = v4Address(a, static_cast<uint16_t>(a[8] << 8 | a[9]));
    r.header.destination = v4Address(a + 4, static_cast<uint16_t>(a[10] << 8 | a[11]));
  } else if ((fam >> 4) == 2) {
    r.header.source = v6Address(a, static_cast<uint16_t>(a[32] << 8 | a[33]));
    r.header.destination = v6Address(a + 16, static_cast<uint16_t>(a[34] << 8 | a[35]));
  } else {
    r.header.unknown = true;  // AF_UNIX: no address we can use
  }
  // TLVs.
  size_t p = 16 + addrLen;
  const size_t end = 16 + len;
  while (p < end) {
    if (end - p < 3) return fail(ProxyError::V2BadTlv);
    const uint8_t type = data[p];
    const size_t tlen = size_t{data[p + 1]} << 8 | data[p + 2];
    if (end - p - 3 < tlen) return fail(ProxyError::V2BadTlv);
    std::string value(reinterpret_cast<const char*>(data.data() + p + 3), tlen);
    switch (type) {
      case kPp2TypeAlpn:
        r.header.alpn = std::move(value);
        break;
      case kPp2TypeAuthority:
        r.header.authority = std::move(value);
        break;
      case kPp2TypeNoop:
        break;
      case kPp2TypeUniqueId:
        if (tlen > 128) return fail(ProxyError::V2BadUniqueId);
        r.header.uniqueId = std::move(value);
        break;
      case kPp2TypeCrc32c: {
        if (tlen != 4) return fail(ProxyError::V2BadCrc32c);
        std::vector<uint8_t> copy(data.begin(), data.begin() + static_cast<long>(end));
        memset(copy.data() + p + 3, 0, 4);
        uint32_t want = crc32c(copy);
        uint32_t got = uint32_t{data[p + 3]} << 24 | uint32_t{data[p + 4]} << 16 |
                       uint32_t{data[p + 5]} << 8 | data[p + 6];
        if (want != got) return fail(ProxyError::V2BadCrc32c);
        r.header.crc32cChecked = true;
        break;
      }
      default:
        r.header.otherTlvs.push_back({type, std::move(value)});
        break;
    }
    p += 3 + tlen;
  }
  r.status = ProxyStatus::Done;
  return r;
}

void putU16(std::string& s, size_t v) {
  s.push_back(static_cast<char>((v >> 8) & 0xff));
  s.push_back(static_cast<char>(v & 0xff));
}

void putTlv(std::string& s, uint8_t type, std::string_view v) {
  s.push_back(static_cast<char>(type));
  putU16(s, v.size());
  s.append(v);
}

}  // namespace

std::string_view proxyErrorName(ProxyError e) {
  switch (e) {
    case ProxyError::None:
      return "none";
    case ProxyError::NotProxyProtocol:
      return "not_proxy_protocol";
    case ProxyError::TooLarge:
      return "too_large";
    case ProxyError::V1TooLong:
      return "v1_too_long";
    case ProxyError::V1BadLineEnd:
      return "v1_bad_line_end";
    case ProxyError::V1BadProtocol:
      return "v1_bad_protocol";
    case ProxyError::V1BadField:
      return "v1_bad_field";
    case ProxyError::V1BadAddress:
      return "v1_bad_address";
    case ProxyError::V1BadPort:
      return "v1_bad_port";
    case ProxyError::V2BadVersion:
      return "v2_bad_version";
    case ProxyError::V2BadCommand:
      return "v2_bad_command";
    case ProxyError::V2BadFamily:
      return "v2_bad_family";
    case ProxyError::V2ShortAddress:
      return "v2_short_address";
    case ProxyError::V2BadTlv:
      return "v2_bad_tlv";
    case ProxyError::V2BadCrc32c:
      return "v2_bad_crc32c";
    case ProxyError::V2BadUniqueId:
      return "v2_bad_unique_id";
  }
  return "unknown";
}

ProxyParseResult parseProxyHeader(std::span<const uint8_t> data, size_t maxBytes) {
  if (data.empty()) return {};
  // Decide the version on the bytes present: every byte must agree with one signature.
  const size_t v2n = std::min(data.size(), sizeof(kV2Sig));
  if (memcmp(data.data(), kV2Sig, v2n) == 0) {
    return parseV2(data, std::min(maxBytes, size_t{16 + 65535}));
  }
  const size_t v1n = std::min(data.size(), kV1Prefix.size());
  if (memcmp(data.data(), kV1Prefix.data(), v1n) == 0) {
    if (data.size() < kV1Prefix.size()) return {};
    return parseV1(data);
  }
  return fail(ProxyError::NotProxyProtocol);
}

std::string encodeProxyV1(const SocketAddress& source, const SocketAddress& destination) {
  if (!source.valid() || !destination.valid()) return "PROXY UNKNOWN\r\n";
  SocketAddress s = source, d = destination;
  if (s.family() != d.family()) {
    s = asV6(s);
    d = asV6(d);
  }
  return std::string("PROXY ") + (s.family() == AF_INET ? "TCP4 " : "TCP6 ") + s.ip() + " " +
         d.ip() + " " + std::to_string(s.port()) + " " + std::to_string(d.port()) + "\r\n";
}

std::string encodeProxyV2(const SocketAddress& source, const SocketAddress& destination,
                          const ProxyV2Tlvs& tlvs) {
  std::string out(reinterpret_cast<const char*>(kV2Sig), sizeof(kV2Sig));
  out.push_back(0x21);  // version 2, PROXY
  std::string body;
  if (source.valid() && destination.valid()) {
    SocketAddress s = source, d = destination;
    if (s.family() != d.family()) {
      s = asV6(s);
      d = asV6(d);
    }
    out.push_back(s.family() == AF_INET ? 0x11 : 0x21);
    body.append(reinterpret_cast<const char*>(s.ipBytes()), static_cast<size_t>(s.ipLen()));
    body.append(reinterpret_cast<const char*>(d.ipBytes()), static_cast<size_t>(d.ipLen()));
    putU16(body, s.port());
    putU16(body, d.port());
  } else {
    out.push_back(0x00);  // AF_UNSPEC
  }
  if (!tlvs.alpn.empty()) putTlv(body, kPp2TypeAlpn, tlvs.alpn);
  if (!tlvs.authority.empty()) putTlv(body, kPp2TypeAuthority, tlvs.authority);
  if (!tlvs.uniqueId.empty()) putTlv(body, kPp2TypeUniqueId, tlvs.uniqueId.substr(0, 128));
  size_t crcAt = 0;
  if (tlvs.crc32c) {
    crcAt = out.size() + 2 + body.size() + 3;
    putTlv(body, kPp2TypeCrc32c, std::string(4, '\0'));
  }
  putU16(out, body.size());
  out += body;
  if (tlvs.crc32c) {
    uint32_t c = crc32c({reinterpret_cast<const uint8_t*>(out.data()), out.size()});
    for (int i = 0; i < 4; ++i)
      out[crcAt + static_cast<size_t>(i)] = static_cast<char>((c >> (24 - 8 * i)) & 0xff);
  }
  return out;
}

std::string encodeProxyV2Local() {
  std::string out(reinterpret_cast<const char*>(kV2Sig), sizeof(kV2Sig));
  out.push_back(0x20);
  out.push_back(0x00);
  putU16(out, 0);
  return out;
}

uint32_t crc32c(std::span<const uint8_t> data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (uint8_t b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

}  // namespace ugate
