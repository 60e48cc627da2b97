// MetricsWriter: the Prometheus text format of /stats, written once for core, the daemon and modules.
#include <gtest/gtest.h>

#include <algorithm>
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

TEST(MetricsWriterTest, LatencyHistogramsAreCumulativeWithSumInSeconds) {
  LatencyHistogram h;
  h.observe(0);            // le 0.0005
  h.observe(500);          // le 0.0005: bounds are inclusive
  h.observe(501);          // le 0.001
  h.observe(2'000'000);    // le 2.5
  h.observe(900'000'000);  // over 600 s: +Inf only
  HistogramValues v;
  v.add(h);
  EXPECT_EQ(v.buckets[0], 2u);
  EXPECT_EQ(v.buckets[1], 1u);
  EXPECT_EQ(v.buckets[kLatencyBuckets - 1], 1u);
  HistogramValues twice = v;
  twice.add(v);  // summed across workers
  EXPECT_EQ(twice.sumUs, 2 * v.sumUs);
  std::string out;
  MetricsWriter m(out);
  m.family("t_seconds", "histogram", "T.");
  m.latency("t_seconds", {"route", "a\"b"}, v);
  EXPECT_EQ(out.rfind("# HELP t_seconds T.\n# TYPE t_seconds histogram\n"
                      "t_seconds_bucket{route=\"a\\\"b\",le=\"0.0005\"} 2\n"
                      "t_seconds_bucket{route=\"a\\\"b\",le=\"0.001\"} 3\n", 0), 0u) << out;
  EXPECT_NE(out.find("t_seconds_bucket{route=\"a\\\"b\",le=\"1\"} 3\n"
                     "t_seconds_bucket{route=\"a\\\"b\",le=\"2.5\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_seconds_bucket{route=\"a\\\"b\",le=\"600\"} 4\n"
                     "t_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 5\n"
                     "t_seconds_sum{route=\"a\\\"b\"} 902.001001\n"
                     "t_seconds_count{route=\"a\\\"b\"} 5\n"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2 + static_cast<long>(kLatencyBuckets) + 2);
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
