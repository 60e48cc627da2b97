#include "quic/cid.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace ugate::quic {
namespace {

TEST(Cid, EncodesTheWorkerAndIsNotLinkable) {
  CidCodec codec;
  std::set<std::vector<uint8_t>> seen;
  for (uint16_t w : {0, 1, 7, 65535}) {
    for (int i = 0; i < 50; ++i) {
      std::array<uint8_t, CidCodec::kLen> cid{};
      codec.make(w, cid);
      ASSERT_EQ(codec.workerOf(cid), w);
      EXPECT_TRUE(seen.insert({cid.begin(), cid.end()}).second);  // never the same twice
    }
  }
  // Two CIDs of one worker share no visible prefix: the worker is inside the encrypted block.
  std::array<uint8_t, CidCodec::kLen> a{}, b{};
  int samePrefix = 0;
  for (int i = 0; i < 64; ++i) {
    codec.make(3, a);
    codec.make(3, b);
    if (a[0] == b[0] && a[1] == b[1]) ++samePrefix;
  }
  EXPECT_LT(samePrefix, 8);  // by chance 64/65536 expected: far below
}

TEST(Cid, OtherCidsAreNotOurs) {
  CidCodec codec, other;
  std::array<uint8_t, CidCodec::kLen> cid{};
  other.make(1, cid);
  int claimed = 0;
  for (int i = 0; i < 200; ++i) {
    other.make(1, cid);
    if (codec.workerOf(cid)) ++claimed;  // another process's key: random to us
  }
  EXPECT_LT(claimed, 3);
  std::vector<uint8_t> shortCid(8, 0x11), longCid(18, 0x22);
  EXPECT_FALSE(codec.workerOf(shortCid));
  EXPECT_FALSE(codec.workerOf(longCid));
}

TEST(Cid, FixedKeyIsDeterministicInTheCheck) {
  CidCodec::Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i);
  CidCodec a(k), b(k);
  std::array<uint8_t, CidCodec::kLen> cid{};
  a.make(42, cid);
  EXPECT_EQ(b.workerOf(cid), 42);  // same key: another codec object reads it (every worker)
}

}  // namespace
}  // namespace ugate::quic
