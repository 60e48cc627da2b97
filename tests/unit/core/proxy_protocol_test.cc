// PROXY protocol v1/v2 encoder and decoder: the PROTOCOLS.md §5 vectors, round trips, and one case
// per refusal reason.
#include "core/proxy_protocol.h"
#include "test_common/test_util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ugate {
namespace {

using test::fromHex;

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

SocketAddress addr(std::string_view s) { return SocketAddress::parse(s).value_or(SocketAddress{}); }

TEST(ProxyProtocolTest, V1Vector) {
  const std::string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
  EXPECT_EQ(encodeProxyV1(addr("192.168.0.1:56324"), addr("192.168.0.11:443")), line);
  std::string withData = line + "\x16\x03\x01";
  auto r = parseProxyHeader(bytes(withData));
  ASSERT_EQ(r.status, ProxyStatus::Done) << proxyErrorName(r.error);
  EXPECT_EQ(r.consumed, line.size());
  EXPECT_EQ(r.header.version, 1);
  EXPECT_EQ(r.header.source.str(), "192.168.0.1:56324");
  EXPECT_EQ(r.header.destination.str(), "192.168.0.11:443");
  // Every strict prefix needs more.
  for (size_t n = 1; n < line.size(); ++n) {
    EXPECT_EQ(parseProxyHeader(bytes(line.substr(0, n))).status, ProxyStatus::NeedMore) << n;
  }
}

TEST(ProxyProtocolTest, V1Tcp6AndUnknown) {
  const std::string l6 = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
  auto r = parseProxyHeader(bytes(l6));
  ASSERT_EQ(r.status, ProxyStatus::Done) << proxyErrorName(r.error);
  EXPECT_EQ(r.header.source.str(), "[2001:db8::1]:65535");
  EXPECT_EQ(r.header.destination.str(), "[::1]:0");
  EXPECT_EQ(encodeProxyV1(addr("[2001:db8::1]:65535"), addr("[::1]:0")), l6);
  // Mixed families: v4-mapped TCP6.
  EXPECT_EQ(encodeProxyV1(addr("10.0.0.1:1"), addr("[::1]:2")),
            "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n");
  EXPECT_EQ(encodeProxyV1(SocketAddress{}, addr("[::1]:2")), "PROXY UNKNOWN\r\n");
  for (std::string s : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    auto u = parseProxyHeader(bytes(s));
    ASSERT_EQ(u.status, ProxyStatus::Done) << s;
    EXPECT_TRUE(u.header.unknown);
    EXPECT_FALSE(u.header.source.valid());
    EXPECT_EQ(u.consumed, s.size());
  }
}

TEST(ProxyProtocolTest, V2Vector) {
  // PROTOCOLS.md §5: TCP4 192.168.0.1:56324 -> 192.168.0.11:443 with AUTHORITY "example.com" (42
  // B).
  const auto want = fromHex(
      "0d0a0d0a000d0a515549540a 21 11 001a c0a80001 c0a8000b dc04 01bb 02 000b "
      "6578616d706c652e636f6d");
  ASSERT_EQ(want.size(), 42u);
  ProxyV2Tlvs t;
  t.authority = "example.com";
  std::string enc = encodeProxyV2(addr("192.168.0.1:56324"), addr("192.168.0.11:443"), t);
  EXPECT_EQ(std::vector<uint8_t>(enc.begin(), enc.end()), want);
  auto r = parseProxyHeader(want);
  ASSERT_EQ(r.status, ProxyStatus::Done) << proxyErrorName(r.error);
  EXPECT_EQ(r.consumed, 42u);
  EXPECT_EQ(r.header.version, 2);
  EXPECT_FALSE(r.header.local);
  EXPECT_EQ(r.header.source.str(), "192.168.0.1:56324");
  EXPECT_EQ(r.header.destination.str(), "192.168.0.11:443");
  EXPECT_EQ(r.header.authority, "example.com");
  for (size_t n = 1; n < want.size(); ++n) {
    EXPECT_EQ(parseProxyHeader(std::span<const uint8_t>(want).first(n)).status,
              ProxyStatus::NeedMore)
        << n;
  }
}

TEST(ProxyProtocolTest, V2Local) {
  const auto want = fromHex("0d0a0d0a000d0a515549540a20000000");
  std::string enc = encodeProxyV2Local();
  EXPECT_EQ(std::vector<uint8_t>(enc.begin(), enc.end()), want);
  auto r = parseProxyHeader(want);
  ASSERT_EQ(r.status, ProxyStatus::Done);
  EXPECT_TRUE(r.header.local);
  EXPECT_EQ(r.consumed, 16u);
  // LOCAL still skips `len` bytes, whatever they hold.
  auto withBlock = fromHex("0d0a0d0a000d0a515549540a 20 11 0003 ffffff 41");
  auto l = parseProxyHeader(withBlock);
  ASSERT_EQ(l.status, ProxyStatus::Done);
  EXPECT_EQ(l.consumed, 19u);
}

TEST(ProxyProtocolTest, V2RoundTripV6AllTlvsAndCrc) {
  ProxyV2Tlvs t;
  t.authority = "a.test";
  t.alpn = "h2";
  t.uniqueId = "id-1";
  t.crc32c = true;
  std::string enc = encodeProxyV2(addr("[2001:db8::5]:1234"), addr("[::1]:443"), t);
  EXPECT_EQ(enc.size(), 16u + 36 + (3 + 2) + (3 + 6) + (3 + 4) + (3 + 4));
  auto r = parseProxyHeader(bytes(enc));
  ASSERT_EQ(r.status, ProxyStatus::Done) << proxyErrorName(r.error);
  EXPECT_EQ(r.header.source.str(), "[2001:db8::5]:1234");
  EXPECT_EQ(r.header.destination.str(), "[::1]:443");
  EXPECT_EQ(r.header.authority, "a.test");
  EXPECT_EQ(r.header.alpn, "h2");
  EXPECT_EQ(r.header.uniqueId, "id-1");
  EXPECT_TRUE(r.header.crc32cChecked);
  // Flip one bit of the address: the checksum no longer matches.
  enc[20] ^= 1;
  EXPECT_EQ(parseProxyHeader(bytes(enc)).error, ProxyError::V2BadCrc32c);
  // CRC-32C check value of "123456789" (RFC 3720 B.4).
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(bytes(check)), 0xe3069283u);
}

