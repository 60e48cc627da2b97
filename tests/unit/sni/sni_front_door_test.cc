// SniFrontDoor and the `sni` listener kind: metadata, routing with nothing consumed, fallback,
// closes by reason, and the kind's config options (errors with their JSON path).
#include "sni/sni_front_door.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ugate/config.h>
#include "core/route_table.h"
#include "sni/sni_module.h"

namespace ugate::sni {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes readData(const std::string& name) {
  std::ifstream f(std::string(UGATE_SOURCE_DIR) + "/tests/unit/sni/data/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

std::shared_ptr<const SniOptions> opts(size_t max = 16384, std::optional<HostPort> fallback = {}) {
  auto o = std::make_shared<SniOptions>();
  o->maxHelloBytes = max;
  o->fallback = std::move(fallback);
  return o;
}

StreamMeta acceptedOn(uint16_t port) {
  StreamMeta m;
  m.listener = "tls";
  m.kind = StreamKind::Sni;
  m.local = *SocketAddress::parse("127.0.0.1:" + std::to_string(port));
  return m;
}

TEST(SniFrontDoorTest, RoutesWithNothingConsumedAndFillsMeta) {
  Bytes hello = readData("curl.bin");
  ASSERT_FALSE(hello.empty());
  SniFrontDoor fd(opts(), 15443);
  StreamMeta m = acceptedOn(8443);
  // The session hands over the growing prefix: 3 bytes, then 200, then all.
  for (size_t n : {size_t{3}, size_t{200}}) {
    auto r = fd.onClientBytes(std::span<const uint8_t>(hello).first(n), m);
    EXPECT_EQ(r.action, FrontDoorResult::Action::NeedMore) << n;
  }
  auto r = fd.onClientBytes(hello, m);
  ASSERT_EQ(r.action, FrontDoorResult::Action::Route);
  EXPECT_EQ(r.consumed, 0u);  // the hello goes upstream untouched
  EXPECT_EQ(m.sni, "b.test");
  EXPECT_EQ(m.alpn, "h2,http/1.1");
  EXPECT_EQ(m.host, "b.test");
  EXPECT_EQ(m.port, 8443);  // the listener's own port (from the accepted socket)
  EXPECT_EQ(fd.maxSniffBytes(), 16384u);
  EXPECT_TRUE(fd.onUpstreamResult(m, Errc::Ok).empty());
}

TEST(SniFrontDoorTest, NoSniKeepsHostAndUsesListenerPortWhenLocalUnknown) {
  SniFrontDoor fd(opts(), 15443);
  StreamMeta m;
  m.host = "default.internal";
  auto r = fd.onClientBytes(readData("openssl_nosni.bin"), m);
  ASSERT_EQ(r.action, FrontDoorResult::Action::Route);
  EXPECT_EQ(m.sni, "");
  EXPECT_EQ(m.host, "default.internal");
  EXPECT_EQ(m.port, 15443);
}

TEST(SniFrontDoorTest, JoinAlpnSkipsNamesThatCannotBeMatched) {
  EXPECT_EQ(SniFrontDoor::joinAlpn({"h2", "a,b", std::string("\x0a\x0a"), "http/1.1"}),
            "h2,http/1.1");
  EXPECT_EQ(SniFrontDoor::joinAlpn({}), "");
}

TEST(SniFrontDoorTest, NotTlsClosesWithProtocolErrorOrGoesToTheFallback) {
  const std::string get = "GET / HTTP/1.0\r\n\r\n";
  std::span<const uint8_t> b(reinterpret_cast<const uint8_t*>(get.data()), get.size());
  {
    SniFrontDoor fd(opts(), 1);
    StreamMeta m;
    auto r = fd.onClientBytes(b, m);
    EXPECT_EQ(r.action, FrontDoorResult::Action::Close);
    EXPECT_EQ(r.reason, Errc::ProtocolError);
    EXPECT_EQ(r.detail, "not TLS (not_handshake_record)");
  }
  {
    SniFrontDoor fd(opts(16384, HostPort{"127.0.0.1", 8080}), 1);
    StreamMeta m;
    auto r = fd.onClientBytes(b, m);
    ASSERT_EQ(r.action, FrontDoorResult::Action::Route);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_EQ(m.host, "127.0.0.1");
    EXPECT_EQ(m.port, 8080);
    EXPECT_EQ(m.route, "fallback");
    ASSERT_TRUE(r.dial.has_value());  // the session dials it without consulting the routes
    EXPECT_EQ(r.dial->str(), "127.0.0.1:8080");
  }
}

TEST(SniFrontDoorTest, MalformedAndTooLarge) {
  {
    SniFrontDoor fd(opts(16384, HostPort{"127.0.0.1", 8080}), 1);  // fallback is for non-TLS only
    StreamMeta m;
    const uint8_t empty[] = {0x16, 0x03, 0x01, 0x00, 0x00};
    auto r = fd.onClientBytes(empty, m);
    EXPECT_EQ(r.action, FrontDoorResult::Action::Close);
    EXPECT_EQ(r.reason, Errc::ProtocolError);
    EXPECT_EQ(r.detail, "malformed ClientHello (empty_record)");
  }
  {
    Bytes big = readData("openssl_large.bin");
    SniFrontDoor fd(opts(1024), 1);
    EXPECT_EQ(fd.maxSniffBytes(), 1024u);
    StreamMeta m;
    auto r = fd.onClientBytes(std::span<const uint8_t>(big).first(5), m);
    EXPECT_EQ(r.action, FrontDoorResult::Action::Close);
    EXPECT_EQ(r.reason, Errc::TooLarge);
  }
}

// ---- the listener kind in the config ------------------------------------------------------------

class SniConfigTest : public testing::Test {
 protected:
  void SetUp() override { registerSniModule(listenerKinds()); }
  static std::string err(const std::string& json) {
    auto c = parseConfig(json, "test");
    return c ? "" : c.error().detail;
  }
};

TEST_F(SniConfigTest, OptionsParseAndFrontDoorIsBuilt) {
  auto c = parseConfig(R"({"listeners": [
      {"name": "tls", "kind": "sni", "address": "127.0.0.1:0", "maxHelloBytes": 4096,
       "fallback": "Plain.Internal:8080", "sniffTimeout": "500ms"},
      {"name": "egress", "kind": "sni", "address": "127.0.0.1:0", "to": "sni:443"}],
    "routes": [{"match": {"listener": "tls", "sni": "*.a.test", "alpn": ["h2", "http/1.1"]}, "to": "sni:8443"}]})",
                       "test");
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  const ListenerConfig& l = (*c)->listeners[0];
  EXPECT_EQ(l.streamKind, StreamKind::Sni);
  auto o = std::dynamic_pointer_cast<const SniOptions>(l.options);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->maxHelloBytes, 4096u);
  ASSERT_TRUE(o->fallback.has_value());
  EXPECT_EQ(o->fallback->str(), "plain.internal:8080");
  auto fd = l.spec->newFrontDoor(l);
  ASSERT_NE(fd, nullptr);
  EXPECT_EQ(fd->maxSniffBytes(), 4096u);
  EXPECT_EQ((*c)->listeners[1].to.type, Target::Type::SniHost);
  EXPECT_EQ((*c)->routes[0].match.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  // Defaults.
  auto d = parseConfig(R"({"listeners": [{"name": "t", "kind": "sni", "address": "127.0.0.1:0"}]})",
                       "test");
  ASSERT_TRUE(d.has_value()) << d.error().detail;
  auto od = std::dynamic_pointer_cast<const SniOptions>((*d)->listeners[0].options);
  ASSERT_NE(od, nullptr);
  EXPECT_EQ(od->maxHelloBytes, 16384u);
  EXPECT_FALSE(od->fallback.has_value());
}

