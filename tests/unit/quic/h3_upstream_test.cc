// HTTP/3 origins over QUIC (routes with "upstreamQuic": true, h3_upstream.h): the route's config
// (implied http, ALPN h3 on its upstream TLS, what it cannot be combined with, insecureSkipVerify
// only when asked) and the request head sent to the origin.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <ugate/config.h>

#include "quic/h3_upstream.h"
#include "test_common/config_cases.h"

namespace ugate::quic {
namespace {

std::string route(const std::string& extra) {
  return R"({"node": {"dataDir": "/d"}, "listeners": [{"name": "q", "kind": "quic", "address": "127.0.0.1:15443", "tls": {"requireClientCert": false}}],
             "routes": [{"name": "o", "match": {"host": "o.test"}, "to": "127.0.0.1:8443", "upstreamQuic": true)" +
         extra + "}]}";
}

TEST(H3UpstreamConfig, ImpliesHttpAndAlpnH3) {
  auto c = test::parseOk(route(""));
  ASSERT_NE(c, nullptr);
  const RouteConfig& r = c->routes.at(0);
  EXPECT_TRUE(r.upstreamQuic);
  EXPECT_TRUE(r.http);
  ASSERT_NE(r.upstreamTls, nullptr);
  EXPECT_EQ(r.upstreamTls->alpn, (std::vector<std::string>{"h3"}));
  EXPECT_FALSE(r.upstreamTls->insecureSkipVerify);  // verified unless a config says otherwise
}

TEST(H3UpstreamConfig, KeepsTheRoutesOwnTlsSettings) {
  auto c = test::parseOk(route(R"(, "upstreamTls": {"sni": "origin.example", "insecureSkipVerify": true})"));
  ASSERT_NE(c, nullptr);
  const auto& t = c->routes.at(0).upstreamTls;
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->sni, "origin.example");
  EXPECT_TRUE(t->insecureSkipVerify);
  EXPECT_EQ(t->alpn, (std::vector<std::string>{"h3"}));
}

TEST(H3UpstreamConfig, RefusesWhatDoesNotApply) {
  EXPECT_EQ(test::parseErr(route(R"(, "http": false)")),
            "routes[0].http: an upstreamQuic route is an HTTP (HTTP/3) origin");
  EXPECT_EQ(test::parseErr(route(R"(, "via": "gw")")),
            "routes[0].via: an upstreamQuic origin is dialled directly over QUIC");
  EXPECT_EQ(test::parseErr(route(R"(, "proxyProtocol": "v2")")),
            "routes[0].proxyProtocol: not sent to an upstreamQuic (HTTP/3) origin");
  EXPECT_EQ(test::parseErr(route(
                R"(, "upstreamTls": {"insecureSkipVerify": true, "peerIds": ["PEEMKUJWJJI6UHFWPNKELHOACULEW3JY3YZSZTYULVF7WRT34ECA"]})")),
            "routes[0].upstreamTls.insecureSkipVerify: contradicts peerIds (pinning): use one or the other");
}

TEST(H3UpstreamHead, CopiesTheRequestAndAddsForwardedFields) {
  StreamState s(0);
  s.method = "POST";
  s.authority = "o.test:443";
  s.path = "/upload?x=1";
  s.headers = {{"content-type", "text/plain"}, {"x-forwarded-for", "10.0.0.9"}, {"x-forwarded-proto", "http"},
               {"content-length", "5"}};
  const auto h = H3Upstream::requestHead(s, "127.0.0.1");
  const std::vector<std::pair<std::string, std::string>> want = {
      {":method", "POST"},         {":scheme", "https"},           {":authority", "o.test:443"},
      {":path", "/upload?x=1"},    {"content-type", "text/plain"}, {"content-length", "5"},
      {"x-forwarded-for", "10.0.0.9, 127.0.0.1"}, {"x-forwarded-proto", "https"}};
  EXPECT_EQ(h, want);
}

TEST(H3UpstreamHead, OptionsWithoutPath) {
  StreamState s(4);
  s.method = "OPTIONS";
  s.authority = "o.test";
  const auto h = H3Upstream::requestHead(s, "::1");
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h[2].second, "o.test");
  EXPECT_EQ(h[3], (std::pair<std::string, std::string>{"x-forwarded-for", "::1"}));
}

}  // namespace
}  // namespace ugate::quic
