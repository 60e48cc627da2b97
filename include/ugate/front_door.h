#pragma once
// FrontDoor: the protocol a listener speaks with the client before the stream is routed (SOCKS5,
// SNI peek, HTTP CONNECT, ...). Sans-I/O: the session feeds it the bytes read so far and acts on the
// returned decision; the front door never touches sockets or clocks.
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <ugate/result.h>
#include <ugate/stream.h>

namespace ugate {

struct FrontDoorResult {
  enum class Action : uint8_t {
    NeedMore,  // read more client bytes (under the listener's sniff deadline and maxSniffBytes)
    Route,     // metadata complete: route and dial. The first `consumed` bytes were the front door's
               // own protocol; `forward` (usually empty) is sent upstream in their place, then the
               // rest of what was read, untouched (an HTTP proxy rewrites a request head this way).
    Reply,     // send `reply` to the client, drop `consumed` bytes, and keep reading
    Close,     // send `reply` (may be empty), then close with `reason` and `detail`
  };
  Action action{Action::NeedMore};
  size_t consumed{0};
  std::string reply;
  Errc reason{Errc::Ok};
  std::string detail;
  std::string forward;  // Route only: bytes sent upstream in place of the consumed ones
  // Route only: the front door chose the destination itself (e.g. the SNI listener's fallback for
  // bytes that are not TLS); the routes are not consulted.
  std::optional<HostPort> dial;

  static FrontDoorResult needMore() { return {}; }
  static FrontDoorResult route(size_t consumed, std::string forward = {}) {
    return {Action::Route, consumed, {}, Errc::Ok, {}, std::move(forward), {}};
  }
  static FrontDoorResult routeTo(size_t consumed, HostPort target) {
    return {Action::Route, consumed, {}, Errc::Ok, {}, {}, std::move(target)};
  }
  static FrontDoorResult replyAndRead(size_t consumed, std::string r) {
    return {Action::Reply, consumed, std::move(r), Errc::Ok, {}, {}, {}};
  }
  static FrontDoorResult close(Errc why, std::string detail, std::string r = {}) {
    return {Action::Close, 0, std::move(r), why, std::move(detail), {}, {}};
  }
};

class FrontDoor {
 public:
  virtual ~FrontDoor() = default;
  /**
   * onClientBytes is called with every byte read from the client and not yet consumed (the same
   * prefix again, grown, after NeedMore). It fills meta (host, port, sni, alpn, originalDst, ...).
   */
  virtual FrontDoorResult onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) = 0;
  /**
   * onUpstreamResult tells the outcome of routing and dialling (Errc::Ok when connected; then meta
   * has upstreamAddr). Returns bytes for the client: sent before splicing on success (a SOCKS reply,
   * "HTTP/1.1 200 ..."), or before closing on failure (the matching error reply). May be empty.
   */
  virtual std::string onUpstreamResult(const StreamMeta& meta, Errc result) = 0;
  /** maxSniffBytes: the most bytes buffered before the front door must decide. */
  virtual size_t maxSniffBytes() const = 0;
};
using FrontDoorPtr = std::unique_ptr<FrontDoor>;

}  // namespace ugate
