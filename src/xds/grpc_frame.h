#pragma once
// gRPC's length-prefixed messages and request metadata (the gRPC "PROTOCOL-HTTP2" wire spec),
// sans-I/O: the caller hands in DATA bytes as they arrive, in any chunking, and gets whole messages
// back; nothing here reads a socket or a clock.
//
//   Length-Prefixed-Message = Compressed-Flag (1 byte: 0 or 1) Message-Length (4 bytes, big endian)
//                             Message (Message-Length bytes)
//
// ugated speaks only the identity encoding: a message with the compressed flag set is refused with
// UNIMPLEMENTED (a flag other than 0 or 1 is INTERNAL), one longer than the receiver's limit with
// RESOURCE_EXHAUSTED, before any of its payload is buffered.
#include <ugate/result.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "xds/grpc_status.h"

namespace ugate::xds::grpc {

/** kPrefixLen: the compressed flag and the length. */
inline constexpr size_t kPrefixLen = 5;
/** kDefaultMaxMessageBytes: gRPC's default receive limit (4 MiB). */
inline constexpr uint32_t kDefaultMaxMessageBytes = 4u << 20;

/** appendMessage appends `payload` to `out` as one uncompressed length-prefixed message. */
void appendMessage(std::string& out, std::string_view payload);

/** encodeMessage: `payload` as one uncompressed length-prefixed message. */
std::string encodeMessage(std::string_view payload);

/**
 * MessageDecoder: reassembles length-prefixed messages from DATA bytes of one gRPC stream, one
 * message at a time; holds at most one message (up to the limit) plus a partial prefix. After a
 * failure it stays failed (the call must end with status()). Not thread-safe; one per stream.
 */
class MessageDecoder {
 public:
  /** Outcome of decode(). */
  enum class Outcome : uint8_t {
    Message,   // `message` holds one whole message; call again for the next
    NeedMore,  // every byte of the input was taken; no whole message yet
    Failed,    // a bad prefix: status() says which gRPC status to end the call with
  };

  /** @param maxMessageBytes the largest message accepted (RESOURCE_EXHAUSTED above it). */
  explicit MessageDecoder(uint32_t maxMessageBytes = kDefaultMaxMessageBytes)
      : max_(maxMessageBytes) {}

  /**
   * decode takes bytes from the front of `in` (and advances it) until one message is complete.
   * @param in DATA bytes not yet taken; on Message it may still hold bytes of later messages.
   * @param message on Message: the payload (replaced, not appended to).
   * @return Message, NeedMore (`in` is empty) or Failed (and every later call fails).
   */
  Outcome decode(std::span<const uint8_t>& in, std::string& message);

  /** status: why decoding failed (OK while it has not). */
  const Status& status() const { return status_; }

  /**
   * finish: the peer ended its side of the stream (END_STREAM). OK when that fell between two
   * messages; INTERNAL when it cut one short; the earlier failure if decoding had failed.
   */
  Status finish() const;

  /** idle: no partial message is buffered (between messages). */
  bool idle() const { return prefixHave_ == 0 && !inBody_; }

 private:
  Outcome fail(Code code, std::string message);

  uint32_t max_;
  uint8_t prefix_[kPrefixLen]{};
  size_t prefixHave_{0};
  bool inBody_{false};
  uint32_t bodyLen_{0};
  std::string body_;
  Status status_;
};

/**
 * parseTimeout reads a `grpc-timeout` value: 1 to 8 ASCII digits, then the unit H (hours),
 * M (minutes), S, m (milliseconds), u (microseconds) or n (nanoseconds); no sign, no spaces.
 * Values too large for the result saturate at its maximum (99999999H is about 11 400 years).
 * @return the duration, or InvalidArgument naming what was wrong.
 */
Result<std::chrono::nanoseconds> parseTimeout(std::string_view value);

/**
 * encodeTimeout: `t` as a grpc-timeout value in the finest unit whose value fits 8 digits,
 * rounded up so a deadline is never shortened; negative durations encode as "0n".
 */
std::string encodeTimeout(std::chrono::nanoseconds t);

/**
 * isGrpcContentType: `application/grpc`, optionally followed by `+<subtype>` (e.g. +proto) or by
 * `;` parameters; the type compared without regard to case. Others get HTTP 415.
 */
bool isGrpcContentType(std::string_view contentType);

/**
 * acceptsEncoding: a request's `grpc-encoding` value that ugated can read: absent (empty) or
 * "identity". Anything else is answered UNIMPLEMENTED with `grpc-accept-encoding: identity`.
 */
bool acceptsEncoding(std::string_view grpcEncoding);

}  // namespace ugate::xds::grpc