TEST_F(SniConfigTest, ErrorsNameTheJsonPath) {
  auto one = [](const std::string& extra) {
    return R"({"listeners": [{"name": "ok", "kind": "tcp", "address": "127.0.0.1:1", "to": "a:1"},
              {"name": "t", "kind": "sni", "address": "127.0.0.1:0")" +
           extra + "}]}";
  };
  EXPECT_EQ(err(one(R"(, "maxHelloBytes": 100)")),
            "listeners[1].maxHelloBytes: 100 out of range [256, 65536]");
  EXPECT_EQ(err(one(R"(, "maxHelloBytes": "16k")")),
            "listeners[1].maxHelloBytes: expected an integer, got string");
  EXPECT_EQ(err(one(R"(, "fallback": 8080)")),
            "listeners[1].fallback: expected a host:port string, got number");
  EXPECT_EQ(
      err(one(R"(, "fallback": "nowhere")")),
      "listeners[1].fallback: 'nowhere' is not a target (host:port, sni:PORT, cluster:NAME, original or reject)");
  EXPECT_EQ(err(one(R"(, "fallback": "reject")")),
            "listeners[1].fallback: 'reject' must be host:port (leave fallback out to close "
            "non-TLS connections)");
  EXPECT_EQ(err(one(R"(, "to": "original")")),
            "listeners[1].to: 'original' has no meaning for kind 'sni' (no original destination)");
  EXPECT_EQ(err(one(R"(, "to": "sni:0")")),
            "listeners[1].to: 'sni:0': the port of sni:PORT must be 1..65535");
  EXPECT_EQ(err(one(R"(, "bogus": 1)")).rfind("listeners[1].bogus: unknown key for kind 'sni'", 0),
            0u);
}

}  // namespace
}  // namespace ugate::sni