TEST(ProxyProtocolTest, V2UnknownTlvsAreKeptAndUnspecIsSkipped) {
  // PROXY, TCP4, addresses, then NOOP and a custom 0xE0 TLV.
  auto h = fromHex(
      "0d0a0d0a000d0a515549540a 21 11 0014 7f000001 7f000002 0001 0002 04 0000 e0 0002 abcd");
  auto r = parseProxyHeader(h);
  ASSERT_EQ(r.status, ProxyStatus::Done) << proxyErrorName(r.error);
  ASSERT_EQ(r.header.otherTlvs.size(), 1u);
  EXPECT_EQ(r.header.otherTlvs[0].type, 0xe0);
  EXPECT_EQ(r.header.otherTlvs[0].value, "\xab\xcd");
  auto u = parseProxyHeader(fromHex("0d0a0d0a000d0a515549540a 21 00 0002 ffff"));
  ASSERT_EQ(u.status, ProxyStatus::Done);
  EXPECT_TRUE(u.header.unknown);
  EXPECT_EQ(u.consumed, 18u);
  std::string enc = encodeProxyV2(SocketAddress{}, SocketAddress{});
  EXPECT_EQ(enc.substr(12), std::string("\x21\x00\x00\x00", 4));
}

struct Bad {
  const char* what;
  std::vector<uint8_t> data;
  ProxyError want;
};

std::vector<uint8_t> str(std::string_view s) { return {s.begin(), s.end()}; }

