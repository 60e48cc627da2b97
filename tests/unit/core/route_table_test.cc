// RouteTable built from parsed configs: first match wins, per-field matching, listener defaults.
#include "core/route_table.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include <ugate/config.h>

namespace ugate {
namespace {

using Action = RouteDecision::Action;

// kListeners: "in" dials a fixed default, "orig" defaults to the original destination,
// "rej" rejects by default.
constexpr std::string_view kListeners = R"([
  {"name": "in", "kind": "tcp", "address": "127.0.0.1:7001", "to": "default.internal:9000"},
  {"name": "orig", "kind": "tcp", "address": "127.0.0.1:7002", "to": "original"},
  {"name": "rej", "kind": "tcp", "address": "127.0.0.1:7003", "to": "reject"}
])";

std::unique_ptr<RouteTable> table(std::string_view routes) {
  std::string json =
      R"({"listeners": )" + std::string(kListeners) + R"(, "routes": )" + std::string(routes) + "}";
  auto cfg = parseConfig(json, "test");
  EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().detail);
  if (!cfg) {
    return nullptr;
  }
  return std::make_unique<RouteTable>(*cfg);
}

StreamMeta meta(std::string listener, std::string host = "", uint16_t port = 0) {
  StreamMeta m;
  m.listener = std::move(listener);
  m.host = std::move(host);
  m.port = port;
  return m;
}

SocketAddress addr(std::string_view s) {
  auto a = SocketAddress::parse(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(SocketAddress{});
}

// expectDial checks a Dial decision's target and route name.
void expectDial(const RouteDecision& d, std::string_view target, std::string_view route) {
  EXPECT_EQ(d.action, Action::Dial);
  EXPECT_EQ(d.target.str(), target);
  EXPECT_EQ(d.route, route);
}

TEST(RouteTableTest, FirstMatchWins) {
  auto t = table(R"([
    {"name": "first", "match": {"host": "a.example.com"}, "to": "one.internal:1"},
    {"name": "second", "match": {"host": "*.example.com"}, "to": "two.internal:2"},
    {"name": "catchall", "to": "three.internal:3"}
  ])");
  ASSERT_NE(t, nullptr);
  expectDial(t->route(meta("in", "a.example.com", 80)), "one.internal:1", "first");
  expectDial(t->route(meta("in", "b.example.com", 80)), "two.internal:2", "second");
  expectDial(t->route(meta("in", "other.org", 80)), "three.internal:3", "catchall");
}

TEST(RouteTableTest, RouteWithoutMatchMatchesEverythingAndUnnamedRoutesAreNumbered) {
  auto t = table(R"([
    {"match": {"port": 1}, "to": "x.internal:1"},
    {"to": "y.internal:2"}
  ])");
  ASSERT_NE(t, nullptr);
  expectDial(t->route(meta("in", "h", 1)), "x.internal:1", "routes[0]");
  expectDial(t->route(meta("orig")), "y.internal:2", "routes[1]");
  expectDial(t->route(meta("unknown-listener", "h", 5)), "y.internal:2", "routes[1]");
}

TEST(RouteTableTest, ListenerMatch) {
  auto t = table(R"([
    {"name": "only-in", "match": {"listener": "in"}, "to": "a.internal:1"},
    {"name": "orig-or-rej", "match": {"listener": ["orig", "rej"], "port": 443}, "to": "b.internal:2"}
  ])");
  ASSERT_NE(t, nullptr);
  expectDial(t->route(meta("in", "x", 443)), "a.internal:1", "only-in");
  expectDial(t->route(meta("orig", "x", 443)), "b.internal:2", "orig-or-rej");
  expectDial(t->route(meta("rej", "x", 443)), "b.internal:2", "orig-or-rej");
  // Listener names compare exactly.
  EXPECT_EQ(t->route(meta("IN", "x", 443)).action, Action::NoRoute);
  // No route for rej on another port: its default rejects.
  auto d = t->route(meta("rej", "x", 80));
  EXPECT_EQ(d.action, Action::Reject);
  EXPECT_EQ(d.route, "");
}

