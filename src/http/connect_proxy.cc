#include "http/connect_proxy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <memory>

#include "http/trace_context.h"

namespace ugate::http {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// validName: what routes and the resolver accept as a host name.
bool validName(std::string_view n) {
  if (n.empty() || n.size() > 253) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

// normaliseHost: an IP literal in its canonical text, or a valid name lower-cased; nullopt otherwise.
std::optional<std::string> normaliseHost(std::string_view h) {
  if (auto a = SocketAddress::fromIp(h, 0)) return a->ip();
  if (!validName(h)) return std::nullopt;
  return lower(h);
}

void setDestination(StreamMeta& meta, const std::string& host, uint16_t port) {
  meta.host = host;
  meta.port = port;
  // An IP target is also the original destination (StreamMeta: "SOCKS or CONNECT target when an
  // IP"), so a listener with `to: "original"` dials it.
  if (auto a = SocketAddress::fromIp(host, port)) {
    meta.originalDst = *a;
  } else {
    meta.originalDst = SocketAddress{};
  }
}

// forEachToken calls fn for every non-empty element of a comma-separated list (OWS trimmed).
template <class Fn>
void forEachToken(std::string_view list, Fn fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view t = list.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (!t.empty()) fn(t);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

std::optional<std::string> decodeBase64(std::string_view in) {
  static constexpr std::array<int8_t, 256> kTable = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<size_t>(k)];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = kTable[static_cast<uint8_t>(c)];
      if (v[k] < 0) return std::nullopt;
    }
    const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

std::optional<HostPort> parseConnectAuthority(std::string_view target) {
  auto hp = HostPort::parse(target);
  if (!hp) return std::nullopt;
  auto h = normaliseHost(hp->host);
  if (!h) return std::nullopt;
  // A bracketed name ("[example.com]:443") or an unbracketed IPv6 is not an authority.
  const bool bracketed = !target.empty() && target.front() == '[';
  if (bracketed != (SocketAddress::fromIp(hp->host, 0) && h->find(':') != std::string::npos)) {
    return std::nullopt;
  }
  hp->host = *h;
  return hp;
}

std::optional<ForwardRequest> rewriteAbsoluteForm(const Request& req, std::string* why,
                                                  int* status) {
  auto bad = [&](const char* w, int code = 400) -> std::optional<ForwardRequest> {
    if (why) *why = w;
    if (status) *status = code;
    return std::nullopt;
  };
  std::string_view t = req.target;
  const size_t sep = t.find("://");
  if (sep == std::string_view::npos) return bad("request target is not an absolute URI");
  if (!iequals(t.substr(0, sep), "http")) return bad("only http:// URIs can be proxied (use CONNECT for https)");
  std::string_view rest = t.substr(sep + 3);
  const size_t pathStart = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, pathStart);
  std::string path = pathStart == std::string_view::npos ? "/" : std::string(rest.substr(pathStart));
  if (path.front() == '?') path.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) return bad("userinfo in the request URI");
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("bad IPv6 literal in the request URI");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("bad authority in the request URI");
      port = after.substr(1);
    }
    if (!SocketAddress::fromIp(host, 0)) return bad("bad IPv6 literal in the request URI");
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  ForwardRequest f;
  auto h = normaliseHost(host);
  if (!h) return bad("bad host in the request URI");
  f.host = *h;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) {
      return bad("bad port in the request URI");
    }
    f.port = static_cast<uint16_t>(v);
  }
  // Hop-by-hop headers (RFC 9110 7.6.1) and the ones Connection names are not forwarded.
  std::vector<std::string> drop{"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                                "te", "upgrade", "host"};
  for (const auto& hd : req.headers) {
    if (iequals(hd.name, "connection")) forEachToken(hd.value, [&](std::string_view tok) { drop.push_back(lower(tok)); });
  }
  f.head.reserve(256);
  f.head += req.method + " " + path + " HTTP/1." + std::to_string(req.versionMinor) + "\r\n";
  // RFC 9112 3.2.2: a proxy replaces Host with the authority of the absolute-form target, written
  // canonically from what was parsed ("host:" and "host:0001" would not survive as written).
  const bool v6 = f.host.find(':') != std::string::npos;
  f.head += "Host: " + (v6 ? "[" + f.host + "]" : f.host);
  if (!port.empty() && f.port != 80) f.head += ":" + std::to_string(f.port);
  f.head += "\r\n";
  size_t headers = 2;  // Host and Connection
  for (const auto& hd : req.headers) {
    const std::string n = lower(hd.name);
    if (std::find(drop.begin(), drop.end(), n) != drop.end()) continue;
    f.head += hd.name + ": " + hd.value + "\r\n";
    ++headers;
  }
  f.head += "Connection: close\r\n\r\n";
  // Found by the fuzzer: 99 headers and no Host or Connection to drop became 101 headers.
  if (headers > kMaxForwardHeaders || f.head.size() > kMaxForwardHeadBytes) {
    return bad("request head too large once Host and Connection are added", 431);
  }
  return f;
}

ConnectProxyFrontDoor::ConnectProxyFrontDoor(ConnectProxyOptionsPtr opts) : opts_(std::move(opts)) {}

