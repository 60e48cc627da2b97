#pragma once
// SOCKS5 (RFC 1928), its username/password sub-negotiation (RFC 1929) and SOCKS4/4a, sans-I/O: each
// parse function looks at the bytes received so far and says Done (with how many bytes the message
// took), NeedMore, or Error (with the reply code the protocol wants sent before closing). Encoders
// build replies and UDP datagram headers. No sockets, no clocks, no allocation beyond the results.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <ugate/socket_address.h>

namespace ugate::socks {

inline constexpr uint8_t kVersion5 = 0x05;
inline constexpr uint8_t kVersion4 = 0x04;
inline constexpr uint8_t kAuthVersion = 0x01;  // RFC 1929 sub-negotiation version

/** Method: SOCKS5 authentication methods (RFC 1928 §3). */
enum class Method : uint8_t { NoAuth = 0x00, Gssapi = 0x01, UserPass = 0x02, NoAcceptable = 0xff };

/** Command: SOCKS5 CMD (RFC 1928 §4); SOCKS4 uses 1 and 2 with the same meaning. */
enum class Command : uint8_t { Connect = 0x01, Bind = 0x02, UdpAssociate = 0x03 };

/** AddressType: SOCKS5 ATYP. */
enum class AddressType : uint8_t { IPv4 = 0x01, Domain = 0x03, IPv6 = 0x04 };

/** Reply: SOCKS5 REP (RFC 1928 §6). */
enum class Reply : uint8_t {
  Succeeded = 0x00,
  GeneralFailure = 0x01,
  NotAllowed = 0x02,
  NetworkUnreachable = 0x03,
  HostUnreachable = 0x04,
  ConnectionRefused = 0x05,
  TtlExpired = 0x06,
  CommandNotSupported = 0x07,
  AddressTypeNotSupported = 0x08,
};

/** Socks4Reply: SOCKS4 CD of a reply (90 granted, 91 rejected or failed). */
enum class Socks4Reply : uint8_t { Granted = 0x5a, Rejected = 0x5b };

enum class Status : uint8_t { Done, NeedMore, Error };

/**
 * Address: a SOCKS destination. For IPv4/IPv6, ip holds the address; for Domain, host holds the name
 * exactly as received (1..255 bytes, validated by parseRequest).
 */
struct Address {
  AddressType type{AddressType::IPv4};
  std::array<uint8_t, 16> ip{};
  std::string host;
  uint16_t port{0};

  /** socketAddress returns the IP address (invalid for Domain). */
  SocketAddress socketAddress() const;
  /** hostString: the dotted/colon IP text, or the domain name. */
  std::string hostString() const;
  /** fromSocketAddress builds an IPv4/IPv6 Address. */
  static Address fromSocketAddress(const SocketAddress& a);
};

/** Greeting: VER NMETHODS METHODS, reduced to the two methods ugate can use. */
struct Greeting {
  bool noAuth{false};
  bool userPass{false};
};

/**
 * parseGreeting parses the SOCKS5 method-selection message. Error when VER is not 5 or NMETHODS is 0.
 * @param consumed set to the message length on Done.
 */
Status parseGreeting(std::span<const uint8_t> in, Greeting& out, size_t& consumed);

/** UserPass: the RFC 1929 request. */
struct UserPass {
  std::string user;
  std::string password;
};

/** parseUserPass parses VER=01 ULEN UNAME PLEN PASSWD. Error on another VER or a zero ULEN. */
Status parseUserPass(std::span<const uint8_t> in, UserPass& out, size_t& consumed);

/** Request: a SOCKS5 request (RFC 1928 §4). */
struct Request {
  uint8_t command{0};  // raw CMD: unknown values are reported, not rejected, by the parser
  Address dst;
};

/**
 * parseRequest parses VER CMD RSV ATYP DST.ADDR DST.PORT. On Error, errorReply says what to answer:
 * AddressTypeNotSupported for an unknown ATYP, GeneralFailure for a bad version or a malformed name
 * (empty, or bytes other than letters, digits, '-', '.', '_'). An unknown CMD is not an error here.
 */
Status parseRequest(std::span<const uint8_t> in, Request& out, size_t& consumed, Reply& errorReply);

/** Socks4Request: VN=4 CD DSTPORT DSTIP USERID NUL [HOST NUL] (SOCKS4a when DSTIP is 0.0.0.x, x!=0). */
struct Socks4Request {
  uint8_t command{0};
  Address dst;  // IPv4, or Domain for SOCKS4a
  std::string userId;
};

/**
 * parseSocks4Request parses a SOCKS4 or SOCKS4a request. USERID and the 4a host are limited to 255
 * bytes each; longer, a malformed host or VN != 4 is an Error.
 */
Status parseSocks4Request(std::span<const uint8_t> in, Socks4Request& out, size_t& consumed);

/** encodeMethodChoice: VER=05 METHOD. */
std::string encodeMethodChoice(Method m);
/** encodeAuthStatus: VER=01 STATUS (00 success, 01 failure). */
std::string encodeAuthStatus(bool ok);
/** encodeReply: VER=05 REP RSV=00 ATYP BND.ADDR BND.PORT, bnd being an IPv4 or IPv6 address. */
std::string encodeReply(Reply rep, const Address& bnd);
/** encodeReply with BND 0.0.0.0:0. */
std::string encodeReply(Reply rep);
/** encodeSocks4Reply: VN=00 CD DSTPORT=0 DSTIP=0 (the client ignores them for CONNECT). */
std::string encodeSocks4Reply(Socks4Reply cd);

/** UdpHeader: RSV(2) FRAG ATYP DST.ADDR DST.PORT in front of every relayed datagram (RFC 1928 §7). */
struct UdpHeader {
  uint8_t frag{0};
  Address dst;
  size_t headerLen{0};  // the payload starts here
};

/**
 * parseUdpHeader parses a whole datagram's header (datagrams are never partial: a short one is an
 * Error). A relay without fragment support must drop datagrams whose frag is not 0.
 */
Status parseUdpHeader(std::span<const uint8_t> datagram, UdpHeader& out);
/** encodeUdpHeader builds the header for a datagram to or from dst, FRAG 0. */
std::string encodeUdpHeader(const Address& dst);

/** validDomainName: 1..255 bytes of letters, digits, '-', '.', '_' (what a resolver and routes accept). */
bool validDomainName(std::string_view name);

}  // namespace ugate::socks