TEST(RouteTableTest, HostExactMatchIsCaseInsensitive) {
  auto t = table(R"([{"name": "h", "match": {"host": "Api.Example.COM"}, "to": "a.internal:1"}])");
  ASSERT_NE(t, nullptr);
  expectDial(t->route(meta("in", "api.example.com", 80)), "a.internal:1", "h");
  expectDial(t->route(meta("in", "API.EXAMPLE.COM", 80)), "a.internal:1", "h");
  EXPECT_EQ(t->route(meta("in", "api.example.co", 80)).route, "");
  EXPECT_EQ(t->route(meta("in", "xapi.example.com", 80)).route, "");
  EXPECT_EQ(t->route(meta("in", "", 80)).route, "");
}

TEST(RouteTableTest, WildcardSuffixMatchesSubdomainsOnly) {
  auto t = table(R"([{"name": "w", "match": {"host": "*.Example.com"}, "to": "a.internal:1"}])");
  ASSERT_NE(t, nullptr);
  for (const char* h :
       {"a.example.com", "A.EXAMPLE.COM", "deep.sub.example.com", "x.Example.Com"}) {
    EXPECT_EQ(t->route(meta("in", h, 80)).route, "w") << h;
  }
  for (const char* h : {"example.com", "EXAMPLE.COM", "badexample.com", ".example.com",
                        "example.com.evil", "a.example.org", ""}) {
    auto d = t->route(meta("in", h, 80));
    EXPECT_EQ(d.route, "") << h;
    expectDial(d, "default.internal:9000", "");
  }
}

TEST(RouteTableTest, StarMatchesAnyNonEmptyName) {
  auto t = table(R"([{"name": "any", "match": {"host": "*"}, "to": "a.internal:1"}])");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->route(meta("in", "anything", 80)).route, "any");
  EXPECT_EQ(t->route(meta("in", "10.0.0.1", 80)).route, "any");
  EXPECT_EQ(t->route(meta("in", "", 80)).route, "");
}

TEST(RouteTableTest, NameMatchesDirect) {
  EXPECT_TRUE(RouteTable::nameMatches("*.a.b", "x.a.b"));
  EXPECT_TRUE(RouteTable::nameMatches("*.a.b", "X.A.B"));
  EXPECT_TRUE(RouteTable::nameMatches("*.a.b", "y.x.a.b"));
  EXPECT_FALSE(RouteTable::nameMatches("*.a.b", "a.b"));
  EXPECT_FALSE(RouteTable::nameMatches("*.a.b", ".a.b"));
  EXPECT_FALSE(RouteTable::nameMatches("*.a.b", "xa.b"));
  EXPECT_FALSE(RouteTable::nameMatches("*.a.b", "b"));
  EXPECT_TRUE(RouteTable::nameMatches("a.b", "A.b"));
  EXPECT_FALSE(RouteTable::nameMatches("a.b", "a.bc"));
  EXPECT_FALSE(RouteTable::nameMatches("a.b", "x.a.b"));
  EXPECT_TRUE(RouteTable::nameMatches("*", "x"));
  EXPECT_FALSE(RouteTable::nameMatches("*", ""));
}

TEST(RouteTableTest, PortsAndRanges) {
  auto t = table(R"([
    {"name": "single", "match": {"port": 443}, "to": "a.internal:1"},
    {"name": "range", "match": {"port": "8000-8100"}, "to": "b.internal:2"},
    {"name": "list", "match": {"port": [22, "30-31", "65535"]}, "to": "c.internal:3"}
  ])");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->route(meta("in", "h", 443)).route, "single");
  EXPECT_EQ(t->route(meta("in", "h", 442)).route, "");
  EXPECT_EQ(t->route(meta("in", "h", 444)).route, "");
  EXPECT_EQ(t->route(meta("in", "h", 8000)).route, "range");
  EXPECT_EQ(t->route(meta("in", "h", 8050)).route, "range");
  EXPECT_EQ(t->route(meta("in", "h", 8100)).route, "range");
  EXPECT_EQ(t->route(meta("in", "h", 7999)).route, "");
  EXPECT_EQ(t->route(meta("in", "h", 8101)).route, "");
  EXPECT_EQ(t->route(meta("in", "h", 22)).route, "list");
  EXPECT_EQ(t->route(meta("in", "h", 30)).route, "list");
  EXPECT_EQ(t->route(meta("in", "h", 31)).route, "list");
  EXPECT_EQ(t->route(meta("in", "h", 32)).route, "");
  EXPECT_EQ(t->route(meta("in", "h", 65535)).route, "list");
  EXPECT_EQ(t->route(meta("in", "h", 0)).route, "");
}

