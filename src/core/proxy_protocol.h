#pragma once
// PROXY protocol v1 and v2 (HAProxy doc/proxy-protocol.txt; PROTOCOLS.md §5): a sans-I/O encoder
// for the header ugated sends to a backend, and a strict, resumable decoder for the header a load
// balancer in front of ugated sends. No sockets, no clocks: the deadline belongs to the caller.
#include <ugate/socket_address.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ugate {

/** PP2 TLV types (PROTOCOLS.md §5). */
enum : uint8_t {
  kPp2TypeAlpn = 0x01,
  kPp2TypeAuthority = 0x02,
  kPp2TypeCrc32c = 0x03,
  kPp2TypeNoop = 0x04,
  kPp2TypeUniqueId = 0x05,
  kPp2TypeSsl = 0x20,
  kPp2TypeNetns = 0x30,
};

/** ProxyHeader: what a PROXY header says. */
struct ProxyHeader {
  int version{0};        // 1 or 2
  bool local{false};     // v2 LOCAL command (health check): use the real endpoints
  bool unknown{false};   // v1 UNKNOWN, or v2 AF_UNSPEC/AF_UNIX: no usable addresses
  bool datagram{false};  // v2 DGRAM transport
  SocketAddress source;  // valid only for TCP4/TCP6 (v1) and INET/INET6 (v2) PROXY
  SocketAddress destination;
  std::string authority;  // PP2_TYPE_AUTHORITY (the SNI or host the client asked for)
  std::string alpn;       // PP2_TYPE_ALPN
  std::string uniqueId;   // PP2_TYPE_UNIQUE_ID
  bool crc32cChecked{false};
  struct Tlv {
    uint8_t type;
    std::string value;
  };
  std::vector<Tlv> otherTlvs;  // TLVs not decoded above (SSL, NETNS, custom), raw
};

enum class ProxyStatus : uint8_t { NeedMore, Done, Error };

/** ProxyError: one reason per way a header is refused. */
enum class ProxyError : uint8_t {
  None,
  NotProxyProtocol,  // neither the v1 "PROXY" nor the v2 signature
  TooLarge,          // v2 header over the decoder's limit
  V1TooLong,         // no CRLF within 107 bytes
  V1BadLineEnd,      // a lone CR or LF
  V1BadProtocol,     // not TCP4, TCP6 or UNKNOWN
  V1BadField,        // missing/extra field or not exactly one space between fields
  V1BadAddress,      // not a literal of the announced family
  V1BadPort,         // not 0..65535 or a leading zero
  V2BadVersion,      // version nibble is not 2
  V2BadCommand,      // command is not LOCAL or PROXY
  V2BadFamily,       // unknown address family / transport byte
  V2ShortAddress,    // len smaller than the family's address block
  V2BadTlv,          // a TLV overruns the header
  V2BadCrc32c,       // CRC32C TLV mismatch or not 4 bytes
  V2BadUniqueId,     // UNIQUE_ID over 128 bytes
};

std::string_view proxyErrorName(ProxyError e);

struct ProxyParseResult {
  ProxyStatus status{ProxyStatus::NeedMore};
  ProxyError error{ProxyError::None};
  size_t consumed{0};  // header length when Done: the client's stream starts after it
  ProxyHeader header;
};

/** kProxyV1MaxBytes: the longest v1 line, CRLF included. */
constexpr size_t kProxyV1MaxBytes = 107;
/** kProxyV2DefaultMaxBytes: default limit for a v2 header (16 + len); TLVs of real LBs are small.
 */
constexpr size_t kProxyV2DefaultMaxBytes = 4096;

/**
 * parseProxyHeader decodes the header at the start of `data` (everything read from the client so
 * far). NeedMore: call again with more bytes (the same prefix, grown). Stateless, so resumable.
 * @param maxBytes the longest v2 header accepted (16 + len); at most 16 + 65535.
 */
ProxyParseResult parseProxyHeader(std::span<const uint8_t> data,
                                  size_t maxBytes = kProxyV2DefaultMaxBytes);

/**
 * encodeProxyV1 builds "PROXY TCP4|TCP6 src dst sport dport\r\n", or "PROXY UNKNOWN\r\n" when an
 * address is missing. Mixed families are sent as TCP6 with the IPv4 side v4-mapped.
 */
std::string encodeProxyV1(const SocketAddress& source, const SocketAddress& destination);

/** ProxyV2Tlvs: what ugated can tell a backend. Empty fields are not sent. */
struct ProxyV2Tlvs {
  std::string authority;  // the SNI (PP2_TYPE_AUTHORITY)
  std::string alpn;       // PP2_TYPE_ALPN
  std::string uniqueId;   // <= 128 bytes
  bool crc32c{false};     // append a PP2_TYPE_CRC32C over the whole header
};

/**
 * encodeProxyV2 builds a v2 PROXY header (STREAM) with the given TLVs. Without two valid addresses
 * the family is AF_UNSPEC (receivers then ignore the whole block, TLVs included).
 */
std::string encodeProxyV2(const SocketAddress& source, const SocketAddress& destination,
                          const ProxyV2Tlvs& tlvs = {});
/** encodeProxyV2Local: the 16-byte LOCAL header (health checks). */
std::string encodeProxyV2Local();

/** crc32c: CRC-32C (Castagnoli) of `data`, as PP2_TYPE_CRC32C uses it. */
uint32_t crc32c(std::span<const uint8_t> data);

}  // namespace ugate
