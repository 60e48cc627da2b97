#pragma once
// The discovery announcement (docs/ARCHITECTURE.md, "Local discovery"): a versioned, length-checked
// binary datagram a node multicasts on each link, signed with its P-256 node key. Sans-I/O: encode
// takes the key, parse takes the bytes; no clock, no socket. Big-endian throughout:
//
//   off  size  field
//     0     2  magic "uD" (0x75 0x44)
//     2     1  version (1)
//     3     1  flags: bit 0 = reply (a unicast answer to a new neighbour: not answered again);
//              other bits are sent as 0 and ignored
//     4     2  length of the whole datagram, signature included
//     6     8  sequence: strictly increasing per node (starts at the wall clock in µs)
//    14     8  timestamp: milliseconds since the Unix epoch (signed)
//    22     2  mesh TCP port (0: none)
//    24     2  mesh QUIC port (0: none)
//    26    52  node ID: base32 (RFC 4648, upper case, no padding) of SHA-256 of the public key
//    78     1  name length n (1..63), then n bytes of name: a DNS label [a-z0-9-], not starting
//              or ending with '-' (it names the node as `<name>.mesh`)
//     .     1  address count k (0..16), then k times: family (4 or 6) and 4 or 16 address bytes
//     .    65  public key: uncompressed P-256 point 0x04 || X || Y
//     .    64  signature: ECDSA P-256 over SHA-256 of every byte before it, raw r || s
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>

#include "auth/crypto.h"

namespace ugate::local {

inline constexpr uint8_t kMagic0 = 0x75;  // 'u'
inline constexpr uint8_t kMagic1 = 0x44;  // 'D'
inline constexpr uint8_t kVersion = 1;
inline constexpr uint8_t kFlagReply = 0x01;
inline constexpr size_t kNodeIdOffset = 26;
inline constexpr size_t kNameOffset = kNodeIdOffset + auth::kNodeIdLen;  // the name's length byte
inline constexpr size_t kMaxNameLen = 63;
inline constexpr size_t kMaxAddresses = 16;
inline constexpr size_t kSignatureLen = 64;
/** kMinLen: a one-byte name, no address. */
inline constexpr size_t kMinLen = kNameOffset + 1 + 1 + 1 + auth::kPublicKeyLen + kSignatureLen;
/** kMaxLen: the longest name and every address as IPv6. */
inline constexpr size_t kMaxLen = kNameOffset + 1 + kMaxNameLen + 1 + kMaxAddresses * 17 + auth::kPublicKeyLen + kSignatureLen;

/** IpAddr: an IPv4 or IPv6 address as announced (no port, no scope). */
struct IpAddr {
  uint8_t family{4};  // family: 4 or 6
  std::array<uint8_t, 16> bytes{};
  /** str: dotted or RFC 5952 text. */
  std::string str() const;
  /** parse reads text; false when it is not an IP literal. */
  static bool parse(std::string_view text, IpAddr& out);
  bool operator==(const IpAddr& o) const = default;
};

/** Announcement: what one datagram says. */
struct Announcement {
  bool reply{false};
  uint64_t sequence{0};
  int64_t timestampMs{0};
  uint16_t tcpPort{0};
  uint16_t quicPort{0};
  std::string nodeId;  // set by encode from the key; checked against the key by parse
  std::string name;
  std::vector<IpAddr> addresses;
  auth::Bytes publicKey;  // set by encode from the key
};

/**
 * Reject: why a datagram was dropped. The codec returns the first six-plus kinds; the receiver
 * (neighbour_table.h) adds the stateful ones. Stable names for logs and /stats: rejectName().
 */
enum class Reject : uint8_t {
  None,          // accepted
  Truncated,     // shorter than the header or than its length field says
  BadMagic,      // not a discovery datagram
  BadVersion,    // a version this build does not speak
  BadLength,     // length field out of range, bytes past it, or fields that do not fill it exactly
  Malformed,     // a bad name or address family
  BadKey,        // the public key is not a P-256 point
  IdMismatch,    // the node ID is not the one derived from the public key
  BadSignature,  // the signature does not verify
  TooOld,        // timestamp older than the window
  TooNew,        // timestamp too far in the future
  Replay,        // sequence not above the last one accepted from that node
  Own,           // our own announcement (looped back)
  RateLimited,   // the source sent more than its budget
  TableFull,     // a new node while the table holds its maximum
  Count,
};
std::string_view rejectName(Reject r);

/** validName: a DNS label of 1..63 characters [a-z0-9-], not starting or ending with '-'. */
bool validName(std::string_view name);

/**
 * encodeAnnouncement fills a.nodeId and a.publicKey from key and returns the signed datagram.
 * Errors: a name that is not validName, more than kMaxAddresses addresses, a signing failure.
 */
Result<auth::Bytes> encodeAnnouncement(Announcement a, const auth::PrivateKey& key);

/**
 * parseAnnouncement checks structure, key, node ID and signature (in that order: the cheap checks
 * come before the ECDSA verify). On Reject::None `out` holds the announcement.
 */
Reject parseAnnouncement(std::span<const uint8_t> datagram, Announcement& out);
/**
 * parseUnverified: parseAnnouncement without the signature check (everything else, the ID/key
 * match included), so a caller can spend its verify budget only on well-formed datagrams; it must
 * then call verifySignature before believing anything in `out`.
 */
Reject parseUnverified(std::span<const uint8_t> datagram, Announcement& out);
/** verifySignature: BadSignature or None, for a datagram parseUnverified accepted. */
Reject verifySignature(std::span<const uint8_t> datagram);

}  // namespace ugate::local
