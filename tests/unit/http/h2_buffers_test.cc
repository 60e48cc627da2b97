// ChunkQueue / ChunkPool / ByteBuf: FIFO order across block boundaries, pooled blocks reused and
// capped, queues that outlive their pool.
#include "http/h2_buffers.h"

#include <gtest/gtest.h>

#include <string>

#include "test_common/test_util.h"

namespace ugate::http {
namespace {

std::string drain(ChunkQueue& q, size_t step) {
  std::string out;
  std::string buf(step, '\0');
  for (;;) {
    size_t n = q.read(reinterpret_cast<uint8_t*>(buf.data()), step);
    if (n == 0) return out;
    out.append(buf.data(), n);
  }
}

TEST(ChunkQueueTest, FifoAcrossBlocksInAnyStepSize) {
  ChunkPool pool(4);
  const std::string data = ugate::test::pattern(3 * ChunkBlock::kCapacity + 123, 9);
  for (size_t step : {1ul, 7ul, 4096ul, ChunkBlock::kCapacity, ChunkBlock::kCapacity + 1, 100000ul}) {
    ChunkQueue q;
    q.setPool(&pool);
    // Appended in uneven pieces, read in another rhythm.
    for (size_t off = 0; off < data.size();) {
      size_t n = std::min<size_t>(data.size() - off, 1000 + off % 5000);
      q.append(reinterpret_cast<const uint8_t*>(data.data()) + off, n);
      off += n;
    }
    EXPECT_EQ(q.size(), data.size());
    EXPECT_EQ(drain(q, step), data) << step;
    EXPECT_TRUE(q.empty());
  }
  EXPECT_EQ(pool.pooled(), 4u);  // capped
}

TEST(ChunkQueueTest, InterleavedAppendAndReadReuseBlocks) {
  ChunkPool pool(8);
  ChunkQueue q;
  q.setPool(&pool);
  std::string expect, got;
  for (int i = 0; i < 200; ++i) {
    std::string piece = ugate::test::pattern(5000 + i * 37, i);
    q.append(reinterpret_cast<const uint8_t*>(piece.data()), piece.size());
    expect += piece;
    std::string buf(7000, '\0');
    size_t n = q.read(reinterpret_cast<uint8_t*>(buf.data()), buf.size());
    got.append(buf.data(), n);
  }
  got += drain(q, 3000);
  EXPECT_EQ(got, expect);
  EXPECT_LE(pool.pooled(), 8u);
  pool.trim();
  EXPECT_EQ(pool.pooled(), 0u);
}

TEST(ChunkQueueTest, OutlivesItsPoolAndClears) {
  ChunkQueue q;
  {
    ChunkPool pool(2);
    q.setPool(&pool);
    std::string d(40000, 'x');
    q.append(reinterpret_cast<const uint8_t*>(d.data()), d.size());
    q.setPool(nullptr);  // what the connection does when it goes away first
  }
  std::string d(100, 'y');
  q.append(reinterpret_cast<const uint8_t*>(d.data()), d.size());
  EXPECT_EQ(q.size(), 40100u);
  q.clear();
  EXPECT_TRUE(q.empty());
}

TEST(ByteBufTest, AppendConsumeAndGrow) {
  ByteBuf b;
  EXPECT_TRUE(b.empty());
  std::string all;
  for (int i = 0; i < 50; ++i) {
    std::string piece = ugate::test::pattern(1000 + i * 100, i);
    b.append(reinterpret_cast<const uint8_t*>(piece.data()), piece.size());
    all += piece;
    if (i % 3 == 0) {
      b.consume(700);
      all.erase(0, 700);
    }
    ASSERT_EQ(std::string(reinterpret_cast<char*>(b.data()), b.size()), all);
  }
  uint8_t* t = b.tail(10);
  memcpy(t, "0123456789", 10);
  b.commit(10);
  all += "0123456789";
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b.data()), b.size()), all);
  b.consume(b.size());
  EXPECT_TRUE(b.empty());
  b.reset();
  EXPECT_EQ(b.capacity(), 0u);
}

}  // namespace
}  // namespace ugate::http