int ConnectProxyFrontDoor::statusFor(Errc e) {
  switch (e) {
    case Errc::Ok: return 200;
    case Errc::RouteRejected:
    case Errc::NotExposed:
    case Errc::NoRoute: return 403;
    case Errc::ConnectTimeout: return 504;
    default: return 502;  // refused, unreachable, DNS failure, anything else upstream
  }
}

std::string ConnectProxyFrontDoor::errorResponse(int status, std::string_view message,
                                                 const std::vector<Header>& extra) {
  std::vector<Header> h{{"Content-Type", "text/plain"}};
  h.insert(h.end(), extra.begin(), extra.end());
  return formatResponse(status, "", h, "ugate: " + std::string(message) + "\n", /*keepAlive=*/false);
}

// takeTraceContext: a CONNECT's W3C trace context (traceparent, tracestate, baggage) goes with the
// stream: into its access-log line and, when it is routed into the mesh, to the next hops. Malformed
// fields are left out (debug log); nothing else of the request is carried.
void ConnectProxyFrontDoor::takeTraceContext(const Request& req, StreamMeta& meta) {
  auto field = [&req](std::string_view name) {
    std::string out;
    for (const Header& h : req.headers) {
      if (!iequals(h.name, name)) continue;
      if (!out.empty()) out += ',';
      out += h.value;
    }
    return out;
  };
  for (TraceField& f : http::takeTraceContext(field)) {
    if (f.why) {
      spdlog::debug("http-connect: CONNECT {}: dropped {} ({}): {}", req.target, f.name, f.why,
                    f.value.substr(0, 128));
      continue;
    }
    if (!meta.headers) meta.headers = std::make_unique<std::vector<std::pair<std::string, std::string>>>();
    meta.headers->emplace_back(std::string(f.name), std::move(f.value));
  }
}

bool ConnectProxyFrontDoor::authorized(const Request& req) const {
  if (opts_->users.empty()) return true;
  const Header* h = req.find("proxy-authorization");
  if (!h) return false;
  std::string_view v = h->value;
  const size_t sp = v.find(' ');
  if (sp == std::string_view::npos || !iequals(v.substr(0, sp), "basic")) return false;
  std::string_view token = v.substr(sp + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  auto decoded = decodeBase64(token);
  if (!decoded) return false;
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  return opts_->checkCredentials(std::string_view(*decoded).substr(0, colon),
                                 std::string_view(*decoded).substr(colon + 1));
}

FrontDoorResult ConnectProxyFrontDoor::onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) {
  if (done_) return FrontDoorResult::close(Errc::ProtocolError, "request already handled");
  size_t consumed = 0;
  const ParseStatus st = parser_.feed(data.subspan(std::min(fed_, data.size())), consumed);
  switch (st) {
    case ParseStatus::NeedMore:
      fed_ += consumed;
      return FrontDoorResult::needMore();
    case ParseStatus::Error: {
      done_ = true;
      const int status = parser_.errorStatus() ? parser_.errorStatus() : 400;
      return FrontDoorResult::close(Errc::ProtocolError, "bad request: " + std::string(parser_.error()),
                                    errorResponse(status, parser_.error()));
    }
    case ParseStatus::Done: break;
  }
  done_ = true;
  return onRequest(fed_ + consumed, meta);
}

FrontDoorResult ConnectProxyFrontDoor::onRequest(size_t headEnd, StreamMeta& meta) {
  const Request& req = parser_.request();
  if (!authorized(req)) {
    const bool given = req.find("proxy-authorization") != nullptr;
    return FrontDoorResult::close(
        Errc::AuthFailed, given ? "proxy authentication failed" : "proxy authentication required",
        errorResponse(407, "proxy authentication required", {{"Proxy-Authenticate", "Basic realm=\"ugate\""}}));
  }
  if (req.method == "CONNECT") {
    auto hp = parseConnectAuthority(req.target);
    if (!hp) {
      return FrontDoorResult::close(Errc::ProtocolError, "bad CONNECT target '" + req.target + "'",
                                    errorResponse(400, "bad CONNECT target"));
    }
    setDestination(meta, hp->host, hp->port);
    takeTraceContext(req, meta);
    return FrontDoorResult::route(headEnd);
  }
  if (req.target.front() == '/' || req.target == "*") {
    return FrontDoorResult::close(Errc::ProtocolError, "not a proxy request: " + req.method + " " + req.target,
                                  errorResponse(400, "this is a proxy: send CONNECT or an absolute URI"));
  }
  std::string why;
  int status = 400;
  auto fwd = rewriteAbsoluteForm(req, &why, &status);
  if (!fwd) {
    return FrontDoorResult::close(status == 431 ? Errc::TooLarge : Errc::ProtocolError, why,
                                  errorResponse(status, why));
  }
  setDestination(meta, fwd->host, fwd->port);
  // The head goes upstream rewritten to origin-form (with Connection: close); the body and anything
  // after it follow untouched.
  absolute_ = true;
  return FrontDoorResult::route(headEnd, std::move(fwd->head));
}

std::string ConnectProxyFrontDoor::onUpstreamResult(const StreamMeta&, Errc result) {
  if (result == Errc::Ok) return absolute_ ? std::string() : "HTTP/1.1 200 Connection Established\r\n\r\n";
  const int status = statusFor(result);
  return errorResponse(status, std::string(errcReason(result)));
}

}  // namespace ugate::http
