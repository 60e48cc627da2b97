// The SOCKS codec against the PROTOCOLS.md §3 examples, split at every byte, plus SOCKS4/4a and the
// RFC 1928 §7 UDP header.
#include "socks/socks_codec.h"
#include "test_common/test_util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ugate::socks {
namespace {

using test::fromHex;
using test::toHex;



std::span<const uint8_t> prefix(const std::vector<uint8_t>& v, size_t n) { return {v.data(), n}; }

TEST(SocksCodec, GreetingFromProtocolsDoc) {
  auto in = fromHex("05020002");
  for (size_t n = 0; n < in.size(); ++n) {
    Greeting g;
    size_t c = 0;
    EXPECT_EQ(parseGreeting(prefix(in, n), g, c), Status::NeedMore) << n;
  }
  Greeting g;
  size_t c = 0;
  ASSERT_EQ(parseGreeting(in, g, c), Status::Done);
  EXPECT_EQ(c, 4u);
  EXPECT_TRUE(g.noAuth);
  EXPECT_TRUE(g.userPass);
}

TEST(SocksCodec, GreetingErrors) {
  Greeting g;
  size_t c = 0;
  EXPECT_EQ(parseGreeting(fromHex("0401"), g, c), Status::Error);  // not version 5
  EXPECT_EQ(parseGreeting(fromHex("0500"), g, c), Status::Error);  // no methods
  ASSERT_EQ(parseGreeting(fromHex("050101"), g, c), Status::Done);  // GSSAPI only
  EXPECT_FALSE(g.noAuth);
  EXPECT_FALSE(g.userPass);
}

TEST(SocksCodec, UserPassFromProtocolsDoc) {
  auto in = fromHex("0104757365720470617373");
  for (size_t n = 0; n < in.size(); ++n) {
    UserPass u;
    size_t c = 0;
    EXPECT_EQ(parseUserPass(prefix(in, n), u, c), Status::NeedMore) << n;
  }
  UserPass u;
  size_t c = 0;
  ASSERT_EQ(parseUserPass(in, u, c), Status::Done);
  EXPECT_EQ(c, in.size());
  EXPECT_EQ(u.user, "user");
  EXPECT_EQ(u.password, "pass");
  EXPECT_EQ(toHex(encodeAuthStatus(true)), "0100");
  EXPECT_EQ(toHex(encodeAuthStatus(false)), "0101");
}

TEST(SocksCodec, UserPassEmptyPasswordAndErrors) {
  UserPass u;
  size_t c = 0;
  ASSERT_EQ(parseUserPass(fromHex("01017500"), u, c), Status::Done);
  EXPECT_EQ(u.user, "u");
  EXPECT_EQ(u.password, "");
  EXPECT_EQ(parseUserPass(fromHex("0500"), u, c), Status::Error);    // wrong sub-negotiation version
  EXPECT_EQ(parseUserPass(fromHex("010000"), u, c), Status::Error);  // empty user name
}

TEST(SocksCodec, ConnectDomainFromProtocolsDoc) {
  auto in = fromHex("050100030b6578616d706c652e636f6d01bb");
  for (size_t n = 0; n < in.size(); ++n) {
    Request r;
    size_t c = 0;
    Reply e{};
    EXPECT_EQ(parseRequest(prefix(in, n), r, c, e), Status::NeedMore) << n;
  }
  Request r;
  size_t c = 0;
  Reply e{};
  ASSERT_EQ(parseRequest(in, r, c, e), Status::Done);
  EXPECT_EQ(c, in.size());
  EXPECT_EQ(r.command, 1);
  EXPECT_EQ(r.dst.type, AddressType::Domain);
  EXPECT_EQ(r.dst.host, "example.com");
  EXPECT_EQ(r.dst.port, 443);
}

TEST(SocksCodec, ConnectIPv4AndIPv6) {
  Request r;
  size_t c = 0;
  Reply e{};
  ASSERT_EQ(parseRequest(fromHex("050100017f0000011f90"), r, c, e), Status::Done);
  EXPECT_EQ(r.dst.type, AddressType::IPv4);
  EXPECT_EQ(r.dst.hostString(), "127.0.0.1");
  EXPECT_EQ(r.dst.port, 8080);
  EXPECT_EQ(c, 10u);
  ASSERT_EQ(parseRequest(fromHex("05010004000000000000000000000000000000010050"), r, c, e), Status::Done);
  EXPECT_EQ(r.dst.type, AddressType::IPv6);
  EXPECT_EQ(r.dst.hostString(), "::1");
  EXPECT_EQ(r.dst.socketAddress().str(), "[::1]:80");
  EXPECT_EQ(c, 22u);
}

TEST(SocksCodec, RequestErrors) {
  Request r;
  size_t c = 0;
  Reply e{};
  EXPECT_EQ(parseRequest(fromHex("050100050000"), r, c, e), Status::Error);
  EXPECT_EQ(e, Reply::AddressTypeNotSupported);
  EXPECT_EQ(parseRequest(fromHex("04010001"), r, c, e), Status::Error);
  EXPECT_EQ(e, Reply::GeneralFailure);
  EXPECT_EQ(parseRequest(fromHex("050100030001bb"), r, c, e), Status::Error);  // empty name
  EXPECT_EQ(e, Reply::GeneralFailure);
  EXPECT_EQ(parseRequest(fromHex("05010003036100620050"), r, c, e), Status::Error);  // NUL in the name
  // An unknown command is parsed; the caller answers 07.
  ASSERT_EQ(parseRequest(fromHex("050900017f0000010050"), r, c, e), Status::Done);
  EXPECT_EQ(r.command, 9);
  // An IP literal sent as a name is accepted (the front door treats it as an address).
  ASSERT_EQ(parseRequest(fromHex("05010003033a3a310050"), r, c, e), Status::Done);
  EXPECT_EQ(r.dst.host, "::1");
}

TEST(SocksCodec, RepliesFromProtocolsDoc) {
  EXPECT_EQ(toHex(encodeReply(Reply::Succeeded)), "05000001000000000000");
  EXPECT_EQ(toHex(encodeMethodChoice(Method::UserPass)), "0502");
  EXPECT_EQ(toHex(encodeMethodChoice(Method::NoAcceptable)), "05ff");
  EXPECT_EQ(toHex(encodeReply(Reply::ConnectionRefused)), "05050001000000000000");
  auto v6 = Address::fromSocketAddress(*SocketAddress::parse("[::1]:1080"));
  EXPECT_EQ(toHex(encodeReply(Reply::Succeeded, v6)), "050000040000000000000000000000000000000104" "38");
}

TEST(SocksCodec, Socks4AndSocks4a) {
  // SOCKS4 CONNECT 127.0.0.1:80, USERID "u".
  auto in = fromHex("040100507f0000017500");
  for (size_t n = 0; n < in.size(); ++n) {
    Socks4Request r;
    size_t c = 0;
    EXPECT_EQ(parseSocks4Request(prefix(in, n), r, c), Status::NeedMore) << n;
  }
  Socks4Request r;
  size_t c = 0;
  ASSERT_EQ(parseSocks4Request(in, r, c), Status::Done);
  EXPECT_EQ(c, in.size());
  EXPECT_EQ(r.dst.hostString(), "127.0.0.1");
  EXPECT_EQ(r.dst.port, 80);
  EXPECT_EQ(r.userId, "u");
  // SOCKS4a: DSTIP 0.0.0.1, empty USERID, host "localhost".
  auto a = fromHex("0401005000000001006c6f63616c686f737400");
  for (size_t n = 0; n < a.size(); ++n) {
    EXPECT_EQ(parseSocks4Request(prefix(a, n), r, c), Status::NeedMore) << n;
  }
  ASSERT_EQ(parseSocks4Request(a, r, c), Status::Done);
  EXPECT_EQ(c, a.size());
  EXPECT_EQ(r.dst.type, AddressType::Domain);
  EXPECT_EQ(r.dst.host, "localhost");
  EXPECT_EQ(toHex(encodeSocks4Reply(Socks4Reply::Granted)), "005a000000000000");
  EXPECT_EQ(toHex(encodeSocks4Reply(Socks4Reply::Rejected)), "005b000000000000");
}

TEST(SocksCodec, Socks4Limits) {
  Socks4Request r;
  size_t c = 0;
  std::vector<uint8_t> longUser = fromHex("040100507f000001");
  longUser.insert(longUser.end(), 255, 'x');
  EXPECT_EQ(parseSocks4Request(longUser, r, c), Status::NeedMore);  // 255 bytes: still fits
  longUser.push_back(0);
  EXPECT_EQ(parseSocks4Request(longUser, r, c), Status::Done);
  longUser.back() = 'x';
  EXPECT_EQ(parseSocks4Request(longUser, r, c), Status::Error);  // 256 bytes without NUL
  EXPECT_EQ(parseSocks4Request(fromHex("0501"), r, c), Status::Error);
  // SOCKS4a with a host that is not a name.
  EXPECT_EQ(parseSocks4Request(fromHex("04010050000000010061202000"), r, c), Status::Error);
}

TEST(SocksCodec, UdpHeaderRoundTrip) {
  Address dst;
  dst.type = AddressType::Domain;
  dst.host = "example.com";
  dst.port = 53;
  std::string h = encodeUdpHeader(dst);
  EXPECT_EQ(toHex(h), "000000030b6578616d706c652e636f6d0035");
  std::string dgram = h + "payload";
  UdpHeader u;
  ASSERT_EQ(parseUdpHeader({reinterpret_cast<const uint8_t*>(dgram.data()), dgram.size()}, u), Status::Done);
  EXPECT_EQ(u.frag, 0);
  EXPECT_EQ(u.dst.host, "example.com");
  EXPECT_EQ(u.dst.port, 53);
  EXPECT_EQ(dgram.substr(u.headerLen), "payload");

  auto v4 = fromHex("000001017f00000100358899");  // FRAG 1: parsed, the relay drops it
  ASSERT_EQ(parseUdpHeader(v4, u), Status::Done);
  EXPECT_EQ(u.frag, 1);
  EXPECT_EQ(u.headerLen, 10u);
  EXPECT_EQ(u.dst.socketAddress().str(), "127.0.0.1:53");
  auto v6 = Address::fromSocketAddress(*SocketAddress::parse("[2001:db8::1]:443"));
  std::string h6 = encodeUdpHeader(v6);
  ASSERT_EQ(parseUdpHeader({reinterpret_cast<const uint8_t*>(h6.data()), h6.size()}, u), Status::Done);
  EXPECT_EQ(u.dst.socketAddress().str(), "[2001:db8::1]:443");
  EXPECT_EQ(u.headerLen, h6.size());
}

TEST(SocksCodec, UdpHeaderErrors) {
  UdpHeader u;
  EXPECT_EQ(parseUdpHeader(fromHex(""), u), Status::Error);
  EXPECT_EQ(parseUdpHeader(fromHex("0001000100000000"), u), Status::Error);  // RSV != 0
  EXPECT_EQ(parseUdpHeader(fromHex("000000017f000001"), u), Status::Error);  // truncated port
  EXPECT_EQ(parseUdpHeader(fromHex("00000005"), u), Status::Error);          // bad ATYP
  EXPECT_EQ(parseUdpHeader(fromHex("0000000300"), u), Status::Error);        // empty name
}

}  // namespace
}  // namespace ugate::socks
