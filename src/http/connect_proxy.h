#pragma once
// The `http-connect` listener kind's front door: an HTTP/1.1 forward proxy. Sans-I/O (see
// include/ugate/front_door.h); the request head is parsed by the project's own RequestParser.
//
//  - `CONNECT host:port HTTP/1.1` routes to host:port; "HTTP/1.1 200 Connection Established" is sent
//    once the upstream is connected, then the connection is a tunnel. Failures answer 403 (a route
//    rejects, or none matches), 502 (refused, unreachable, DNS failure, other), 504 (connect timeout).
//  - With `users` configured, a missing or wrong `Proxy-Authorization: Basic ...` answers 407 with
//    `Proxy-Authenticate: Basic realm="ugate"`, then closes.
//  - Absolute-form requests (`GET http://host/path HTTP/1.1`): rewriteAbsoluteForm() computes the
//    origin-form request head to send upstream, but FrontDoorResult cannot yet carry bytes that
//    replace the consumed head (a core change, see docs/CONFIG.md), so they are answered 501 for now.
//  - Anything else (origin-form, asterisk-form, https:// absolute-form) answers 400 and closes.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/front_door.h>

#include <ugate/listener.h>
#include <ugate/proxy_auth.h>
#include "http/http1_parser.h"

namespace ugate::http {

/** ConnectProxyOptions: Basic-auth `users` and `allowOpenProxy`, shared with socks5. */
using ConnectProxyOptions = ProxyAuthOptions;
using ConnectProxyOptionsPtr = ProxyAuthOptionsPtr;

/** ForwardRequest: an absolute-form request turned into what the origin server must receive. */
struct ForwardRequest {
  std::string host;  // lower-cased name, or an IP literal without brackets
  uint16_t port{80};
  // head: "METHOD /path HTTP/1.x", the client's headers without hop-by-hop ones (Connection and
  // those it names, Keep-Alive, Proxy-Connection, Proxy-Authorization, TE, Upgrade), Host added if
  // missing, and "Connection: close" so the origin ends the connection after one response: later
  // requests on the client connection (possibly for other hosts) never reach it unrewritten.
  std::string head;
};

/**
 * kMaxForwardHeadBytes, kMaxForwardHeaders: the request-head limits of the http-connect front door,
 * which the head it forwards must respect too (a chained proxy or an origin with the same limits
 * would refuse it otherwise).
 */
inline constexpr size_t kMaxForwardHeadBytes = 16384;
inline constexpr size_t kMaxForwardHeaders = 100;

/**
 * rewriteAbsoluteForm turns an `http://` absolute-form request into a ForwardRequest.
 * @return nullopt (and *why, and *status 400) when the target is not a usable http:// URI (other
 *         scheme, userinfo, bad host or port); nullopt with *status 431 when the rewritten head,
 *         with the Host and Connection headers it adds, exceeds the limits above.
 */
std::optional<ForwardRequest> rewriteAbsoluteForm(const Request& req, std::string* why,
                                                  int* status = nullptr);

/** parseConnectAuthority splits a CONNECT target "host:port" / "[v6]:port" and validates the host. */
std::optional<HostPort> parseConnectAuthority(std::string_view target);

/** decodeBase64: strict RFC 4648 base64 with padding; nullopt on any invalid input. */
std::optional<std::string> decodeBase64(std::string_view in);

class ConnectProxyFrontDoor final : public FrontDoor {
 public:
  /** @param opts the listener's options (shared, immutable; not null). */
  explicit ConnectProxyFrontDoor(ConnectProxyOptionsPtr opts);

  // ugate::FrontDoor
  FrontDoorResult onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) override;
  std::string onUpstreamResult(const StreamMeta& meta, Errc result) override;
  size_t maxSniffBytes() const override { return kMaxHeadBytes + 1024; }

  /** statusFor maps a routing/dialling failure to the HTTP status sent to the client. */
  static int statusFor(Errc e);

  // kMaxHeadBytes: the request head limit (431 beyond it).
  static constexpr size_t kMaxHeadBytes = kMaxForwardHeadBytes;

 private:
  FrontDoorResult onRequest(size_t headEnd, StreamMeta& meta);
  bool authorized(const Request& req) const;
  static void takeTraceContext(const Request& req, StreamMeta& meta);
  static std::string errorResponse(int status, std::string_view message,
                                   const std::vector<Header>& extra = {});

  ConnectProxyOptionsPtr opts_;
  RequestParser parser_{kMaxHeadBytes, kMaxForwardHeaders};
  size_t fed_{0};  // fed_: bytes of the client's data already given to parser_
  bool done_{false};
  bool absolute_{false};  // absolute_: an absolute-form request is forwarded (no 200 to send)
};

}  // namespace ugate::http
