#include "quic/stream_header.h"

#include <gtest/gtest.h>

#include <ugate/tunnel.h>

#include <string>
#include <vector>

namespace ugate::quic {
namespace {

std::vector<uint8_t> bytes(std::initializer_list<int> l) {
  std::vector<uint8_t> v;
  for (int b : l) v.push_back(static_cast<uint8_t>(b));
  return v;
}

// RFC 9000 Appendix A.1: the sample variable-length integer decodings.
TEST(Varint, Rfc9000Samples) {
  struct Case {
    std::vector<uint8_t> enc;
    uint64_t value;
  } cases[] = {
      {bytes({0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}), 151288809941952652ull},
      {bytes({0x9d, 0x7f, 0x3e, 0x7d}), 494878333ull},
      {bytes({0x7b, 0xbd}), 15293},
      {bytes({0x25}), 37},
      {bytes({0x40, 0x25}), 37},  // the same value in two bytes decodes too
  };
  for (const auto& c : cases) {
    uint64_t v = 0;
    EXPECT_EQ(readVarint(c.enc, v), c.enc.size());
    EXPECT_EQ(v, c.value);
    // Too few bytes: nothing is taken.
    EXPECT_EQ(readVarint(std::span<const uint8_t>(c.enc).first(c.enc.size() - 1), v), 0u);
  }
  // Encoding picks the shortest form.
  for (const auto& c : cases) {
    if (c.enc.size() == 2 && c.value == 37) continue;
    std::vector<uint8_t> out;
    appendVarint(out, c.value);
    EXPECT_EQ(out, c.enc);
  }
}

TEST(StreamHeader, RequestRoundTripKeepsOrderAndRepeats) {
  StreamRequest r;
  r.authority = "b.mesh:8080";
  r.fields = {{"x-ugate-hops", "AAAA,BBBB"}, {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
              {"baggage", "a=1"}, {"baggage", "b=2"}};
  std::vector<uint8_t> wire;
  encodeRequest(r, wire);
  wire.push_back('P');  // the payload's first byte follows the header

  StreamHeaderParser p(StreamHeaderParser::Kind::Request);
  size_t used = p.feed(wire);
  ASSERT_TRUE(p.done());
  EXPECT_EQ(used, wire.size() - 1);
  StreamRequest got = p.takeRequest();
  EXPECT_EQ(got.authority, "b.mesh:8080");
  ASSERT_EQ(got.fields.size(), 4u);
  EXPECT_EQ(got.fields[2].second, "a=1");
  EXPECT_EQ(got.fields[3].second, "b=2");
  EXPECT_EQ(got.field("x-ugate-hops"), "AAAA,BBBB");
  EXPECT_EQ(got.field("absent"), "");
}

TEST(StreamHeader, ByteAtATime) {
  StreamRequest r;
  r.authority = "[::1]:443";
  r.fields = {{"x-ugate-peer", std::string(300, 'x')}};  // a two-byte length inside
  std::vector<uint8_t> wire;
  encodeRequest(r, wire);
  StreamHeaderParser p(StreamHeaderParser::Kind::Request);
  for (size_t i = 0; i < wire.size(); ++i) {
    ASSERT_FALSE(p.done()) << i;
    ASSERT_EQ(p.feed(std::span<const uint8_t>(&wire[i], 1)), 1u) << i;
  }
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.takeRequest().field("x-ugate-peer").size(), 300u);
}

TEST(StreamHeader, ResponseRoundTrip) {
  StreamResponse r;
  r.status = 508;
  r.fields = {{"x-ugate-error", "loop_detected"}};
  std::vector<uint8_t> wire;
  encodeResponse(r, wire);
  StreamHeaderParser p(StreamHeaderParser::Kind::Response);
  EXPECT_EQ(p.feed(wire), wire.size());
  ASSERT_TRUE(p.done());
  StreamResponse got = p.takeResponse();
  EXPECT_EQ(got.status, 508);
  EXPECT_EQ(got.field("x-ugate-error"), "loop_detected");
}

// A refusal as the mesh over QUIC sends it (mux_app.cc): the status reply, then its reason text and
// FIN. Fed a byte at a time, the parser stops at the end of the header, and the status and
// x-ugate-error map back to the reason the acceptor refused with (tunnelErrc).
TEST(StreamHeader, RefusalReplyThenReasonTextByteByByte) {
  StreamResponse r;
  r.status = static_cast<uint16_t>(tunnelStatus(Errc::NotExposed));
  r.fields = {{"x-ugate-error", std::string(errcReason(Errc::NotExposed))}};
  std::vector<uint8_t> wire;
  encodeResponse(r, wire);
  const size_t headerLen = wire.size();
  const std::string text = "port 9300 is not exposed (mesh.expose)\n";
  wire.insert(wire.end(), text.begin(), text.end());
  StreamHeaderParser p(StreamHeaderParser::Kind::Response);
  size_t taken = 0;
  for (size_t i = 0; i < wire.size() && !p.done(); ++i) taken += p.feed(std::span<const uint8_t>(&wire[i], 1));
  ASSERT_TRUE(p.done());
  EXPECT_EQ(taken, headerLen);  // the reason text is payload, left to the stream
  EXPECT_EQ(p.feed(std::span<const uint8_t>(wire).subspan(headerLen)), 0u);
  StreamResponse got = p.takeResponse();
  EXPECT_EQ(got.status, 403);
  EXPECT_EQ(tunnelErrc(got.status, got.field("x-ugate-error")), Errc::NotExposed);
}

// A body assembled by hand: version, then the fields.
std::vector<uint8_t> frame(const std::vector<uint8_t>& body) {
  std::vector<uint8_t> out;
  appendVarint(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<uint8_t> str(std::string_view s) {
  std::vector<uint8_t> out;
  appendVarint(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

HeaderError parseRequest(const std::vector<uint8_t>& wire, StreamHeaderLimits lim = {}) {
  StreamHeaderParser p(StreamHeaderParser::Kind::Request, lim);
  p.feed(wire);
  EXPECT_TRUE(p.done() || p.failed());
  return p.error();
}

TEST(StreamHeader, RefusesBadInputWithItsReason) {
  const auto v1 = bytes({1});
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a:1")}))), HeaderError::None);
  EXPECT_EQ(parseRequest(frame(cat({bytes({2}), str("a:1")}))), HeaderError::BadVersion);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("nohost")}))), HeaderError::BadAuthority);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a:0")}))), HeaderError::BadAuthority);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a:65536")}))), HeaderError::BadAuthority);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a b:1")}))), HeaderError::BadAuthority);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("[zz]:1")}))), HeaderError::BadAuthority);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a:1"), str("Upper"), str("v")}))), HeaderError::BadName);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a:1"), str(""), str("v")}))), HeaderError::BadName);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a:1"), str("n"), str("a\r\nb")}))), HeaderError::BadValue);
  EXPECT_EQ(parseRequest(frame(cat({v1, str("a:1"), str("n")}))), HeaderError::Truncated);  // no value
  // A string whose length runs past the body.
  EXPECT_EQ(parseRequest(frame(cat({v1, bytes({0x10}), bytes({'a', ':', '1'})}))), HeaderError::Truncated);
  // A length prefix over the limit fails before any body byte is buffered.
  std::vector<uint8_t> big;
  appendVarint(big, 20000);
  EXPECT_EQ(parseRequest(big), HeaderError::TooLarge);
  EXPECT_EQ(parseRequest(frame(bytes({1}))), HeaderError::Truncated);  // a body of 1 byte: no authority
  // Too many fields.
  std::vector<uint8_t> many = cat({v1, str("a:1")});
  for (int i = 0; i < 3; ++i) many = cat({many, str("n"), str("v")});
  EXPECT_EQ(parseRequest(frame(many), StreamHeaderLimits{.maxHeaderBytes = 1024, .maxFields = 2}),
            HeaderError::TooManyFields);
  EXPECT_EQ(parseRequest(frame(many), StreamHeaderLimits{.maxHeaderBytes = 1024, .maxFields = 3}),
            HeaderError::None);
}

TEST(StreamHeader, ResponseStatusRange) {
  auto parse = [](uint64_t status) {
    std::vector<uint8_t> body = {1};
    appendVarint(body, status);
    StreamHeaderParser p(StreamHeaderParser::Kind::Response);
    p.feed(frame(body));
    return p.error();
  };
  EXPECT_EQ(parse(200), HeaderError::None);
  EXPECT_EQ(parse(99), HeaderError::BadStatus);
  EXPECT_EQ(parse(1000), HeaderError::BadStatus);
}

TEST(StreamHeader, FailedParserConsumesNothingMore) {
  std::vector<uint8_t> wire = frame(cat({bytes({9}), str("a:1")}));
  StreamHeaderParser p(StreamHeaderParser::Kind::Request);
  p.feed(wire);
  ASSERT_TRUE(p.failed());
  EXPECT_EQ(p.feed(wire), 0u);
  EXPECT_EQ(headerErrorReason(p.error()), "bad_version");
}

}  // namespace
}  // namespace ugate::quic
