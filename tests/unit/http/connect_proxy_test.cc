// The http-connect front door: CONNECT, Basic auth (407), failures mapped to statuses, the
// absolute-form rewrite, and the listener kind's options.
#include "http/connect_proxy.h"

#include <gtest/gtest.h>

#include <ugate/config.h>
#include "http/connect_proxy_module.h"

namespace ugate::http {
namespace {

struct Session {
  explicit Session(ConnectProxyOptionsPtr o) : fd(std::move(o)) {}
  ConnectProxyFrontDoor fd;
  StreamMeta meta;
  std::string buffered;
  std::string toClient;
  bool routed{false};
  bool closed{false};
  Errc reason{Errc::Ok};

  void feed(std::string_view bytes) {
    buffered.append(bytes);
    auto r = fd.onClientBytes({reinterpret_cast<const uint8_t*>(buffered.data()), buffered.size()}, meta);
    switch (r.action) {
      case FrontDoorResult::Action::NeedMore: return;
      case FrontDoorResult::Action::Reply: FAIL() << "the proxy never replies and keeps reading";
      case FrontDoorResult::Action::Serve: FAIL() << "the proxy never serves a connection itself";
      case FrontDoorResult::Action::Close:
        toClient += r.reply;
        closed = true;
        reason = r.reason;
        return;
      case FrontDoorResult::Action::Route:
        buffered.erase(0, r.consumed);
        routed = true;
        return;
    }
  }
  void feedBytewise(std::string_view bytes) {
    for (char c : bytes) {
      if (routed || closed) {
        buffered.push_back(c);
      } else {
        feed(std::string_view(&c, 1));
      }
    }
  }
};

ConnectProxyOptionsPtr noAuth() { return std::make_shared<ConnectProxyOptions>(); }
ConnectProxyOptionsPtr withUser() {
  auto o = std::make_shared<ConnectProxyOptions>();
  o->users.push_back({"user", "pass"});
  return o;
}

int statusOf(const std::string& response) {
  return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}

TEST(ConnectProxy, ConnectBytewiseWithEarlyData) {
  Session s(noAuth());
  s.feedBytewise("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01");
  ASSERT_TRUE(s.routed);
  EXPECT_EQ(s.meta.host, "example.com");
  EXPECT_EQ(s.meta.port, 443);
  EXPECT_FALSE(s.meta.originalDst.valid());
  EXPECT_EQ(s.buffered, "\x16\x03\x01");  // forwarded upstream untouched
  EXPECT_EQ(s.fd.onUpstreamResult(s.meta, Errc::Ok), "HTTP/1.1 200 Connection Established\r\n\r\n");
}

// A CONNECT's W3C trace context goes with the stream (access log, mesh hops); repeated list fields
// are one list; a malformed traceparent is left out with the tracestate that depends on it;
// nothing else of the request is carried.
TEST(ConnectProxy, TraceContextTravelsWithTheStream) {
  Session s(noAuth());
  s.feed(
      "CONNECT alice.mesh:8080 HTTP/1.1\r\nHost: alice.mesh:8080\r\n"
      "TraceParent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "tracestate: congo=t61rcWkgMzE\r\nbaggage: userId=alice\r\nBaggage: serverNode=DF%2028;p=1\r\n"
      "X-Other: not carried\r\n\r\n");
  ASSERT_TRUE(s.routed);
  ASSERT_TRUE(s.meta.headers);
  std::vector<std::pair<std::string, std::string>> want{
      {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"tracestate", "congo=t61rcWkgMzE"},
      {"baggage", "userId=alice,serverNode=DF%2028;p=1"}};
  EXPECT_EQ(*s.meta.headers, want);

  Session bad(noAuth());
  bad.feed(
      "CONNECT alice.mesh:8080 HTTP/1.1\r\nHost: alice.mesh:8080\r\n"
      "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\r\n"
      "tracestate: congo=t61rcWkgMzE\r\nbaggage: k=v\r\n\r\n");
  ASSERT_TRUE(bad.routed);
  ASSERT_TRUE(bad.meta.headers);
  std::vector<std::pair<std::string, std::string>> onlyBaggage{{"baggage", "k=v"}};
  EXPECT_EQ(*bad.meta.headers, onlyBaggage);

  Session none(noAuth());
  none.feed("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_TRUE(none.routed);
  EXPECT_FALSE(none.meta.headers) << "no allocation for a request without trace context";
}

TEST(ConnectProxy, ConnectIpLiterals) {
  Session s(noAuth());
  s.feed("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
  ASSERT_TRUE(s.routed);
  EXPECT_EQ(s.meta.host, "::1");
  EXPECT_EQ(s.meta.originalDst.str(), "[::1]:8443");
  Session t(noAuth());
  t.feed("CONNECT 127.0.0.1:80 HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(t.routed);
  EXPECT_EQ(t.meta.originalDst.str(), "127.0.0.1:80");
}

TEST(ConnectProxy, BadTargets) {
  for (const char* req : {"CONNECT example.com HTTP/1.1\r\nHost: x\r\n\r\n",
                          "CONNECT example.com:0 HTTP/1.1\r\nHost: x\r\n\r\n",
                          "CONNECT [example.com]:443 HTTP/1.1\r\nHost: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                          "GET https://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n",
                          "GET http://u@example.com/ HTTP/1.1\r\nHost: x\r\n\r\n",
                          "GET http://bad%20host/ HTTP/1.1\r\nHost: x\r\n\r\n", "GARBAGE\r\n\r\n"}) {
    Session s(noAuth());
    s.feed(req);
    ASSERT_TRUE(s.closed) << req;
    EXPECT_EQ(statusOf(s.toClient), 400) << req << s.toClient;
    EXPECT_NE(s.toClient.find("Connection: close"), std::string::npos);
    EXPECT_EQ(s.toClient.find("missing Host"), std::string::npos) << req;
  }
}

TEST(ConnectProxy, FailureStatuses) {
  const std::pair<Errc, int> cases[] = {
      {Errc::RouteRejected, 403}, {Errc::NoRoute, 403},         {Errc::ConnectRefused, 502},
      {Errc::HostUnreachable, 502}, {Errc::DnsFailure, 502},     {Errc::NetworkUnreachable, 502},
      {Errc::ConnectTimeout, 504}, {Errc::ResourceExhausted, 502},
  };
  for (const auto& [e, status] : cases) {
    Session s(noAuth());
    s.feed("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    ASSERT_TRUE(s.routed);
    std::string r = s.fd.onUpstreamResult(s.meta, e);
    EXPECT_EQ(statusOf(r), status) << errcReason(e);
    EXPECT_NE(r.find("Connection: close"), std::string::npos);
  }
}

TEST(ConnectProxy, BasicAuth) {
  // "user:pass" = dXNlcjpwYXNz, "user:wrong" = dXNlcjp3cm9uZw==
  Session ok(withUser());
  ok.feed("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
  EXPECT_TRUE(ok.routed);
  Session lower(withUser());
  lower.feed("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nproxy-authorization: basic dXNlcjpwYXNz\r\n\r\n");
  EXPECT_TRUE(lower.routed);
  for (const char* hdr : {"", "Proxy-Authorization: Basic dXNlcjp3cm9uZw==\r\n",
                          "Proxy-Authorization: Bearer dXNlcjpwYXNz\r\n", "Proxy-Authorization: Basic !!!!\r\n",
                          "Proxy-Authorization: Basic dXNlcnBhc3M=\r\n"}) {
    Session s(withUser());
    s.feed(std::string("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n") + hdr + "\r\n");
    ASSERT_TRUE(s.closed) << hdr;
    EXPECT_EQ(s.reason, Errc::AuthFailed);
    EXPECT_EQ(statusOf(s.toClient), 407);
    EXPECT_NE(s.toClient.find("Proxy-Authenticate: Basic realm=\"ugate\"\r\n"), std::string::npos) << s.toClient;
  }
}

TEST(ConnectProxy, ParserErrorsUseItsStatus) {
  Session s(noAuth());
  s.feed("CONNECT h:1 HTTP/2.0\r\n\r\n");
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(statusOf(s.toClient), 505);
  Session big(noAuth());
  big.feed("CONNECT h:1 HTTP/1.1\r\nX: " + std::string(ConnectProxyFrontDoor::kMaxHeadBytes, 'a'));
  ASSERT_TRUE(big.closed);
  EXPECT_EQ(statusOf(big.toClient), 431);
  EXPECT_LE(ConnectProxyFrontDoor::kMaxHeadBytes, big.fd.maxSniffBytes());
}

TEST(ConnectProxy, AbsoluteFormForwardedRewritten) {
  ConnectProxyFrontDoor fd(noAuth());
  StreamMeta meta;
  std::string in = "POST http://example.com:8080/x?y HTTP/1.1\r\nHost: example.com:8080\r\n"
                   "Content-Length: 4\r\nProxy-Connection: keep-alive\r\n\r\nbody";
  auto r = fd.onClientBytes({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, meta);
  ASSERT_EQ(r.action, FrontDoorResult::Action::Route);
  EXPECT_EQ(r.consumed, in.size() - 4);  // the body follows untouched
  EXPECT_EQ(r.forward,
            "POST /x?y HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 4\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(meta.host, "example.com");
  EXPECT_EQ(meta.port, 8080);
  EXPECT_EQ(fd.onUpstreamResult(meta, Errc::Ok), "");  // the origin's response is the answer
  EXPECT_EQ(statusOf(fd.onUpstreamResult(meta, Errc::ConnectRefused)), 502);
}

Request parse(std::string_view head) {
  RequestParser p;
  size_t c = 0;
  EXPECT_EQ(p.feed({reinterpret_cast<const uint8_t*>(head.data()), head.size()}, c), ParseStatus::Done);
  return p.takeRequest();
}

TEST(ConnectProxy, RewriteAbsoluteForm) {
  auto f = rewriteAbsoluteForm(
      parse("POST http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: wrong\r\nUser-Agent: curl\r\n"
            "Proxy-Connection: Keep-Alive\r\nProxy-Authorization: Basic eA==\r\nConnection: keep-alive, X-Hop\r\n"
            "X-Hop: 1\r\nContent-Length: 3\r\n\r\n"),
      nullptr);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->host, "example.com");
  EXPECT_EQ(f->port, 8080);
  EXPECT_EQ(f->head,
            "POST /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl\r\nContent-Length: 3\r\n"
            "Connection: close\r\n\r\n");
  auto g = rewriteAbsoluteForm(parse("GET http://127.0.0.1 HTTP/1.0\r\n\r\n"), nullptr);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->port, 80);
  EXPECT_EQ(g->head, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  auto h = rewriteAbsoluteForm(parse("GET http://[::1]:81?q HTTP/1.1\r\nHost: [::1]:81\r\n\r\n"), nullptr);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->host, "::1");
  EXPECT_EQ(h->port, 81);
  EXPECT_EQ(h->head.substr(0, 20), "GET /?q HTTP/1.1\r\nHo");
  // Found by the fuzzer: an empty port is the default one, and Host loses the dangling colon.
  auto e = rewriteAbsoluteForm(parse("GET http://h:/ HTTP/1.1\r\nHost: x\r\n\r\n"), nullptr);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 80);
  EXPECT_EQ(e->head, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  std::string why;
  EXPECT_FALSE(rewriteAbsoluteForm(parse("GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n"), &why));
  EXPECT_EQ(why, "bad port in the request URI");
  EXPECT_FALSE(rewriteAbsoluteForm(parse("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), &why));
  // Found by the fuzzer: the head forwarded must fit the limits the front door enforces. Host
  // (replaced) and 98 more headers plus the added Connection is 100 and fits; one more is refused
  // with 431.
  auto withHeaders = [](int n) {
    std::string head = "GET http://h/ HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < n; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
    return head + "\r\n";
  };
  int status = 0;
  EXPECT_FALSE(rewriteAbsoluteForm(parse(withHeaders(99)), &why, &status));
  EXPECT_EQ(status, 431);
  EXPECT_EQ(why, "request head too large once Host and Connection are added");
  auto fits = rewriteAbsoluteForm(parse(withHeaders(98)), &why, &status);
  ASSERT_TRUE(fits);
  RequestParser again(ConnectProxyFrontDoor::kMaxHeadBytes, kMaxForwardHeaders);
  size_t c = 0;
  EXPECT_EQ(again.feed({reinterpret_cast<const uint8_t*>(fits->head.data()), fits->head.size()}, c),
            ParseStatus::Done);
}

TEST(ConnectProxy, Base64) {
  EXPECT_EQ(decodeBase64("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(decodeBase64("eA=="), "x");
  EXPECT_EQ(decodeBase64("eHk="), "xy");
  EXPECT_EQ(decodeBase64(""), "");
  EXPECT_FALSE(decodeBase64("eA="));
  EXPECT_FALSE(decodeBase64("e==A"));
  EXPECT_FALSE(decodeBase64("=AAA"));
  EXPECT_FALSE(decodeBase64("eA==eA=="));
}

class ConnectProxyConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { registerConnectProxyModule(listenerKinds()); }
  static std::string error(const std::string& listener) {
    auto c = parseConfig(R"({"listeners": [)" + listener + "]}", "test");
    return c ? std::string("(no error)") : c.error().detail;
  }
};

TEST_F(ConnectProxyConfigTest, OptionsAndValidation) {
  auto c = parseConfig(R"({"listeners": [{"name": "p", "kind": "http-connect", "address": "0.0.0.0:0",
                          "users": [{"username": "u", "password": "p"}]}]})", "test");
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ((*c)->listeners[0].streamKind, StreamKind::HttpConnect);
  EXPECT_EQ(error(R"({"name": "p", "kind": "http-connect", "address": "10.0.0.1:3128"})").rfind("listeners[0].address: 10.0.0.1:3128 is not a loopback address", 0), 0u);
  EXPECT_EQ(error(R"({"name": "p", "kind": "http-connect", "address": "10.0.0.1:3128", "allowOpenProxy": true})"), "(no error)");
  EXPECT_EQ(error(R"({"name": "p", "kind": "http-connect", "address": "127.0.0.1:1", "users": [{"username": "a:b", "password": "x"}]})"),
            "listeners[0].users[0].username: must not contain ':' (HTTP Basic authentication)");
}

}  // namespace
}  // namespace ugate::http
