#include <ugate/metrics.h>

namespace ugate {

void MetricValue::appendTo(std::string& out) const {
  if (neg_) out.push_back('-');
  out += std::to_string(abs_);
}

void MetricsWriter::appendLabelValue(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c);
  }
}

void MetricsWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void MetricsWriter::sample(std::string_view name, std::initializer_list<MetricLabel> labels, MetricValue value) {
  out_ += name;
  if (labels.size() != 0) {
    char sep = '{';
    for (const MetricLabel& l : labels) {
      out_ += sep;
      out_ += l.name;
      out_ += "=\"";
      appendLabelValue(out_, l.value);
      out_ += '"';
      sep = ',';
    }
    out_ += '}';
  }
  out_ += ' ';
  value.appendTo(out_);
  out_ += '\n';
}

namespace {
// kLatencyLe: kLatencyBoundsUs as the `le` label values (seconds).
constexpr std::string_view kLatencyLe[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                           "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5",
                                           "5",      "10",    "60",     "600",   "+Inf"};
static_assert(std::size(kLatencyLe) == kLatencyBuckets);
}  // namespace

void MetricsWriter::latency(std::string_view name, MetricLabel label, const HistogramValues& h) {
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBuckets; ++i) {
    cumulative += h.buckets[i];
    sample(bucket, {label, {"le", kLatencyLe[i]}}, cumulative);
  }
  // The sum in seconds: sample() writes integers only.
  out_ += name;
  out_ += "_sum{";
  out_ += label.name;
  out_ += "=\"";
  appendLabelValue(out_, label.value);
  const std::string micros = std::to_string(1'000'000 + h.sumUs % 1'000'000);
  out_ += "\"} " + std::to_string(h.sumUs / 1'000'000) + "." + micros.substr(1) + "\n";
  sample(std::string(name) + "_count", {label}, cumulative);
}

void MetricsWriter::counter(std::string_view name, std::string_view help, MetricValue value) {
  family(name, "counter", help);
  sample(name, value);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, MetricValue value) {
  family(name, "gauge", help);
  sample(name, value);
}

}  // namespace ugate
