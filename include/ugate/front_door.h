#pragma once
// FrontDoor: the protocol a listener speaks with the client before the stream is routed (SOCKS5,
// SNI peek, HTTP CONNECT, ...). Sans-I/O: the session feeds it the bytes read so far and acts on the
// returned decision; the front door never touches sockets or clocks.
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <ugate/dns.h>
#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/router.h>
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
    Serve,     // no route and no upstream: drop `consumed` bytes and call FrontDoor::serve(), which
               // serves the connection itself (a SOCKS5 UDP ASSOCIATE relay)
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
  static FrontDoorResult serve(size_t consumed) {
    return {Action::Serve, consumed, {}, Errc::Ok, {}, {}, {}};
  }
};

/**
 * ServiceContext: what a session lends the service a front door starts in place of an upstream
 * (FrontDoorResult::Action::Serve). Valid as long as the service; used on the session's reactor
 * thread only. After the session closed, datagram/dropped/close do nothing.
 */
class ServiceContext {
 public:
  virtual ~ServiceContext() = default;
  virtual Reactor& reactor() = 0;
  virtual Resolver& resolver() = 0;
  /** router: the worker's current routes (replaced on reload: look it up for each decision). */
  virtual const Router& router() = 0;
  /** meta: the session's metadata (source, local address, listener, ...). */
  virtual const StreamMeta& meta() const = 0;
  /**
   * datagram accounts one datagram relayed (fromClient: from the client toward a destination) in
   * the stream's bytes and packets and the listener's counters, and counts as activity for the
   * session's idle timeout.
   */
  virtual void datagram(bool fromClient, size_t bytes) = 0;
  /** dropped counts `count` datagrams dropped, by reason (ugate_listener_dropped_datagrams_total). */
  virtual void dropped(Errc reason, uint64_t count) = 0;
  /** close ends the session; the service is destroyed later, never inside this call. */
  virtual void close(Errc reason, std::string detail) = 0;
};

/** LocalService: whatever serves a connection in place of an upstream; owned by the session. */
class LocalService {
 public:
  virtual ~LocalService() = default;
};
using LocalServicePtr = std::unique_ptr<LocalService>;

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
  /**
   * serve is called once after Action::Serve. It starts the service and returns it with the bytes
   * for the client in `reply` (sent at once), or an error: the client then gets
   * onUpstreamResult(meta, error.code) and the session closes. While the service lives the session
   * keeps the client connection open, discards what the client sends on it, closes (reason ok)
   * when the client closes it, and applies the idle timeout to the service's datagrams.
   */
  virtual Result<LocalServicePtr> serve(ServiceContext& ctx, std::string& reply) {
    (void)ctx;
    (void)reply;
    return makeError(Errc::NotSupported, "this front door serves no connection itself");
  }
};
using FrontDoorPtr = std::unique_ptr<FrontDoor>;

}  // namespace ugate