TEST(RouteTableTest, PortComesFromOriginalDstWhenKnown) {
  auto t = table(R"([{"name": "tls", "match": {"port": 443}, "to": "a.internal:1"}])");
  ASSERT_NE(t, nullptr);
  StreamMeta m = meta("in", "h", 80);
  m.originalDst = addr("10.0.0.1:443");
  EXPECT_EQ(t->route(m).route, "tls");
  m.originalDst = addr("10.0.0.1:80");
  m.port = 443;
  EXPECT_EQ(t->route(m).route, "");
}

TEST(RouteTableTest, CidrV4) {
  auto t = table(R"([
    {"name": "ten", "match": {"cidr": "10.0.0.0/8"}, "to": "a.internal:1"},
    {"name": "odd", "match": {"cidr": ["192.168.0.0/23", "172.16.5.4"]}, "to": "b.internal:2"}
  ])");
  ASSERT_NE(t, nullptr);
  auto viaOrig = [&](std::string_view dst) {
    StreamMeta m = meta("in");
    m.originalDst = addr(dst);
    return std::string(t->route(m).route);
  };
  EXPECT_EQ(viaOrig("10.0.0.0:1"), "ten");
  EXPECT_EQ(viaOrig("10.255.255.255:1"), "ten");
  EXPECT_EQ(viaOrig("11.0.0.0:1"), "");
  EXPECT_EQ(viaOrig("9.255.255.255:1"), "");
  EXPECT_EQ(viaOrig("192.168.0.1:1"), "odd");
  EXPECT_EQ(viaOrig("192.168.1.254:1"), "odd");  // /23 spans two /24s
  EXPECT_EQ(viaOrig("192.168.2.1:1"), "");
  EXPECT_EQ(viaOrig("172.16.5.4:1"), "odd");  // bare IP = /32
  EXPECT_EQ(viaOrig("172.16.5.5:1"), "");
  // A v4 prefix never matches a v6 address, not even the v4-mapped form.
  EXPECT_EQ(viaOrig("[::ffff:10.0.0.1]:1"), "");
  EXPECT_EQ(viaOrig("[2001:db8::1]:1"), "");
}

TEST(RouteTableTest, SourceCidrMatchesTheClientAddress) {
  auto t = table(R"([
    {"name": "two", "match": {"sourceCidr": "127.0.0.2"}, "to": "a.internal:1"},
    {"name": "nets", "match": {"sourceCidr": ["192.168.0.0/16", "fd00::/8"], "port": 80}, "to": "b.internal:2"}
  ])");
  ASSERT_NE(t, nullptr);
  auto from = [&](std::string_view src, uint16_t port = 80) {
    StreamMeta m = meta("in", "10.9.9.9", port);
    m.source = addr(src);
    return std::string(t->route(m).route);
  };
  EXPECT_EQ(from("127.0.0.2:40000"), "two");
  EXPECT_EQ(from("[::ffff:127.0.0.2]:40000"), "two");  // an IPv4 client of a dual-stack listener
  EXPECT_EQ(from("127.0.0.1:40000"), "");
  EXPECT_EQ(from("192.168.7.1:1"), "nets");
  EXPECT_EQ(from("192.168.7.1:1", 81), "") << "every field must match";
  EXPECT_EQ(from("[fd00::5]:1"), "nets");
  EXPECT_EQ(from("[fe80::5]:1"), "");
  StreamMeta unknown = meta("in", "10.9.9.9", 80);  // no source known: no source prefix matches
  EXPECT_EQ(std::string(t->route(unknown).route), "");
}

TEST(RouteTableTest, CidrV6) {
  auto t = table(R"([
    {"name": "doc", "match": {"cidr": "2001:db8::/32"}, "to": "a.internal:1"},
    {"name": "odd", "match": {"cidr": "fd00:1234::/33"}, "to": "b.internal:2"},
    {"name": "all6", "match": {"cidr": "::/0"}, "to": "c.internal:3"}
  ])");
  ASSERT_NE(t, nullptr);
  auto viaOrig = [&](std::string_view dst) {
    StreamMeta m = meta("in");
    m.originalDst = addr(dst);
    return std::string(t->route(m).route);
  };
  EXPECT_EQ(viaOrig("[2001:db8::1]:1"), "doc");
  EXPECT_EQ(viaOrig("[2001:db8:ffff:ffff::]:1"), "doc");
  EXPECT_EQ(viaOrig("[fd00:1234:7fff::1]:1"), "odd");
  EXPECT_EQ(viaOrig("[fd00:1234:8000::1]:1"), "all6");
  EXPECT_EQ(viaOrig("[2001:db9::1]:1"), "all6");
  EXPECT_EQ(viaOrig("10.0.0.1:1"), "") << "::/0 must not match IPv4";
}

