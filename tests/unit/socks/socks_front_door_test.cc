// SocksFrontDoor driven the way ProxySession drives a front door: the unconsumed bytes again after
// NeedMore, pipelined bytes looked at again after a Reply.
#include "socks/socks_front_door.h"
#include "test_common/test_util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ugate::socks {
namespace {

using test::fromHexString;
using test::toHex;



// Session: a stand-in for ProxySession's sniff loop.
struct Session {
  explicit Session(SocksOptionsPtr o) : fd(std::move(o)) {}
  SocksFrontDoor fd;
  StreamMeta meta;
  std::string buffered;  // unconsumed client bytes
  std::string toClient;
  bool routed{false};
  bool served{false};  // served: UDP ASSOCIATE asked the session to serve the connection
  bool closed{false};
  Errc reason{Errc::Ok};
  std::string detail;

  void feed(std::string_view bytes) {
    buffered.append(bytes);
    for (;;) {
      auto r = fd.onClientBytes({reinterpret_cast<const uint8_t*>(buffered.data()), buffered.size()}, meta);
      switch (r.action) {
        case FrontDoorResult::Action::NeedMore: return;
        case FrontDoorResult::Action::Reply:
          buffered.erase(0, r.consumed);
          toClient += r.reply;
          if (buffered.empty()) return;
          continue;
        case FrontDoorResult::Action::Close:
          toClient += r.reply;
          closed = true;
          reason = r.reason;
          detail = r.detail;
          return;
        case FrontDoorResult::Action::Route:
          buffered.erase(0, r.consumed);
          routed = true;
          return;
        case FrontDoorResult::Action::Serve:
          buffered.erase(0, r.consumed);
          served = true;
          return;
      }
    }
  }
  // feedBytewise delivers one byte at a time (the worst split).
  void feedBytewise(std::string_view bytes) {
    for (char c : bytes) {
      if (closed || routed || served) {
        buffered.push_back(c);
        continue;
      }
      feed(std::string_view(&c, 1));
    }
  }
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
  EXPECT_EQ(toHex(s.fd.onUpstreamResult(s.meta, Errc::Ok)), "05000001000000000000");
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
  EXPECT_EQ(s.buffered, "GET / HTTP/1.0\r\n\r\n");
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
  EXPECT_EQ(toHex(s.toClient), "0500");  // the success reply comes from serve(), with the relay's address
  EXPECT_EQ(s.buffered, "x");
  // Byte by byte, with authentication, and a client port named in the request.
  Session a(withUser("u", "p"));
  a.feedBytewise(fromHexString("050102") + fromHexString("0101750170") + fromHexString("050300017f0000011f90"));
  ASSERT_TRUE(a.served);
  EXPECT_EQ(toHex(a.toClient), "0502" "0100");
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
    EXPECT_EQ(toHex(s.fd.onUpstreamResult(s.meta, e)), std::string("05") + rep + "0001000000000000")
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
  EXPECT_EQ(toHex(s.fd.onUpstreamResult(s.meta, Errc::Ok)), "005a000000000000");
  Session f(noAuth());
  f.feed(fromHexString("040100507f00000100"));
  ASSERT_TRUE(f.routed);
  EXPECT_EQ(f.meta.originalDst.str(), "127.0.0.1:80");
  EXPECT_EQ(toHex(f.fd.onUpstreamResult(f.meta, Errc::ConnectRefused)), "005b000000000000");
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
