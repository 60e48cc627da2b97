// gRPC length-prefixed messages over arbitrary chunking, refusals with the right status, and the
// request metadata (grpc-timeout, content-type, grpc-encoding).
#include "xds/grpc_frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace ugate::xds::grpc {
namespace {

using namespace std::chrono_literals;

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

// decodeAll feeds `wire` in chunks of `chunk` bytes and collects every message until a failure.
std::vector<std::string> decodeAll(MessageDecoder& d, std::string_view wire, size_t chunk) {
  std::vector<std::string> out;
  const auto b = bytes(wire);
  for (size_t off = 0; off < b.size(); off += chunk) {
    std::span<const uint8_t> in(b.data() + off, std::min(chunk, b.size() - off));
    std::string m;
    while (true) {
      auto r = d.decode(in, m);
      if (r == MessageDecoder::Outcome::Message) {
        out.push_back(m);
        continue;
      }
      if (r == MessageDecoder::Outcome::NeedMore) {
        EXPECT_TRUE(in.empty());
      }
      break;
    }
    if (!d.status().ok()) break;
  }
  return out;
}

TEST(GrpcFrameTest, EncodesTheSpecPrefix) {
  EXPECT_EQ(encodeMessage(""), std::string("\0\0\0\0\0", 5));
  EXPECT_EQ(encodeMessage("abc"), std::string("\0\0\0\0\3abc", 8));
  std::string big(0x0102'03, 'x');
  const std::string enc = encodeMessage(big);
  EXPECT_EQ(enc.substr(0, 5), std::string("\0\0\x01\x02\x03", 5));
  EXPECT_EQ(enc.size(), big.size() + 5);
  std::string two;
  appendMessage(two, "a");
  appendMessage(two, "bc");
  EXPECT_EQ(two, std::string("\0\0\0\0\1a\0\0\0\0\2bc", 13));
}

TEST(GrpcFrameTest, DecodesEveryChunking) {
  const std::string wire = encodeMessage("hello") + encodeMessage("") +
                           encodeMessage(std::string(300, 'z')) + encodeMessage("end");
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    MessageDecoder d;
    auto msgs = decodeAll(d, wire, chunk);
    ASSERT_EQ(msgs.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(msgs[0], "hello");
    EXPECT_EQ(msgs[1], "");
    EXPECT_EQ(msgs[2], std::string(300, 'z'));
    EXPECT_EQ(msgs[3], "end");
    EXPECT_TRUE(d.idle());
    EXPECT_TRUE(d.finish().ok());
  }
}

TEST(GrpcFrameTest, LeavesLaterMessagesInTheInput) {
  MessageDecoder d;
  const auto b = bytes(encodeMessage("one") + encodeMessage("two"));
  std::span<const uint8_t> in(b);
  std::string m;
  ASSERT_EQ(d.decode(in, m), MessageDecoder::Outcome::Message);
  EXPECT_EQ(m, "one");
  EXPECT_EQ(in.size(), 8u);
  ASSERT_EQ(d.decode(in, m), MessageDecoder::Outcome::Message);
  EXPECT_EQ(m, "two");
  EXPECT_EQ(d.decode(in, m), MessageDecoder::Outcome::NeedMore);
}

TEST(GrpcFrameTest, TheProtocolsDocExample) {
  // docs: DiscoveryRequest{node{id:"n1"}, type_url: Cluster} is 59 bytes, framed as 00 0000003b.
  std::string payload(59, 'p');
  const std::string wire = encodeMessage(payload);
  EXPECT_EQ(wire.substr(0, 5), std::string("\x00\x00\x00\x00\x3b", 5));
}

TEST(GrpcFrameTest, CompressedMessageIsUnimplemented) {
  MessageDecoder d;
  auto msgs = decodeAll(d, std::string("\1\0\0\0\2ab", 7), 3);
  EXPECT_TRUE(msgs.empty());
  EXPECT_EQ(d.status().code, Code::Unimplemented);
  // Failed stays failed, and ends the call with that status.
  const auto more = bytes(encodeMessage("x"));
  std::span<const uint8_t> in(more);
  std::string m;
  EXPECT_EQ(d.decode(in, m), MessageDecoder::Outcome::Failed);
  EXPECT_EQ(d.finish().code, Code::Unimplemented);
}

TEST(GrpcFrameTest, BadFlagIsInternal) {
  MessageDecoder d;
  decodeAll(d, std::string("\2\0\0\0\0", 5), 5);
  EXPECT_EQ(d.status().code, Code::Internal);
}

TEST(GrpcFrameTest, OversizedMessageIsRefusedAtItsPrefix) {
  MessageDecoder d(16);
  auto msgs = decodeAll(d, encodeMessage(std::string(16, 'a')), 64);
  ASSERT_EQ(msgs.size(), 1u);
  // Only the prefix of the 17-byte message arrives: refused before its payload.
  decodeAll(d, std::string("\0\0\0\0\x11", 5), 5);
  EXPECT_EQ(d.status().code, Code::ResourceExhausted);
  EXPECT_NE(d.status().message.find("17"), std::string::npos);
  MessageDecoder huge;
  decodeAll(huge, std::string("\0\xff\xff\xff\xff", 5), 1);
  EXPECT_EQ(huge.status().code, Code::ResourceExhausted);
}

TEST(GrpcFrameTest, EndInsideAMessageIsInternal) {
  MessageDecoder d;
  decodeAll(d, std::string("\0\0\0", 3), 3);
  EXPECT_FALSE(d.idle());
  EXPECT_EQ(d.finish().code, Code::Internal);
  MessageDecoder body;
  decodeAll(body, std::string("\0\0\0\0\4ab", 7), 7);
  EXPECT_EQ(body.finish().code, Code::Internal);
  MessageDecoder none;
  EXPECT_TRUE(none.finish().ok());
}

TEST(GrpcTimeoutTest, EveryUnit) {
  EXPECT_EQ(*parseTimeout("1H"), 1h);
  EXPECT_EQ(*parseTimeout("2M"), 2min);
  EXPECT_EQ(*parseTimeout("3S"), 3s);
  EXPECT_EQ(*parseTimeout("100m"), 100ms);
  EXPECT_EQ(*parseTimeout("5u"), 5us);
  EXPECT_EQ(*parseTimeout("99999999n"), 99'999'999ns);
  EXPECT_EQ(*parseTimeout("0S"), 0s);
  EXPECT_EQ(*parseTimeout("00000001m"), 1ms);
}

TEST(GrpcTimeoutTest, SaturatesInsteadOfOverflowing) {
  auto t = parseTimeout("99999999H");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, std::chrono::nanoseconds::max());
  EXPECT_EQ(*parseTimeout("99999999S"), 99'999'999s);
}

TEST(GrpcTimeoutTest, RefusesBadValues) {
  for (std::string_view bad : {"", "S", "1", "10", "123456789S", "-1S", "+1S", "1 S", " 1S", "1s",
                               "1h", "1.5S", "1SS", "0x1S", "1ms"}) {
    auto t = parseTimeout(bad);
    EXPECT_FALSE(t) << "'" << bad << "'";
    if (!t) {
      EXPECT_EQ(t.error().code, Errc::InvalidArgument);
    }
  }
}

TEST(GrpcTimeoutTest, EncodesInTheFinestUnitThatFits) {
  EXPECT_EQ(encodeTimeout(0ns), "0n");
  EXPECT_EQ(encodeTimeout(-5s), "0n");
  EXPECT_EQ(encodeTimeout(99'999'999ns), "99999999n");
  EXPECT_EQ(encodeTimeout(100ms), "100000u");
  EXPECT_EQ(encodeTimeout(15s), "15000000u");
  EXPECT_EQ(encodeTimeout(150s), "150000m");
  EXPECT_EQ(encodeTimeout(1h), "3600000m");
  EXPECT_EQ(encodeTimeout(std::chrono::nanoseconds::max()), "2562048H");
  // Rounded up, never down.
  EXPECT_EQ(encodeTimeout(100'000'001ns), "100001u");
  for (auto t : {1ns, 123456789ns, std::chrono::nanoseconds(30s), std::chrono::nanoseconds(48h)}) {
    auto back = parseTimeout(encodeTimeout(t));
    ASSERT_TRUE(back);
    EXPECT_GE(*back, t);
  }
}

TEST(GrpcMetadataTest, ContentType) {
  EXPECT_TRUE(isGrpcContentType("application/grpc"));
  EXPECT_TRUE(isGrpcContentType("application/grpc+proto"));
  EXPECT_TRUE(isGrpcContentType("application/grpc;charset=utf-8"));
  EXPECT_TRUE(isGrpcContentType("Application/GRPC"));
  EXPECT_FALSE(isGrpcContentType("application/grpcx"));
  EXPECT_FALSE(isGrpcContentType("application/grpc-web"));
  EXPECT_FALSE(isGrpcContentType("application/json"));
  EXPECT_FALSE(isGrpcContentType(""));
}

TEST(GrpcMetadataTest, OnlyIdentityEncoding) {
  EXPECT_TRUE(acceptsEncoding(""));
  EXPECT_TRUE(acceptsEncoding("identity"));
  EXPECT_FALSE(acceptsEncoding("gzip"));
}

}  // namespace
}  // namespace ugate::xds::grpc
