// LogThrottle: one line per interval, the rest counted and reported with the next line.
#include <ugate/log_throttle.h>

#include <gtest/gtest.h>

namespace ugate {
namespace {

TEST(LogThrottle, FirstLineThenOnePerIntervalWithTheCountLeftOut) {
  LogThrottle t(Duration(10'000));
  const MonotonicTime t0 = MonotonicTime{} + std::chrono::hours(1);
  uint64_t left = 99;
  ASSERT_TRUE(t.allow(t0, left));
  EXPECT_EQ(left, 0u);
  for (int i = 1; i <= 7; ++i) {
    left = 99;
    EXPECT_FALSE(t.allow(t0 + Duration(i * 1000), left));
    EXPECT_EQ(left, 99u) << "untouched when not allowed";
  }
  ASSERT_TRUE(t.allow(t0 + Duration(10'000), left));
  EXPECT_EQ(left, 7u);
  // Quiet for a long time: the next event is logged at once, with nothing left out.
  ASSERT_TRUE(t.allow(t0 + Duration(3'600'000), left));
  EXPECT_EQ(left, 0u);
  EXPECT_FALSE(t.allow(t0 + Duration(3'609'999), left));
  ASSERT_TRUE(t.allow(t0 + Duration(3'610'000), left));
  EXPECT_EQ(left, 1u);
}

TEST(LogThrottle, AnEventAtTheEpochOfTheClockIsStillLogged) {
  LogThrottle t(Duration(1000));
  uint64_t left = 0;
  EXPECT_TRUE(t.allow(MonotonicTime{}, left));
  EXPECT_FALSE(t.allow(MonotonicTime{} + Duration(999), left));
}

}  // namespace
}  // namespace ugate
