// MetricsWriter: the Prometheus text format of /stats, written once for core, the daemon and modules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

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

namespace ugate {
namespace {

TEST(MetricsTextToJson, FamiliesSamplesLabelsAndEscapes) {
  std::string text;
  MetricsWriter m(text);
  m.counter("ugate_a_total", "A \"quoted\" help.", 5);
  m.family("ugate_b", "gauge", "B by listener.");
  m.sample("ugate_b", {{"listener", "we\"ird\\name\nx"}, {"reason", "ok"}}, -3);
  m.sample("ugate_b", {{"listener", "plain"}}, 0);
  const auto doc = nlohmann::json::parse(metricsTextToJson(text));
  const auto& a = doc["metrics"]["ugate_a_total"];
  EXPECT_EQ(a["type"], "counter");
  EXPECT_EQ(a["help"], "A \"quoted\" help.");
  ASSERT_EQ(a["samples"].size(), 1u);
  EXPECT_EQ(a["samples"][0]["labels"], nlohmann::json::object());
  EXPECT_EQ(a["samples"][0]["value"], 5);
  const auto& b = doc["metrics"]["ugate_b"];
  EXPECT_EQ(b["type"], "gauge");
  ASSERT_EQ(b["samples"].size(), 2u);
  EXPECT_EQ(b["samples"][0]["labels"]["listener"], "we\"ird\\name\nx");  // unescaped again
  EXPECT_EQ(b["samples"][0]["labels"]["reason"], "ok");
  EXPECT_EQ(b["samples"][0]["value"], -3);
  EXPECT_EQ(b["samples"][1]["labels"]["listener"], "plain");
}

TEST(MetricsTextToJson, HistogramSamplesTakeTheFamilysTypeAndOddValuesBecomeNull) {
  const std::string text =
      "# HELP ugate_h Latency.\n# TYPE ugate_h histogram\n"
      "ugate_h_bucket{le=\"0.5\"} 3\nugate_h_bucket{le=\"+Inf\"} 4\nugate_h_sum 1.25\nugate_h_count 4\n"
      "ugate_nan NaN\nugate_ts 7 1700000000000\nnot a {sample\n9bad 1\nugate_lead 01\n";
  const auto doc = nlohmann::json::parse(metricsTextToJson(text));
  const auto& m = doc["metrics"];
  EXPECT_EQ(m["ugate_h_bucket"]["type"], "histogram");
  EXPECT_EQ(m["ugate_h_bucket"]["samples"][1]["labels"]["le"], "+Inf");
  EXPECT_EQ(m["ugate_h_sum"]["samples"][0]["value"], 1.25);
  EXPECT_EQ(m["ugate_h_count"]["help"], "Latency.");
  EXPECT_TRUE(m["ugate_nan"]["samples"][0]["value"].is_null());
  EXPECT_EQ(m["ugate_nan"]["type"], "untyped");
  EXPECT_EQ(m["ugate_ts"]["samples"][0]["value"], 7);  // the timestamp is dropped
  EXPECT_FALSE(m.contains("ugate_lead"));  // 01 is no number of the format: no sample
  EXPECT_FALSE(m.contains("not"));
  EXPECT_FALSE(m.contains("9bad"));
}

TEST(MetricsTextToJson, EmptyAndGarbage) {
  EXPECT_EQ(nlohmann::json::parse(metricsTextToJson(""))["metrics"], nlohmann::json::object());
  EXPECT_NO_THROW(nlohmann::json::parse(metricsTextToJson("{{{\n\"\n# TYPE\n# HELP x\nx{a=\"\n")));
}

}  // namespace
}  // namespace ugate