TEST(RouteTableTest, CidrUsesLiteralHostWhenNoOriginalDst) {
  auto t = table(R"([
    {"name": "v4", "match": {"cidr": "10.0.0.0/8"}, "to": "a.internal:1"},
    {"name": "v6", "match": {"cidr": "2001:db8::/32"}, "to": "b.internal:2"}
  ])");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->route(meta("in", "10.1.2.3", 80)).route, "v4");
  EXPECT_EQ(t->route(meta("in", "2001:db8::5", 80)).route, "v6");
  EXPECT_EQ(t->route(meta("in", "[2001:db8::5]", 80)).route, "v6");
  // A host name has no address yet: a CIDR route cannot match it.
  EXPECT_EQ(t->route(meta("in", "ten.example", 80)).route, "");
  EXPECT_EQ(t->route(meta("in", "", 80)).route, "");
  // originalDst takes precedence over the host.
  StreamMeta m = meta("in", "10.1.2.3", 80);
  m.originalDst = addr("192.0.2.1:80");
  EXPECT_EQ(t->route(m).route, "");
}

TEST(RouteTableTest, SniExactAndWildcard) {
  auto t = table(R"([
    {"name": "exact", "match": {"sni": "Login.Example.com"}, "to": "a.internal:1"},
    {"name": "wild", "match": {"sni": ["*.example.com", "other.org"]}, "to": "b.internal:2"}
  ])");
  ASSERT_NE(t, nullptr);
  auto bySni = [&](std::string sni, std::string host = "") {
    StreamMeta m = meta("in", std::move(host), 443);
    m.sni = std::move(sni);
    return std::string(t->route(m).route);
  };
  EXPECT_EQ(bySni("login.example.com"), "exact");
  EXPECT_EQ(bySni("LOGIN.EXAMPLE.COM"), "exact");
  EXPECT_EQ(bySni("www.example.com"), "wild");
  EXPECT_EQ(bySni("OTHER.org"), "wild");
  EXPECT_EQ(bySni("example.com"), "");
  EXPECT_EQ(bySni(""), "");
  // sni matches the SNI field only, not the host.
  EXPECT_EQ(bySni("", "www.example.com"), "");
}

TEST(RouteTableTest, IdentityMatchesNodeIdCaseInsensitiveOrSpiffeExactly) {
  auto t = table(R"([
    {"name": "node", "match": {"identity": "Node-A"}, "to": "a.internal:1"},
    {"name": "spiffe", "match": {"identity": ["spiffe://td/ns/x/sa/Y"]}, "to": "b.internal:2"}
  ])");
  ASSERT_NE(t, nullptr);
  auto byPeer = [&](std::string nodeId, std::string spiffe) {
    StreamMeta m = meta("in", "h", 1);
    m.peer = std::make_unique<PeerIdentity>();
    m.peer->nodeId = std::move(nodeId);
    m.peer->spiffe = std::move(spiffe);
    return std::string(t->route(m).route);
  };
  EXPECT_EQ(byPeer("node-a", ""), "node");
  EXPECT_EQ(byPeer("NODE-A", ""), "node");
  EXPECT_EQ(byPeer("node-b", "spiffe://td/ns/x/sa/Y"), "spiffe");
  EXPECT_EQ(byPeer("", "spiffe://td/ns/x/sa/y"), "") << "SPIFFE IDs compare exactly";
  EXPECT_EQ(byPeer("node-b", ""), "");
  // Anonymous peers never match an identity route.
  EXPECT_EQ(t->route(meta("in", "h", 1)).route, "");
}

