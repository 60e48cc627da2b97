#pragma once
// MetricsWriter: the Prometheus text format (0.0.4) of /stats. Core, the daemon and every module write
// through it, so the HELP/TYPE lines and label escaping exist once.
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <ugate/stats.h>

namespace ugate {

/** MetricLabel: one label of a sample; the value is escaped when written. */
struct MetricLabel {
  std::string_view name;
  std::string_view value;
};

/** MetricValue: a sample's value, any integer (negative gauges, such as seconds left, included). */
class MetricValue {
 public:
  template <std::integral T>
  MetricValue(T v) : neg_(v < 0), abs_(v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v)) {}  // NOLINT
  void appendTo(std::string& out) const;

 private:
  bool neg_;
  uint64_t abs_;
};

class MetricsWriter {
 public:
  explicit MetricsWriter(std::string& out) : out_(out) {}
  /** family writes a family's "# HELP" and "# TYPE" lines; type is "counter", "gauge" or "histogram". */
  void family(std::string_view name, std::string_view type, std::string_view help);
  /** sample writes `name{labels} value`. */
  void sample(std::string_view name, std::initializer_list<MetricLabel> labels, MetricValue value);
  void sample(std::string_view name, MetricValue value) { sample(name, {}, value); }
  /**
   * latency writes one latency histogram's samples (after family(name, "histogram", ...)):
   * `name_bucket{label,le="0.0005"}` ... `le="+Inf"` (cumulative, bounds kLatencyBoundsUs in
   * seconds), `name_sum{label}` in seconds (microsecond precision) and `name_count{label}`.
   */
  void latency(std::string_view name, MetricLabel label, const HistogramValues& h);
  /** counter and gauge: a family of one sample without labels. */
  void counter(std::string_view name, std::string_view help, MetricValue value);
  void gauge(std::string_view name, std::string_view help, MetricValue value);
  /** appendLabelValue escapes backslash, double quote and newline as the format requires. */
  static void appendLabelValue(std::string& out, std::string_view v);

 private:
  std::string& out_;
};

/**
 * metricsTextToJson: /stats as JSON (the admin's /stats.json, what the stats page reads), converted
 * from the text format this writer produces: `{"metrics": {"<sample name>": {"type", "help",
 * "samples": [{"labels": {...}, "value": N}]}}}` in the order of the text. A sample's type and help
 * are those of the family it belongs to (a histogram's `_bucket`, `_sum` and `_count` samples each
 * get an entry of their own with the family's type). Values that are not JSON numbers (NaN, +Inf)
 * become null; lines it does not understand are skipped. Sans I/O.
 */
std::string metricsTextToJson(std::string_view text);

}  // namespace ugate