TEST(ProxyProtocolTest, EveryRefusalHasItsOwnReason) {
  const std::vector<Bad> cases = {
      {"plain TLS", fromHex("160301"), ProxyError::NotProxyProtocol},
      {"lower case", str("proxy TCP4"), ProxyError::NotProxyProtocol},
      {"v2 signature broken late", fromHex("0d0a0d0a000d0a5155495420"),
       ProxyError::NotProxyProtocol},
      {"v1 no CRLF in 107", str("PROXY TCP4 " + std::string(100, '1')), ProxyError::V1TooLong},
      {"v1 lone LF", str("PROXY TCP4 1.1.1.1 2.2.2.2 1 2\n"), ProxyError::V1BadLineEnd},
      {"v1 lone CR", str("PROXY TCP4 1.1.1.1 2.2.2.2 1 2\rX"), ProxyError::V1BadLineEnd},
      {"v1 UDP4", str("PROXY UDP4 1.1.1.1 2.2.2.2 1 2\r\n"), ProxyError::V1BadProtocol},
      {"v1 two spaces", str("PROXY TCP4  1.1.1.1 2.2.2.2 1 2\r\n"), ProxyError::V1BadField},
      {"v1 missing port", str("PROXY TCP4 1.1.1.1 2.2.2.2 1\r\n"), ProxyError::V1BadField},
      {"v1 extra field", str("PROXY TCP4 1.1.1.1 2.2.2.2 1 2 3\r\n"), ProxyError::V1BadField},
      {"v1 trailing space", str("PROXY TCP4 1.1.1.1 2.2.2.2 1 2 \r\n"), ProxyError::V1BadField},
      {"v1 v6 in TCP4", str("PROXY TCP4 ::1 ::2 1 2\r\n"), ProxyError::V1BadAddress},
      {"v1 v4 in TCP6", str("PROXY TCP6 1.1.1.1 2.2.2.2 1 2\r\n"), ProxyError::V1BadAddress},
      {"v1 leading zero in address", str("PROXY TCP4 01.1.1.1 2.2.2.2 1 2\r\n"),
       ProxyError::V1BadAddress},
      {"v1 leading zero port", str("PROXY TCP4 1.1.1.1 2.2.2.2 01 2\r\n"), ProxyError::V1BadPort},
      {"v1 port 65536", str("PROXY TCP4 1.1.1.1 2.2.2.2 1 65536\r\n"), ProxyError::V1BadPort},
      {"v1 sign in port", str("PROXY TCP4 1.1.1.1 2.2.2.2 +1 2\r\n"), ProxyError::V1BadPort},
      {"v2 version 1", fromHex("0d0a0d0a000d0a515549540a 11 11 0000"), ProxyError::V2BadVersion},
      {"v2 command 2", fromHex("0d0a0d0a000d0a515549540a 22 11 0000"), ProxyError::V2BadCommand},
      {"v2 family 0x41", fromHex("0d0a0d0a000d0a515549540a 21 41 0000"), ProxyError::V2BadFamily},
      {"v2 transport 3", fromHex("0d0a0d0a000d0a515549540a 21 13 0000"), ProxyError::V2BadFamily},
      {"v2 short TCP4 block", fromHex("0d0a0d0a000d0a515549540a 21 11 0004 7f000001"),
       ProxyError::V2ShortAddress},
      {"v2 TLV overruns",
       fromHex("0d0a0d0a000d0a515549540a 21 11 000f 7f000001 7f000001 0001 0002 02 0009 41"),
       ProxyError::V2BadTlv},
      {"v2 TLV header cut",
       fromHex("0d0a0d0a000d0a515549540a 21 11 000e 7f000001 7f000001 0001 0002 02 00"),
       ProxyError::V2BadTlv},
      {"v2 CRC32C of 3 bytes",
       fromHex("0d0a0d0a000d0a515549540a 21 11 0012 7f000001 7f000001 0001 0002 03 0003 000000"),
       ProxyError::V2BadCrc32c},
      {"v2 over the limit", fromHex("0d0a0d0a000d0a515549540a 21 11 ffff"), ProxyError::TooLarge},
  };
  for (const auto& c : cases) {
    auto r = parseProxyHeader(c.data);
    EXPECT_EQ(r.status, ProxyStatus::Error) << c.what;
    EXPECT_EQ(proxyErrorName(r.error), proxyErrorName(c.want)) << c.what;
  }
  // UNIQUE_ID over 128 bytes.
  std::vector<uint8_t> u =
      fromHex("0d0a0d0a000d0a515549540a 21 11 0090 7f000001 7f000001 0001 0002 05 0081");
  u.insert(u.end(), 129, 'x');
  EXPECT_EQ(parseProxyHeader(u).error, ProxyError::V2BadUniqueId);
  // Whole 64 KiB header allowed when the caller says so.
  std::vector<uint8_t> big = fromHex("0d0a0d0a000d0a515549540a 21 00 ffff");
  big.resize(16 + 65535, 0);
  EXPECT_EQ(parseProxyHeader(big, 16 + 65535).status, ProxyStatus::Done);
}

}  // namespace
}  // namespace ugate