TEST(RouteTableTest, DecisionNamesTheIdentityEntryThePeerMatched) {
  auto t = table(R"([
    {"name": "either", "match": {"identity": ["spiffe://td/ns/x/sa/a", "NODE-A"]}, "to": "a.internal:1"}
  ])");
  ASSERT_NE(t, nullptr);
  StreamMeta m = meta("in", "h", 1);
  m.peer = std::make_unique<PeerIdentity>();
  m.peer->nodeId = "node-a";
  m.peer->spiffe = "spiffe://td/ns/x/sa/a";
  EXPECT_EQ(t->route(m).identity, "spiffe://td/ns/x/sa/a") << "the first entry that matches";
  m.peer->spiffe = "spiffe://td/ns/x/sa/other";
  EXPECT_EQ(t->route(m).identity, "NODE-A");
  m.peer->nodeId = "node-b";
  auto d = t->route(m);
  EXPECT_EQ(d.route, "") << "the listener's default";
  EXPECT_EQ(d.identity, "");
}

TEST(RouteTableTest, LogNameSaysWhichListenerDecidedWhenNoRouteMatched) {
  auto t = table(R"([{"name": "r", "match": {"host": "match.me"}, "to": "a.internal:1"}])");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(routeLogName(t->route(meta("in", "match.me", 80)), "in"), "r");
  EXPECT_EQ(routeLogName(t->route(meta("in", "nope", 80)), "in"), "listener:in");
  EXPECT_EQ(routeLogName(t->route(meta("rej", "nope", 80)), "rej"), "listener:rej");
  // Nothing decided: a listener defaulting to `original` without a known destination.
  EXPECT_EQ(routeLogName(t->route(meta("orig", "nope", 80)), "orig"), "");
}

TEST(RouteTableTest, AllGivenFieldsMustMatch) {
  auto t = table(R"([
    {"name": "both", "match": {"listener": "in", "host": "*.svc", "port": [80, 443],
                               "cidr": "10.0.0.0/8"}, "to": "a.internal:1"}
  ])");
  ASSERT_NE(t, nullptr);
  StreamMeta m = meta("in", "api.svc", 80);
  m.originalDst = addr("10.0.0.7:443");
  EXPECT_EQ(t->route(m).route, "both");
  StreamMeta wrongListener = meta("orig", "api.svc", 80);
  wrongListener.originalDst = m.originalDst;
  EXPECT_EQ(t->route(wrongListener).action, Action::DialOriginal);
  EXPECT_EQ(t->route(wrongListener).route, "");
  StreamMeta wrongHost = meta("in", "api.svc.other", 80);
  wrongHost.originalDst = m.originalDst;
  EXPECT_EQ(t->route(wrongHost).route, "");
  StreamMeta wrongPort = meta("in", "api.svc", 80);
  wrongPort.originalDst = addr("10.0.0.7:8080");
  EXPECT_EQ(t->route(wrongPort).route, "");
  StreamMeta wrongCidr = meta("in", "api.svc", 80);
  wrongCidr.originalDst = addr("11.0.0.7:443");
  EXPECT_EQ(t->route(wrongCidr).route, "");
}

TEST(RouteTableTest, ListenerDefaultWhenNothingMatches) {
  auto t = table(R"([{"name": "r", "match": {"host": "match.me"}, "to": "a.internal:1"}])");
  ASSERT_NE(t, nullptr);
  expectDial(t->route(meta("in", "nope", 80)), "default.internal:9000", "");
}

TEST(RouteTableTest, OriginalTarget) {
  auto t = table(R"([{"name": "orig-route", "match": {"port": 25}, "to": "original"}])");
  ASSERT_NE(t, nullptr);
  StreamMeta m = meta("in", "", 25);
  m.originalDst = addr("192.0.2.9:25");
  auto d = t->route(m);
  EXPECT_EQ(d.action, Action::DialOriginal);
  EXPECT_EQ(d.route, "orig-route");

  // Without a known original destination `original` cannot be dialled.
  d = t->route(meta("in", "", 25));
  EXPECT_EQ(d.action, Action::NoRoute);
  EXPECT_EQ(d.route, "orig-route");

  // The listener default `original` behaves the same.
  StreamMeta o = meta("orig");
  o.originalDst = addr("[2001:db8::9]:443");
  d = t->route(o);
  EXPECT_EQ(d.action, Action::DialOriginal);
  EXPECT_EQ(d.route, "");
  d = t->route(meta("orig", "somewhere", 443));
  EXPECT_EQ(d.action, Action::NoRoute);
  EXPECT_EQ(d.route, "");
}

