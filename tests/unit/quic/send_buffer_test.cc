#include "quic/send_buffer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ugate::quic {
namespace {

std::string gather(const SendBuffer& b, size_t maxv = 8) {
  ByteVec v[8] = {};
  size_t n = b.peek(v, maxv);
  std::string out;
  for (size_t i = 0; i < n; ++i) out.append(reinterpret_cast<const char*>(v[i].base), v[i].len);
  return out;
}

TEST(SendBuffer, HandAckAndBlocksThatNeverMove) {
  SendBuffer b;
  std::string data;
  for (int i = 0; i < 40000; ++i) data.push_back(static_cast<char>('a' + i % 26));
  b.append(reinterpret_cast<const uint8_t*>(data.data()), 10);
  b.append(reinterpret_cast<const uint8_t*>(data.data()) + 10, data.size() - 10);
  EXPECT_EQ(b.size(), data.size());
  EXPECT_EQ(gather(b), data);  // three blocks: 16K + 16K + the rest

  ByteVec v[1] = {};
  ASSERT_EQ(b.peek(v, 1), 1u);
  const uint8_t* first = v[0].base;
  b.hand(20000);  // across a block boundary
  EXPECT_EQ(b.unhanded(), data.size() - 20000);
  EXPECT_EQ(gather(b), data.substr(20000));
  b.append(reinterpret_cast<const uint8_t*>("XYZ"), 3);  // appending moves nothing handed out
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(first), 5), data.substr(0, 5));
  EXPECT_EQ(gather(b), data.substr(20000) + "XYZ");

  b.ack(16384);  // the first block is freed
  EXPECT_EQ(b.size(), data.size() + 3 - 16384);
  b.hand(b.unhanded());
  b.ack(b.size());  // all acknowledged: nothing is held
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.unhanded(), 0u);
  b.append(reinterpret_cast<const uint8_t*>("next"), 4);
  EXPECT_EQ(gather(b), "next");
  EXPECT_EQ(b.handedOffset(), data.size() + 3);  // offsets keep counting the stream
}

TEST(SendBuffer, PeekRespectsMaxPieces) {
  SendBuffer b;
  std::vector<uint8_t> big(3 * SendBuffer::kBlock + 5, 7);
  b.append(big.data(), big.size());
  ByteVec v[2] = {};
  EXPECT_EQ(b.peek(v, 2), 2u);
  EXPECT_EQ(v[0].len + v[1].len, 2 * SendBuffer::kBlock);
}

TEST(SendBuffer, AcknowledgedBlockIsReusedWithItsOldBytesOverwritten) {
  SendBuffer b;
  const size_t k = SendBuffer::kBlock;
  std::string first(k, 'x'), second(k + 100, 'y');
  b.append(reinterpret_cast<const uint8_t*>(first.data()), first.size());
  b.append(reinterpret_cast<const uint8_t*>("z"), 1);  // a second block begins
  ByteVec v[1] = {};
  ASSERT_EQ(b.peek(v, 1), 1u);
  const uint8_t* firstBlock = v[0].base;
  b.hand(k + 1);
  b.ack(k);  // the first block is acknowledged: kept as the spare
  b.append(reinterpret_cast<const uint8_t*>(second.data()), second.size());
  EXPECT_EQ(gather(b), second);  // the reused block carries only the new bytes
  ByteVec all[4] = {};
  size_t n = b.peek(all, 4);
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(all[1].base, firstBlock);  // the spare came back instead of a new allocation
  b.hand(b.unhanded());
  b.ack(b.size());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.peek(all, 4), 0u);
  b.append(reinterpret_cast<const uint8_t*>("after"), 5);
  EXPECT_EQ(gather(b), "after");
}

}  // namespace
}  // namespace ugate::quic
