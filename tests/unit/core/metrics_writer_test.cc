// MetricsWriter: the Prometheus text format of /stats, written once for core, the daemon and modules.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include <ugate/metrics.h>

namespace ugate {
namespace {

TEST(MetricsWriterTest, FamiliesSamplesAndLabels) {
  std::string out;
  MetricsWriter m(out);
  m.counter("ugate_x_total", "Things counted.", 3);
  m.family("ugate_y", "gauge", "Ys by kind.");
  m.sample("ugate_y", {{"kind", "a"}, {"side", "server"}}, uint64_t{7});
  m.sample("ugate_y", 0);
  EXPECT_EQ(out,
            "# HELP ugate_x_total Things counted.\n# TYPE ugate_x_total counter\nugate_x_total 3\n"
            "# HELP ugate_y Ys by kind.\n# TYPE ugate_y gauge\n"
            "ugate_y{kind=\"a\",side=\"server\"} 7\nugate_y 0\n");
}

TEST(MetricsWriterTest, LabelValuesAreEscaped) {
  std::string out;
  MetricsWriter(out).sample("m", {{"listener", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(out, "m{listener=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsWriterTest, AnyIntegerIncludingNegativeGaugesAndTheExtremes) {
  std::string out;
  MetricsWriter m(out);
  m.gauge("left_seconds", "Seconds left.", int64_t{-42});
  m.sample("big", std::numeric_limits<uint64_t>::max());
  m.sample("small", std::numeric_limits<int64_t>::min());
  m.sample("flag", true ? 1 : 0);
  EXPECT_NE(out.find("left_seconds -42\n"), std::string::npos) << out;
  EXPECT_NE(out.find("big 18446744073709551615\n"), std::string::npos) << out;
  EXPECT_NE(out.find("small -9223372036854775808\n"), std::string::npos) << out;
  EXPECT_NE(out.find("flag 1\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace ugate