TEST(RouteTableTest, RejectRoute) {
  auto t = table(R"([
    {"name": "deny", "match": {"host": "*.blocked"}, "to": "reject"},
    {"name": "allow", "to": "ok.internal:1"}
  ])");
  ASSERT_NE(t, nullptr);
  auto d = t->route(meta("in", "x.blocked", 80));
  EXPECT_EQ(d.action, Action::Reject);
  EXPECT_EQ(d.route, "deny");
  expectDial(t->route(meta("in", "x.allowed", 80)), "ok.internal:1", "allow");
}

TEST(RouteTableTest, NoRouteForUnknownListenerWithoutMatch) {
  auto t = table(R"([{"name": "r", "match": {"listener": "in"}, "to": "a.internal:1"}])");
  ASSERT_NE(t, nullptr);
  auto d = t->route(meta("ghost", "x", 1));
  EXPECT_EQ(d.action, Action::NoRoute);
  EXPECT_EQ(d.route, "");
  EXPECT_TRUE(d.target.host.empty());
}

TEST(RouteTableTest, EmptyConfigRoutesNothing) {
  auto cfg = parseConfig("{}", "test");
  ASSERT_TRUE(cfg.has_value());
  RouteTable t(*cfg);
  EXPECT_EQ(t.route(meta("in", "x", 1)).action, Action::NoRoute);
}

TEST(RouteTableTest, TargetsAreNormalisedToLowerCase) {
  auto t = table(R"([{"name": "r", "to": "Upper.Example.COM:8443"}])");
  ASSERT_NE(t, nullptr);
  expectDial(t->route(meta("in")), "upper.example.com:8443", "r");
}

TEST(RouteTableTest, RouteNameOutlivesCallersConfigReference) {
  std::string_view name;
  std::unique_ptr<RouteTable> t;
  {
    auto cfg = parseConfig(R"({"routes": [{"name": "a-fairly-long-route-name-that-is-not-sso",
                                            "to": "x.internal:1"}]})",
                           "test");
    ASSERT_TRUE(cfg.has_value());
    t = std::make_unique<RouteTable>(*cfg);
  }
  name = t->route(meta("in")).route;
  EXPECT_EQ(name, "a-fairly-long-route-name-that-is-not-sso");
}

// ---- SNI front-door additions: alpn match, "sni:PORT" targets ---------

TEST(RouteTableTest, AlpnMatchesAnyOfferedProtocolExactly) {
  auto t = table(R"([
    {"name": "h2", "match": {"alpn": "h2"}, "to": "h2.internal:1"},
    {"name": "legacy", "match": {"alpn": ["http/1.1", "http/1.0"]}, "to": "h1.internal:2"},
    {"name": "rest", "to": "rest.internal:3"}
  ])");
  ASSERT_NE(t, nullptr);
  auto m = meta("in");
  m.alpn = "http/1.1,h2";
  expectDial(t->route(m), "h2.internal:1", "h2");
  m.alpn = "http/1.1";
  expectDial(t->route(m), "h1.internal:2", "legacy");
  for (const char* a : {"", "H2", "h2c", "xh2", "h3"}) {
    m.alpn = a;
    EXPECT_EQ(t->route(m).route, "rest") << a;
  }
  EXPECT_TRUE(RouteTable::alpnMatches("b", "a,b,c"));
  EXPECT_FALSE(RouteTable::alpnMatches("b", "a,bb,c"));
  EXPECT_FALSE(RouteTable::alpnMatches("", ""));
}

TEST(RouteTableTest, SniHostTargetDialsTheSniNameOnThePort) {
  auto t = table(R"([
    {"name": "egress", "match": {"sni": "*.example.com"}, "to": "sni:443"},
    {"name": "plain", "match": {"listener": "rej"}, "to": "sni:8443"}
  ])");
  ASSERT_NE(t, nullptr);
  auto m = meta("in");
  m.sni = "www.example.com";
  expectDial(t->route(m), "www.example.com:443", "egress");
  auto n = meta("rej");  // no SNI: nothing to dial
  auto d = t->route(n);
  EXPECT_EQ(d.action, Action::NoRoute);
  EXPECT_EQ(d.route, "plain");
}

}  // namespace
}  // namespace ugate
