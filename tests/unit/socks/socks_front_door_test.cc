// SocksFrontDoor driven by a real ProxySession (on a fake worker, the client in memory): the sniff
// loop, the replies, the route and the dial's outcome are the session's own, not a stand-in's.
#include "socks/socks_front_door.h"
#include "test_common/fake_worker_context.h"
#include "test_common/test_util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ugate::socks {
namespace {

using test::fromHexString;
using test::toHex;

/**
 * Session: a ProxySession with a SocksFrontDoor. The router sends every request to a mesh target
 * whose open waits, so the test sees the handshake's replies alone; connect() or fail() then
 * answers the dial, and the front door's reply for that outcome reaches the client.
 */
class Session {
 public:
  explicit Session(SocksOptionsPtr o) {
    ctx_.enableTunnels();
    ctx_.routerFake.dial("upstream.mesh", 1);
    ctx_.routerFake.onRoute = [this](const StreamMeta& m) {
      meta.kind = m.kind;
      meta.host = m.host;
      meta.port = m.port;
      meta.originalDst = m.originalDst;
    };
    pipe_ = ctx_.startMemorySession(std::make_unique<SocksFrontDoor>(std::move(o)),
                                    {Duration(10'000), Duration(60'000), Duration(10'000)});
  }
  /** feed delivers bytes in one read. */
  void feed(std::string_view bytes) {
    ctx_.run([&] {
      pipe_->push(bytes);
      refresh();
    });
  }
  /** feedBytewise delivers one byte per read (the worst split). */
  void feedBytewise(std::string_view bytes) {
    ctx_.run([&] {
      for (char c : bytes) pipe_->push(std::string_view(&c, 1));
      refresh();
    });
  }
  /** connect answers the dial with an upstream; forwarded bytes then show in upstream(). */
  void connect() {
    auto [stream, pipe] = test::MemoryStream::make();
    upstream_ = pipe;
    ctx_.run([&] {
      EXPECT_TRUE(ctx_.tunnelFake.complete(std::move(stream)));
      refresh();
    });
  }
  /** fail answers the dial with an error. */
  void fail(Errc e) {
    ctx_.run([&] {
      EXPECT_TRUE(ctx_.tunnelFake.complete(makeError(e, "test")));
      refresh();
    });
  }
  /** upstream: the bytes the session sent upstream first (what the front door did not consume). */
  std::string upstream() {
    std::string out;
    ctx_.run([&] { out = upstream_ ? upstream_->written : ""; });
    return out;
  }

  StreamMeta meta;  // meta: what the router saw
  std::string toClient;
  bool routed{false};
  bool served{false};  // served: UDP ASSOCIATE: the session serves the connection (Phase::Service)
  bool closed{false};
  Errc reason{Errc::Ok};
  std::string detail;

 private:
  void refresh() {
    toClient = pipe_->written;
    routed = ctx_.routerFake.calls > 0;
    served = !ctx_.open.empty() && (*ctx_.open.begin())->phase() == ProxySession::Phase::Service;
    closed = !ctx_.closed.empty();
    if (closed) {
      reason = ctx_.closed[0].reason;
      detail = ctx_.closed[0].detail;
    }
  }

  test::FakeWorkerContext ctx_;
  test::MemoryPipePtr pipe_;
  test::MemoryPipePtr upstream_;
};

SocksOptionsPtr noAuth() { return std::make_shared<SocksOptions>(); }
SocksOptionsPtr withUser(std::string u, std::string p) {
  auto o = std::make_shared<SocksOptions>();
  o->users.push_back({std::move(u), std::move(p)});
  return o;
}

TEST(SocksFrontDoor, NoAuthConnectDomain) {
  Session s(noAuth());
  s.feed(fromHexString("050100"));
  EXPECT_EQ(toHex(s.toClient), "0500");
  s.feed(fromHexString("050100030b6578616d706c652e636f6d01bb"));
  ASSERT_TRUE(s.routed);
  EXPECT_EQ(s.meta.host, "example.com");
  EXPECT_EQ(s.meta.port, 443);
  EXPECT_FALSE(s.meta.originalDst.valid());
  s.connect();
  EXPECT_EQ(toHex(s.toClient), "0500" "05000001000000000000");
}

TEST(SocksFrontDoor, PipelinedGreetingRequestAndData) {
  // Optimistic clients send everything at once; the data after the request goes upstream.
  Session s(noAuth());
  s.feed(fromHexString("050100") + fromHexString("050100017f0000011f90") + "GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(s.routed);
  EXPECT_EQ(toHex(s.toClient), "0500");
  EXPECT_EQ(s.meta.host, "127.0.0.1");
  EXPECT_EQ(s.meta.port, 8080);
  EXPECT_EQ(s.meta.originalDst.str(), "127.0.0.1:8080");
  s.connect();
  EXPECT_EQ(s.upstream(), "GET / HTTP/1.0\r\n\r\n");
}

TEST(SocksFrontDoor, BytewiseUserPassIPv6) {
  Session s(withUser("user", "pass"));
  s.feedBytewise(fromHexString("05020002") + fromHexString("0104757365720470617373") +
                 fromHexString("05010004000000000000000000000000000000010050"));
  ASSERT_TRUE(s.routed) << s.detail;
  EXPECT_EQ(toHex(s.toClient), "0502" "0100");
  EXPECT_EQ(s.meta.host, "::1");
  EXPECT_EQ(s.meta.originalDst.str(), "[::1]:80");
}

TEST(SocksFrontDoor, WrongPasswordFailsAndCloses) {
  Session s(withUser("user", "pass"));
  s.feed(fromHexString("050102") + fromHexString("0104757365720470617378"));
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(s.reason, Errc::AuthFailed);
  EXPECT_EQ(toHex(s.toClient), "0502" "0101");
}

TEST(SocksFrontDoor, AuthRequiredButNotOffered) {
  Session s(withUser("user", "pass"));
  s.feed(fromHexString("050100"));
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(s.reason, Errc::AuthFailed);
  EXPECT_EQ(toHex(s.toClient), "05ff");
}

TEST(SocksFrontDoor, NoAuthListenerRefusesUserPassOnlyClient) {
  Session s(noAuth());
  s.feed(fromHexString("050102"));
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(toHex(s.toClient), "05ff");
}

TEST(SocksFrontDoor, UdpAssociateAsksTheSessionToServe) {
  Session s(noAuth());
  // Pipelined: greeting and UDP ASSOCIATE (DST 0.0.0.0:0) in one read, plus a stray byte.
  s.feed(fromHexString("050100") + fromHexString("05030001000000000000") + "x");
  ASSERT_TRUE(s.served);
  EXPECT_FALSE(s.closed);
  EXPECT_FALSE(s.routed);
  // The method choice, then serve()'s success reply: BND = the address the client reached, and the
  // relay's port. The stray byte is discarded: the client has nothing more to say on this
  // connection.
  ASSERT_EQ(s.toClient.size(), 2u + 10u);
  EXPECT_EQ(toHex(s.toClient.substr(0, 10)), "0500" "050000017f000001");
  EXPECT_NE(toHex(s.toClient.substr(10)), "0000");
  // Byte by byte, with authentication, and a client port named in the request.
  Session a(withUser("u", "p"));
  a.feedBytewise(fromHexString("050102") + fromHexString("0101750170") + fromHexString("050300017f0000011f90"));
  ASSERT_TRUE(a.served);
  EXPECT_EQ(toHex(a.toClient.substr(0, 4)), "0502" "0100");
}

TEST(SocksFrontDoor, BindAndUnknownCommandsAnswer07) {
  for (const char* cmd : {"02", "7f"}) {
    Session s(noAuth());
    s.feed(fromHexString("050100") + fromHexString(std::string("05") + cmd + "00017f0000010050"));
    ASSERT_TRUE(s.closed) << cmd;
    EXPECT_EQ(s.reason, Errc::NotSupported);
    EXPECT_EQ(toHex(s.toClient), "0500" "05070001000000000000") << cmd;
  }
}

TEST(SocksFrontDoor, BadAddressTypeAnswers08) {
  Session s(noAuth());
  s.feed(fromHexString("050100") + fromHexString("050100097f000001"));
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(toHex(s.toClient), "0500" "05080001000000000000");
}

TEST(SocksFrontDoor, NotSocks) {
  Session s(noAuth());
  s.feed("GET / HTTP/1.1\r\n");
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(s.reason, Errc::ProtocolError);
  EXPECT_TRUE(s.toClient.empty());  // reset: nothing sensible to answer
}

TEST(SocksFrontDoor, ReplyCodeForEveryFailure) {
  const std::pair<Errc, const char*> cases[] = {
      {Errc::RouteRejected, "02"},     {Errc::NoRoute, "02"},          {Errc::NetworkUnreachable, "03"},
      {Errc::HostUnreachable, "04"},   {Errc::DnsFailure, "04"},       {Errc::ConnectRefused, "05"},
      {Errc::ConnectTimeout, "06"},    {Errc::NotSupported, "07"},     {Errc::Io, "01"},
      {Errc::ResourceExhausted, "01"},
  };
  for (const auto& [e, rep] : cases) {
    Session s(noAuth());
    s.feed(fromHexString("050100") + fromHexString("050100030b6578616d706c652e636f6d01bb"));
    ASSERT_TRUE(s.routed);
    s.fail(e);
    ASSERT_TRUE(s.closed);
    EXPECT_EQ(s.reason, e);
    EXPECT_EQ(toHex(s.toClient), std::string("0500" "05") + rep + "0001000000000000")
        << errcReason(e);
  }
}

TEST(SocksFrontDoor, Socks4aConnectAndFailure) {
  Session s(noAuth());
  s.feedBytewise(fromHexString("0401005000000001006c6f63616c686f737400"));
  ASSERT_TRUE(s.routed);
  EXPECT_EQ(s.meta.kind, StreamKind::Socks4);
  EXPECT_EQ(s.meta.host, "localhost");
  EXPECT_EQ(s.meta.port, 80);
  s.connect();
  EXPECT_EQ(toHex(s.toClient), "005a000000000000");
  Session f(noAuth());
  f.feed(fromHexString("040100507f00000100"));
  ASSERT_TRUE(f.routed);
  EXPECT_EQ(f.meta.originalDst.str(), "127.0.0.1:80");
  f.fail(Errc::ConnectRefused);
  EXPECT_EQ(toHex(f.toClient), "005b000000000000");
}

TEST(SocksFrontDoor, Socks4RefusedWhenAuthConfigured) {
  Session s(withUser("user", "pass"));
  s.feed(fromHexString("040100507f00000100"));
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(s.reason, Errc::AuthFailed);
  EXPECT_EQ(toHex(s.toClient), "005b000000000000");
}

TEST(SocksFrontDoor, DomainThatIsAnIpLiteralAndCaseFolding) {
  Session s(noAuth());
  s.feed(fromHexString("050100") + fromHexString("0501000309") + "127.0.0.1" + fromHexString("0050"));
  ASSERT_TRUE(s.routed);
  EXPECT_EQ(s.meta.originalDst.str(), "127.0.0.1:80");
  Session t(noAuth());
  t.feed(fromHexString("050100") + fromHexString("050100030b") + "Example.COM" + fromHexString("0050"));
  ASSERT_TRUE(t.routed);
  EXPECT_EQ(t.meta.host, "example.com");
}

TEST(SocksFrontDoor, PortZeroRefused) {
  Session s(noAuth());
  s.feed(fromHexString("050100") + fromHexString("050100017f0000010000"));
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(toHex(s.toClient), "0500" "05010001000000000000");
}

TEST(SocksOptions, ConstantTimeCompare) {
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_TRUE(constantTimeEquals("secret", "secret"));
  EXPECT_FALSE(constantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(constantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(constantTimeEquals("secret", ""));
  SocksOptions o;
  o.users = {{"a", "1"}, {"b", "2"}};
  EXPECT_TRUE(o.checkCredentials("b", "2"));
  EXPECT_FALSE(o.checkCredentials("a", "2"));
  EXPECT_FALSE(o.checkCredentials("c", "1"));
}

}  // namespace
}  // namespace ugate::socks
