#pragma once
// gRPC status codes and their carriage over HTTP/2 (the gRPC "PROTOCOL-HTTP2" wire spec): the
// `grpc-status` / `grpc-message` trailers, grpc-message's percent-encoding, and the statuses a
// client infers from an HTTP status or an RST_STREAM error code when no grpc-status arrived.
// Pure functions, no I/O.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ugate::xds::grpc {

/** Code: the gRPC status codes (google.rpc.Code), with their wire values. */
enum class Code : uint8_t {
  Ok = 0,
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
};

/** kMaxCode: the highest code defined. */
inline constexpr int kMaxCode = 16;

/** codeName: the spec's name of `c` ("OK", "INVALID_ARGUMENT", ...). */
std::string_view codeName(Code c);

/**
 * Status: a code and a human-readable message (UTF-8, unencoded). ok() when the code is Ok; the
 * message of an OK status is normally empty.
 */
struct Status {
  Code code{Code::Ok};
  std::string message;
  bool ok() const { return code == Code::Ok; }
  bool operator==(const Status&) const = default;
};

/** Headers: HTTP header or trailer fields, lower-case names (the shape of http::Headers). */
using Headers = std::vector<std::pair<std::string, std::string>>;

/**
 * percentEncode: grpc-message's encoding: every byte outside printable ASCII 0x20..0x7E, and '%'
 * itself, becomes %XX (upper-case hex) of the UTF-8 bytes; the rest is copied.
 */
std::string percentEncode(std::string_view message);

/**
 * percentDecode: the inverse, lenient as the spec asks of receivers: a '%' not followed by two hex
 * digits is kept as it is rather than rejecting the message. Never fails.
 */
std::string percentDecode(std::string_view encoded);

/**
 * statusTrailers: the trailer fields that end a call with `s`: `grpc-status: <decimal>` and, when
 * the message is not empty, `grpc-message: <percent-encoded>`.
 */
Headers statusTrailers(const Status& s);

/**
 * parseCode: the code a `grpc-status` value names: 1..3 ASCII digits of a value 0..16. Anything
 * else (empty, signs, spaces, unknown values) is Unknown, as the spec tells clients to treat it.
 */
Code parseCode(std::string_view value);

/**
 * statusFromTrailers: the status a trailer block carries (grpc-status and grpc-message, the latter
 * percent-decoded). No grpc-status at all: Unknown with a message saying so.
 */
Status statusFromTrailers(const Headers& trailers);

/**
 * codeFromHttpStatus: the code a client assumes when a response had an HTTP status other than 200
 * and no grpc-status (400 Internal, 401 Unauthenticated, 403 PermissionDenied, 404 Unimplemented,
 * 429/502/503/504 Unavailable, anything else Unknown).
 */
Code codeFromHttpStatus(int httpStatus);

/**
 * codeFromH2Error: the code for a stream reset with HTTP/2 error `h2Error` (REFUSED_STREAM
 * Unavailable, CANCEL Cancelled, ENHANCE_YOUR_CALM ResourceExhausted, INADEQUATE_SECURITY
 * PermissionDenied, any other Internal).
 */
Code codeFromH2Error(uint32_t h2Error);

}  // namespace ugate::xds::grpc
