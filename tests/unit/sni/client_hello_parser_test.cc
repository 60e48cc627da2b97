// ClientHelloParser: the PROTOCOLS.md §4 vectors, hellos captured from real clients
// (tests/unit/sni/data), every way of splitting them, and one case per refusal reason.
#include "sni/client_hello_parser.h"
#include "test_common/test_util.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ugate::sni {
namespace {

using Bytes = std::vector<uint8_t>;
using test::fromHex;

// kRfc9001Hello: PROTOCOLS.md §4, the ClientHello of RFC 9001 A.2 behind a TLS record header (246
// B).
const Bytes& rfc9001Hello() {
  static const Bytes b = fromHex(
      "16030100f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c000004"
      "13011302010000c000000010000e00000b65"
      "78616d706c652e636f6dff01000100000a00080006001d001700180010000700 "
      "0504616c706e000500050100000000003300260024001d00209370b2c9caa47f"
      "babaf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b0003020304 "
      "000d0010000e0403050306030203080408050806002d00020101001c00024001"
      "003900320408ffffffffffffffff05048000ffff07048000ffff080110010480 "
      "0075300901100f088394c8f03e51570806048000ffff");
  return b;
}

// records: the handshake bytes hs cut into TLS records at the given offsets.
Bytes records(const Bytes& hs, const std::vector<size_t>& cuts, uint8_t verMinor = 0x01) {
  Bytes out;
  size_t from = 0;
  auto add = [&](size_t to) {
    out.insert(out.end(), {0x16, 0x03, verMinor, static_cast<uint8_t>((to - from) >> 8),
                           static_cast<uint8_t>(to - from)});
    out.insert(out.end(), hs.begin() + static_cast<long>(from), hs.begin() + static_cast<long>(to));
    from = to;
  };
  for (size_t c : cuts) add(c);
  add(hs.size());
  return out;
}

Bytes handshakeOf(const Bytes& wire) {
  Bytes hs;
  size_t o = 0;
  while (o + 5 <= wire.size()) {
    size_t len = size_t{wire[o + 3]} << 8 | wire[o + 4];
    hs.insert(hs.end(), wire.begin() + static_cast<long>(o + 5),
              wire.begin() + static_cast<long>(o + 5 + len));
    o += 5 + len;
  }
  return hs;
}

Bytes readData(const std::string& name) {
  std::ifstream f(std::string(UGATE_SOURCE_DIR) + "/tests/unit/sni/data/" + name, std::ios::binary);
  EXPECT_TRUE(f.good()) << name;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

// Hello builds a ClientHello body with chosen extensions (type, data), then wraps it.
struct Hello {
  uint16_t version{0x0303};
  Bytes sessionId = Bytes(32, 0x11);
  Bytes ciphers{0x13, 0x01, 0x13, 0x02};
  Bytes compression{0x00};
  std::vector<std::pair<uint16_t, Bytes>> exts;
  bool noExtensions{false};

  Bytes handshake() const {
    Bytes b{static_cast<uint8_t>(version >> 8), static_cast<uint8_t>(version)};
    b.insert(b.end(), 32, 0xab);
    b.push_back(static_cast<uint8_t>(sessionId.size()));
    b.insert(b.end(), sessionId.begin(), sessionId.end());
    b.insert(b.end(),
             {static_cast<uint8_t>(ciphers.size() >> 8), static_cast<uint8_t>(ciphers.size())});
    b.insert(b.end(), ciphers.begin(), ciphers.end());
    b.push_back(static_cast<uint8_t>(compression.size()));
    b.insert(b.end(), compression.begin(), compression.end());
    if (!noExtensions) {
      Bytes e;
      for (const auto& [t, d] : exts) {
        e.insert(e.end(), {static_cast<uint8_t>(t >> 8), static_cast<uint8_t>(t),
                           static_cast<uint8_t>(d.size() >> 8), static_cast<uint8_t>(d.size())});
        e.insert(e.end(), d.begin(), d.end());
      }
      b.insert(b.end(), {static_cast<uint8_t>(e.size() >> 8), static_cast<uint8_t>(e.size())});
      b.insert(b.end(), e.begin(), e.end());
    }
    Bytes hs{0x01, static_cast<uint8_t>(b.size() >> 16), static_cast<uint8_t>(b.size() >> 8),
             static_cast<uint8_t>(b.size())};
    hs.insert(hs.end(), b.begin(), b.end());
    return hs;
  }
  Bytes wire() const { return records(handshake(), {}); }
};

Bytes sniExt(std::string_view name, uint8_t type = 0) {
  Bytes e;
  e.reserve(5 + name.size());
  e.push_back(static_cast<uint8_t>((name.size() + 3) >> 8));
  e.push_back(static_cast<uint8_t>(name.size() + 3));
  e.push_back(type);
  e.push_back(static_cast<uint8_t>(name.size() >> 8));
  e.push_back(static_cast<uint8_t>(name.size()));
  for (char c : name) e.push_back(static_cast<uint8_t>(c));
  return e;
}

Bytes alpnExt(const std::vector<std::string>& names) {
  Bytes l;
  for (const auto& n : names) {
    l.push_back(static_cast<uint8_t>(n.size()));
    l.insert(l.end(), n.begin(), n.end());
  }
  Bytes e{static_cast<uint8_t>(l.size() >> 8), static_cast<uint8_t>(l.size())};
  e.insert(e.end(), l.begin(), l.end());
  return e;
}

// expectSame: every field routing looks at is equal.
void expectSame(const ClientHelloParser& a, const ClientHelloParser& b, const std::string& what) {
  EXPECT_EQ(a.status(), b.status()) << what;
  EXPECT_EQ(a.error(), b.error()) << what;
  EXPECT_EQ(a.info().sni, b.info().sni) << what;
  EXPECT_EQ(a.info().alpn, b.info().alpn) << what;
  EXPECT_EQ(a.info().tls13, b.info().tls13) << what;
  EXPECT_EQ(a.info().ech, b.info().ech) << what;
  EXPECT_EQ(a.info().extensionCount, b.info().extensionCount) << what;
}

ClientHelloParser feedInPieces(const Bytes& b, const std::vector<size_t>& cuts,
                               size_t max = 16384) {
  ClientHelloParser p(max);
  size_t from = 0;
  for (size_t c : cuts) {
    p.feed(std::span<const uint8_t>(b).subspan(from, c - from));
    from = c;
  }
  p.feed(std::span<const uint8_t>(b).subspan(from));
  return p;
}

TEST(ClientHelloParserTest, Rfc9001Vector) {
  const Bytes& b = rfc9001Hello();
  ASSERT_EQ(b.size(), 246u);
  auto p = ClientHelloParser::parseAll(b);
  ASSERT_EQ(p.status(), HelloStatus::Done) << helloErrorName(p.error());
  EXPECT_EQ(p.info().sni, "example.com");
  EXPECT_EQ(p.info().alpn, (std::vector<std::string>{"alpn"}));
  EXPECT_TRUE(p.info().tls13);
  EXPECT_FALSE(p.info().ech);
  EXPECT_EQ(p.info().legacyVersion, 0x0303);
  // 0000 ff01 000a 0010 0005 0033 002b 000d 002d 001c 0039
  EXPECT_EQ(p.info().extensionCount, 11);
  EXPECT_EQ(p.info().wireBytes, 246u);
  EXPECT_EQ(p.info().records, 1u);
  EXPECT_EQ(p.consumed(), 246u);
}

TEST(ClientHelloParserTest, SplitRecordVectorGivesTheSameResult) {
  // PROTOCOLS.md: send 16 03 01 00 64 + hs[0:100], then 16 03 01 00 8d + hs[100:241].
  Bytes hs = handshakeOf(rfc9001Hello());
  ASSERT_EQ(hs.size(), 241u);
  Bytes split = records(hs, {100});
  ASSERT_EQ(split.size(), 251u);
  EXPECT_EQ(Bytes(split.begin(), split.begin() + 5), fromHex("1603010064"));
  EXPECT_EQ(Bytes(split.begin() + 105, split.begin() + 110), fromHex("160301008d"));
  auto whole = ClientHelloParser::parseAll(rfc9001Hello());
  auto p = ClientHelloParser::parseAll(split);
  ASSERT_EQ(p.status(), HelloStatus::Done) << helloErrorName(p.error());
  expectSame(whole, p, "split record");
  EXPECT_EQ(p.info().records, 2u);
  EXPECT_EQ(p.info().wireBytes, 251u);
}

TEST(ClientHelloParserTest, EveryTcpSplitAndEveryRecordSplitOfTheVector) {
  const Bytes& b = rfc9001Hello();
  auto whole = ClientHelloParser::parseAll(b);
  for (size_t cut = 1; cut < b.size(); ++cut) {
    expectSame(whole, feedInPieces(b, {cut}), "tcp cut at " + std::to_string(cut));
  }
  Bytes hs = handshakeOf(b);
  for (size_t cut = 1; cut < hs.size(); ++cut) {
    Bytes w = records(hs, {cut});
    auto p = ClientHelloParser::parseAll(w);
    expectSame(whole, p, "record cut at " + std::to_string(cut));
    // and the two-record form also cut into TCP segments in the middle of the second header
    expectSame(whole, feedInPieces(w, {cut + 5 + 2}), "record+tcp cut at " + std::to_string(cut));
  }
  // One byte per record, one byte per segment: the worst fragmentation a peer can do.
  std::vector<size_t> everyByte;
  for (size_t i = 1; i < hs.size(); ++i) everyByte.push_back(i);
  Bytes tiny = records(hs, everyByte);
  std::vector<size_t> everyWireByte;
  for (size_t i = 1; i < tiny.size(); ++i) everyWireByte.push_back(i);
  auto p = feedInPieces(tiny, everyWireByte);
  expectSame(whole, p, "1-byte records, 1-byte segments");
  EXPECT_EQ(p.info().records, hs.size());
}

struct Capture {
  const char* file;
  const char* sni;
  std::vector<std::string> alpn;
  bool tls13;
};

TEST(ClientHelloParserTest, HellosCapturedFromRealClients) {
  const std::vector<Capture> caps = {
      {"openssl_tls13.bin", "a.test", {"h2", "http/1.1"}, true},
      {"openssl_tls12.bin", "legacy.example.org", {}, false},
      {"openssl_nosni.bin", "", {}, true},
      {"curl.bin", "b.test", {"h2", "http/1.1"}, true},
      {"curl_http11.bin", "www.example.net", {"http/1.1"}, true},
      {"gtlsclient_quic.bin", "localhost", {"h3"}, true},
  };
  for (const auto& c : caps) {
    Bytes b = readData(c.file);
    ASSERT_FALSE(b.empty()) << c.file;
    auto p = ClientHelloParser::parseAll(b);
    ASSERT_EQ(p.status(), HelloStatus::Done) << c.file << ": " << helloErrorName(p.error());
    EXPECT_EQ(p.info().sni, c.sni) << c.file;
    EXPECT_EQ(p.info().alpn, c.alpn) << c.file;
    EXPECT_EQ(p.info().tls13, c.tls13) << c.file;
    EXPECT_EQ(p.consumed(), b.size()) << c.file;
    // Fed in TCP-sized and odd-sized segments, and re-framed into 3 records: same answer.
    expectSame(p, feedInPieces(b, {1, 5, 6, 100}), std::string(c.file) + " segments");
    Bytes hs = handshakeOf(b);
    expectSame(p, ClientHelloParser::parseAll(records(hs, {3, hs.size() / 2})),
               std::string(c.file) + " 3 records");
  }
}

TEST(ClientHelloParserTest, LargeHelloSpanningSeveralSegments) {
  Bytes b = readData("openssl_large.bin");
  ASSERT_GT(b.size(), 1500u);  // more than one Ethernet MSS
  std::vector<size_t> mss;
  for (size_t o = 1448; o < b.size(); o += 1448) mss.push_back(o);
  auto p = feedInPieces(b, mss);
  ASSERT_EQ(p.status(), HelloStatus::Done) << helloErrorName(p.error());
  EXPECT_EQ(p.info().sni, "big.test");
  EXPECT_EQ(p.info().alpn.size(), 60u);
  EXPECT_EQ(p.info().alpn.front(), "proto-000-xxxxxxxxxxxxxxxxxxxx");
  EXPECT_EQ(p.info().records, 1u);
  // Exactly at the cap it passes; one byte under, it is too large as soon as the header is read.
  EXPECT_EQ(ClientHelloParser::parseAll(b, b.size()).status(), HelloStatus::Done);
  ClientHelloParser small(b.size() - 1);
  EXPECT_EQ(small.feed(std::span<const uint8_t>(b).first(5)), HelloStatus::Error);
  EXPECT_EQ(small.error(), HelloError::TooLarge);
}

TEST(ClientHelloParserTest, TooLargeAcrossManyRecordsIsCaughtByTheMessageLength) {
  Hello h;
  h.exts = {{0x0000, sniExt("a.test")}, {0x0015, Bytes(3000, 0)}};  // padding
  Bytes hs = h.handshake();
  // Small records: no single record is over the cap, but the message length is.
  Bytes w = records(hs, {100, 200, 300});
  ClientHelloParser p(1024);
  EXPECT_EQ(p.feed(std::span<const uint8_t>(w).first(5 + 4)), HelloStatus::Error);
  EXPECT_EQ(p.error(), HelloError::TooLarge);
  EXPECT_EQ(ClientHelloParser::parseAll(w, 8192).status(), HelloStatus::Done);
}

TEST(ClientHelloParserTest, NotTlsIsDecidedOnTheFirstBytes) {
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ClientHelloParser p;
  EXPECT_EQ(p.feed({reinterpret_cast<const uint8_t*>(get.data()), 1}), HelloStatus::NotTls);
  EXPECT_EQ(p.error(), HelloError::NotHandshakeRecord);
  EXPECT_EQ(p.consumed(), 0u);
  // SSLv2-format hello (RFC 6101 E.2): 2-byte header with the high bit set.
  auto v2 = ClientHelloParser::parseAll(fromHex("802b0103010012000000100700c0030080"));
  EXPECT_EQ(v2.status(), HelloStatus::NotTls);
  EXPECT_EQ(v2.error(), HelloError::SslV2Hello);
  auto v = ClientHelloParser::parseAll(fromHex("1602"));
  EXPECT_EQ(v.status(), HelloStatus::NotTls);
  EXPECT_EQ(v.error(), HelloError::NotTlsVersion);
  // One byte that could still be TLS: wait.
  ClientHelloParser w;
  EXPECT_EQ(w.feed(fromHex("16")), HelloStatus::NeedMore);
  EXPECT_EQ(w.feed(fromHex("03")), HelloStatus::NeedMore);
}

TEST(ClientHelloParserTest, GreaseUnknownAndNoExtensionsAreFine) {
  Hello h;
  h.exts = {{0x0a0a, {}},
            {0x0000, sniExt("Mixed.Example.COM")},
            {0x1a1a, {0x00}},
            {0x4469, {1, 2, 3}},  // unknown
            {0x0010, alpnExt({"h2", "\x0a\x0a"})},
            {0xfafa, {}}};
  auto p = ClientHelloParser::parseAll(h.wire());
  ASSERT_EQ(p.status(), HelloStatus::Done) << helloErrorName(p.error());
  EXPECT_EQ(p.info().sni, "mixed.example.com");
  EXPECT_EQ(p.info().alpn, (std::vector<std::string>{"h2", "\x0a\x0a"}));
  EXPECT_EQ(p.info().extensionCount, 6);

  Hello old;
  old.noExtensions = true;
  auto q = ClientHelloParser::parseAll(old.wire());
  ASSERT_EQ(q.status(), HelloStatus::Done) << helloErrorName(q.error());
  EXPECT_EQ(q.info().sni, "");

  Hello other;  // a name of another name_type is skipped; host_name still found
  Bytes e = sniExt("x.test");
  Bytes two{0x00, static_cast<uint8_t>(e.size() - 2 + 4), 0x07, 0x00, 0x01, 'z'};
  two.insert(two.end(), e.begin() + 2, e.end());
  other.exts = {{0x0000, two}};
  auto r = ClientHelloParser::parseAll(other.wire());
  ASSERT_EQ(r.status(), HelloStatus::Done) << helloErrorName(r.error());
  EXPECT_EQ(r.info().sni, "x.test");
}

TEST(ClientHelloParserTest, EchRoutesOnTheOuterName) {
  Hello h;
  // ECHClientHello outer: type 0, kdf 0001, aead 0001, config_id 42, enc<2> = 32 B, payload<2> =
  // 100 B.
  Bytes ech{0x00, 0x00, 0x01, 0x00, 0x01, 42, 0x00, 0x20};
  ech.insert(ech.end(), 32, 0x55);
  ech.insert(ech.end(), {0x00, 100});
  ech.insert(ech.end(), 100, 0x66);
  h.exts = {{0x0000, sniExt("public.example.net")}, {0x0010, alpnExt({"h2"})}, {0xfe0d, ech}};
  auto p = ClientHelloParser::parseAll(h.wire());
  ASSERT_EQ(p.status(), HelloStatus::Done) << helloErrorName(p.error());
  EXPECT_EQ(p.info().sni, "public.example.net");
  EXPECT_TRUE(p.info().ech);
  EXPECT_FALSE(p.info().echInner);

  Hello inner;  // split mode: the backend sees the inner hello, whose ECH extension is type 1 alone
  inner.exts = {{0x0000, sniExt("secret.example.org")}, {0xfe0d, {0x01}}};
  auto q = ClientHelloParser::parseAll(inner.wire());
  ASSERT_EQ(q.status(), HelloStatus::Done) << helloErrorName(q.error());
  EXPECT_TRUE(q.info().echInner);
}

struct Bad {
  const char* what;
  Bytes wire;
  HelloError want;
};

std::vector<Bad> badCases() {
  std::vector<Bad> v;
  auto withExts = [](std::vector<std::pair<uint16_t, Bytes>> exts) {
    Hello h;
    h.exts = std::move(exts);
    return h.wire();
  };
  Hello h;
  h.exts = {{0x0000, sniExt("a.test")}};
  const Bytes hs = h.handshake();

  v.push_back({"duplicate extension", withExts({{0x000a, {0, 2, 0, 29}}, {0x000a, {0, 2, 0, 29}}}),
               HelloError::DuplicateExtension});
  v.push_back({"duplicate GREASE value", withExts({{0x2a2a, {}}, {0x2a2a, {}}}),
               HelloError::DuplicateExtension});
  v.push_back({"psk not last", withExts({{0x0029, {0, 0}}, {0x0000, sniExt("a.test")}}),
               HelloError::PskNotLast});
  v.push_back({"server_name list length", withExts({{0x0000, {0x00, 0x09, 0x00, 0x00, 0x01, 'a'}}}),
               HelloError::BadServerName});
  v.push_back(
      {"server_name empty list", withExts({{0x0000, {0x00, 0x00}}}), HelloError::BadServerName});
  v.push_back({"server_name name overruns",
               withExts({{0x0000, {0x00, 0x04, 0x00, 0x00, 0x09, 'a'}}}),
               HelloError::BadServerName});
  {
    Bytes a = sniExt("a.test"), b = sniExt("b.test");
    Bytes two{0x00, static_cast<uint8_t>(a.size() - 2 + b.size() - 2)};
    two.insert(two.end(), a.begin() + 2, a.end());
    two.insert(two.end(), b.begin() + 2, b.end());
    v.push_back({"two host_names", withExts({{0x0000, two}}), HelloError::DuplicateServerName});
  }
  v.push_back(
      {"trailing dot", withExts({{0x0000, sniExt("a.test.")}}), HelloError::InvalidHostName});
  v.push_back(
      {"space in name", withExts({{0x0000, sniExt("a b.test")}}), HelloError::InvalidHostName});
  v.push_back({"NUL in name", withExts({{0x0000, sniExt(std::string_view("a\0b.test", 8))}}),
               HelloError::InvalidHostName});
  v.push_back(
      {"IPv4 literal", withExts({{0x0000, sniExt("192.168.0.1")}}), HelloError::InvalidHostName});
  v.push_back({"IPv6 literal", withExts({{0x0000, sniExt("::1")}}), HelloError::InvalidHostName});
  v.push_back(
      {"empty label", withExts({{0x0000, sniExt("a..test")}}), HelloError::InvalidHostName});
  v.push_back({"label over 63", withExts({{0x0000, sniExt(std::string(64, 'a') + ".test")}}),
               HelloError::InvalidHostName});
  v.push_back(
      {"empty ALPN name", withExts({{0x0010, alpnExt({"h2", ""})}}), HelloError::EmptyAlpnName});
  v.push_back({"ALPN list length", withExts({{0x0010, {0x00, 0x05, 0x02, 'h', '2'}}}),
               HelloError::BadAlpn});
  v.push_back({"ALPN name overruns", withExts({{0x0010, {0x00, 0x03, 0x05, 'h', '2'}}}),
               HelloError::BadAlpn});
  v.push_back({"supported_versions odd", withExts({{0x002b, {0x03, 0x03, 0x04, 0x03}}}),
               HelloError::BadSupportedVersions});
  v.push_back({"ECH unknown type", withExts({{0xfe0d, {0x02}}}), HelloError::BadEch});
  v.push_back({"ECH outer truncated", withExts({{0xfe0d, {0x00, 0x00, 0x01, 0x00, 0x01, 1, 0x00}}}),
               HelloError::BadEch});
  v.push_back({"ECH outer empty payload",
               withExts({{0xfe0d, {0x00, 0x00, 0x01, 0x00, 0x01, 1, 0x00, 0x00, 0x00, 0x00}}}),
               HelloError::BadEch});
  v.push_back({"ECH inner with a body", withExts({{0xfe0d, {0x01, 0x00}}}), HelloError::BadEch});
  v.push_back({"ech_outer_extensions on the wire", withExts({{0xfd00, {0x02, 0x00, 0x0a}}}),
               HelloError::EchOuterExtensions});
  v.push_back({"extension overruns the block", withExts({{0x0000, sniExt("a.test")}}),
               HelloError::BadLength});
  {  // make the last extension claim one byte more than the block holds
    Bytes& w = v.back().wire;
    w[w.size() - sniExt("a.test").size() - 1] += 1;
  }
  {
    Hello x = h;
    x.version = 0x0203;
    v.push_back({"legacy_version major", x.wire(), HelloError::BadHelloVersion});
  }
  {
    Hello x = h;
    x.sessionId = Bytes(33, 1);
    v.push_back({"session id 33", x.wire(), HelloError::BadSessionId});
  }
  {
    Hello x = h;
    x.ciphers = {0x13};
    v.push_back({"odd cipher_suites", x.wire(), HelloError::BadCipherSuites});
    x.ciphers = {};
    v.push_back({"empty cipher_suites", x.wire(), HelloError::BadCipherSuites});
  }
  {
    Hello x = h;
    x.compression = {};
    v.push_back({"empty compression", x.wire(), HelloError::BadCompression});
  }
  {
    Bytes w = h.wire();
    w.push_back(0);  // one byte after the extensions, inside the message
    w[4] += 1;       // record length
    w[8] += 1;       // handshake length
    v.push_back({"bytes after the extensions", w, HelloError::BadLength});
  }
  {
    Hello x = h;
    x.noExtensions = true;
    Bytes w = x.wire();
    w.push_back(0);
    w[4] += 1;
    w[8] += 1;
    v.push_back({"one byte where the extensions length goes", w, HelloError::BadLength});
  }
  {
    Bytes x = hs;
    x[0] = 0x02;  // server_hello
    v.push_back({"not a client_hello", records(x, {}), HelloError::NotClientHello});
  }
  {
    // The record claims one more byte than the message: the hello does not end on a record
    // boundary.
    Bytes t = records(hs, {});
    t[4] += 1;
    t.push_back(0x00);
    v.push_back({"record longer than the hello", t, HelloError::TrailingData});
  }
  v.push_back({"empty record", fromHex("1603010000"), HelloError::EmptyRecord});
  v.push_back({"record over 2^14", fromHex("1603014001"), HelloError::RecordTooLong});
  {
    Bytes w = records(hs, {10});
    w[15] = 0x17;  // second record is application data
    v.push_back({"interleaved record", w, HelloError::InterleavedRecord});
    Bytes y = records(hs, {10});
    y[16] = 0x02;
    v.push_back({"second record version", y, HelloError::BadRecordVersion});
  }
  return v;
}

TEST(ClientHelloParserTest, EveryRefusalHasItsOwnReason) {
  for (const auto& c : badCases()) {
    auto p = ClientHelloParser::parseAll(c.wire);
    EXPECT_EQ(p.status(), HelloStatus::Error) << c.what;
    EXPECT_EQ(helloErrorName(p.error()), helloErrorName(c.want)) << c.what;
    EXPECT_TRUE(p.info().sni.empty()) << c.what;
    // Same verdict when fed one byte at a time.
    ClientHelloParser q;
    for (uint8_t byte : c.wire) {
      if (q.feed({&byte, 1}) != HelloStatus::NeedMore) break;
    }
    EXPECT_EQ(q.error(), c.want) << c.what << " (byte by byte)";
  }
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(HelloError::EchOuterExtensions); ++i) {
    EXPECT_TRUE(names.insert(helloErrorName(static_cast<HelloError>(i))).second) << i;
  }
}

TEST(ClientHelloParserTest, BytesAfterTheHelloAreNotConsumedAndResultIsFinal) {
  Bytes w = rfc9001Hello();
  const size_t n = w.size();
  w.insert(w.end(), {0x14, 0x03, 0x03, 0x00, 0x01, 0x01});  // ChangeCipherSpec
  ClientHelloParser p;
  EXPECT_EQ(p.feed(w), HelloStatus::Done);
  EXPECT_EQ(p.consumed(), n);
  EXPECT_EQ(p.feed(fromHex("ffffffff")), HelloStatus::Done);
  EXPECT_EQ(p.info().sni, "example.com");

  ClientHelloParser bad;
  EXPECT_EQ(bad.feed(fromHex("41")), HelloStatus::NotTls);
  EXPECT_EQ(bad.feed(rfc9001Hello()), HelloStatus::NotTls);
}

}  // namespace
}  // namespace ugate::sni
