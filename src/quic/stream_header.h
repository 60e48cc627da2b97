#pragma once
// The header that opens every stream of the mesh over QUIC (ALPN "ugate"), and its answer. Either
// side may open a bidirectional stream; its first bytes are a StreamRequest (the target authority
// and the same metadata the HTTP/2 mesh carries as CONNECT headers: x-ugate-hops, x-ugate-peer,
// traceparent, baggage, ...), and the acceptor answers with a StreamResponse (an HTTP status code
// and headers such as x-ugate-error) before any payload byte flows in either direction.
//
// Wire format (all integers are QUIC variable-length integers, RFC 9000 §16):
//   header   = length body             length: bytes of body, 2 .. limits.maxHeaderBytes
//   body     = version(1 byte = 0x01) first fields*
//   request  first = string (the authority, "host:port")
//   response first = varint (the status, 100 .. 999)
//   fields   = string(name) string(value)      string = varint(n) n bytes
// Names are lower-case HTTP token characters; values are visible ASCII, space and tab (no CR, LF
// or NUL), as HTTP/2 requires of header values. A field name may repeat; order is kept.
//
// Sans I/O: the parser takes bytes as they arrive and says how many it consumed; it never reads a
// byte past the header, so what follows is the stream's payload.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ugate::quic {

inline constexpr uint8_t kStreamHeaderVersion = 1;

using HeaderField = std::pair<std::string, std::string>;

struct StreamRequest {
  std::string authority;  // host:port the opener wants to reach
  std::vector<HeaderField> fields;
  /** field returns the first value of `name` (lower case), or "" when absent. */
  std::string_view field(std::string_view name) const;
};

struct StreamResponse {
  uint16_t status{0};  // 200: bytes flow; anything else ends the stream after the header
  std::vector<HeaderField> fields;
  std::string_view field(std::string_view name) const;
};

/** Limits on an untrusted header. */
struct StreamHeaderLimits {
  size_t maxHeaderBytes{16 * 1024};  // the body, without its length prefix
  size_t maxFields{64};
};

/** Why a header was refused; each has a stable reason string (stats, logs). */
enum class HeaderError : uint8_t {
  None = 0,
  TooLarge,        // the length prefix exceeds maxHeaderBytes
  BadVersion,      // not kStreamHeaderVersion
  Truncated,       // a field runs past the length the prefix announced
  BadAuthority,    // empty, too long or not host:port with a port 1..65535
  BadStatus,       // outside 100..999
  BadName,         // empty or not lower-case token characters
  BadValue,        // CR, LF, NUL or another control character
  TooManyFields,
  kCount,
};
std::string_view headerErrorReason(HeaderError e);

/**
 * StreamHeaderParser: feed() bytes until done() or failed(). One parser per stream and direction;
 * request and response parsers differ only in the first field. Buffers at most the header itself.
 */
class StreamHeaderParser {
 public:
  enum class Kind : uint8_t { Request, Response };
  explicit StreamHeaderParser(Kind kind, StreamHeaderLimits limits = {}) : kind_(kind), limits_(limits) {}

  /**
   * feed consumes bytes of `in` up to the end of the header and returns how many it took; bytes
   * after the header are not consumed (they are payload). After an error it consumes nothing.
   */
  size_t feed(std::span<const uint8_t> in);
  bool done() const { return state_ == State::Done; }
  bool failed() const { return state_ == State::Failed; }
  HeaderError error() const { return error_; }

  /** The parsed header, valid once done() (moved out by take*). */
  StreamRequest takeRequest() { return std::move(request_); }
  StreamResponse takeResponse() { return std::move(response_); }

 private:
  enum class State : uint8_t { Length, Body, Done, Failed };
  size_t fail(HeaderError e, size_t consumed);
  HeaderError parseBody();

  Kind kind_;
  StreamHeaderLimits limits_;
  State state_{State::Length};
  HeaderError error_{HeaderError::None};
  std::vector<uint8_t> buf_;  // the length prefix, then the body as it arrives
  size_t bodyLen_{0};
  StreamRequest request_;
  StreamResponse response_;
};

/** encodeRequest / encodeResponse append one header to `out`. The caller's fields must be valid. */
void encodeRequest(const StreamRequest& r, std::vector<uint8_t>& out);
void encodeResponse(const StreamResponse& r, std::vector<uint8_t>& out);

/** validAuthority: host:port (IPv6 in brackets) with a port 1..65535 and a host of ≤ 255 bytes. */
bool validAuthority(std::string_view a);
bool validFieldName(std::string_view n);
bool validFieldValue(std::string_view v);

/** QUIC variable-length integers (RFC 9000 §16). */
size_t varintLen(uint64_t v);  // 1, 2, 4 or 8; v must be < 2^62
void appendVarint(std::vector<uint8_t>& out, uint64_t v);
/** readVarint: 0 when `in` holds too few bytes for the whole integer, else the bytes it took. */
size_t readVarint(std::span<const uint8_t> in, uint64_t& v);

}  // namespace ugate::quic
