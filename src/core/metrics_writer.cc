#include <ugate/metrics.h>

#include <map>
#include <vector>

#include <ugate/json_writer.h>

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

namespace {

// jsonNumber: v when it is a JSON number as the text format writes them, else "null".
std::string_view jsonNumber(std::string_view v) {
  size_t i = 0;
  if (i < v.size() && v[i] == '-') ++i;
  const size_t digits = i;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  if (i == digits || (v[digits] == '0' && i - digits > 1)) return "null";
  if (i < v.size() && v[i] == '.') {
    const size_t frac = ++i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == frac) return "null";
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    const size_t exp = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == exp) return "null";
  }
  return i == v.size() ? v : std::string_view("null");
}

struct JsonMetric {
  std::string type, help;
  std::string samples;  // JSON objects, comma-separated
};

// parseLabels reads `{a="x",b="y"}` at text[i] (i at '{') into a JSON object; false when malformed.
bool parseLabels(std::string_view line, size_t& i, std::string& out) {
  out += '{';
  ++i;  // '{'
  bool first = true;
  while (i < line.size() && line[i] != '}') {
    const size_t eq = line.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return false;
    std::string value;
    size_t j = eq + 2;
    for (; j < line.size() && line[j] != '"'; ++j) {
      if (line[j] == '\\' && j + 1 < line.size()) {
        ++j;
        value.push_back(line[j] == 'n' ? '\n' : line[j]);
      } else {
        value.push_back(line[j]);
      }
    }
    if (j >= line.size()) return false;
    if (!first) out += ',';
    first = false;
    appendJsonString(out, line.substr(i, eq - i));
    out += ':';
    appendJsonString(out, value);
    i = j + 1;
    if (i < line.size() && line[i] == ',') ++i;
  }
  if (i >= line.size()) return false;
  ++i;  // '}'
  out += '}';
  return true;
}

}  // namespace

std::string metricsTextToJson(std::string_view text) {
  std::vector<std::string> order;
  std::map<std::string, JsonMetric, std::less<>> metrics;
  std::map<std::string, std::pair<std::string, std::string>, std::less<>> families;  // name -> type, help
  std::string family;  // the family of the last # TYPE line
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      std::string_view rest = line.substr(7);
      const size_t sp = rest.find(' ');
      std::string name(rest.substr(0, sp));
      std::string_view what = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
      auto& f = families[name];
      (line[2] == 'H' ? f.second : f.first) = std::string(what);
      family = name;
      continue;
    }
    if (line[0] == '#') continue;
    size_t i = 0;
    auto nameChar = [](char c, bool first) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
    };
    while (i < line.size() && nameChar(line[i], i == 0)) ++i;
    if (i == 0) continue;
    std::string name(line.substr(0, i));
    std::string sample = "{\"labels\":";
    if (i < line.size() && line[i] == '{') {
      if (!parseLabels(line, i, sample)) continue;
    } else {
      sample += "{}";
    }
    if (i >= line.size() || line[i] != ' ') continue;
    std::string_view value = line.substr(i + 1);
    if (const size_t sp = value.find(' '); sp != std::string_view::npos) value = value.substr(0, sp);  // a timestamp
    const std::string_view number = jsonNumber(value);
    if (number == "null" && value != "NaN" && value != "+Inf" && value != "-Inf") continue;  // no sample
    sample += ",\"value\":";
    sample += number;
    sample += '}';
    auto [it, fresh] = metrics.try_emplace(name);
    if (fresh) {
      order.push_back(name);
      // Its family: its own name, else the current family when the name extends it (_bucket, ...).
      auto f = families.find(name);
      if (f == families.end() && !family.empty() && name.starts_with(family)) f = families.find(family);
      if (f != families.end()) {
        it->second.type = f->second.first;
        it->second.help = f->second.second;
      }
    } else {
      it->second.samples += ',';
    }
    it->second.samples += sample;
  }
  std::string out = "{\"metrics\":{";
  for (size_t k = 0; k < order.size(); ++k) {
    const JsonMetric& m = metrics[order[k]];
    if (k) out += ",\n";
    appendJsonString(out, order[k]);
    out += ":{\"type\":";
    appendJsonString(out, m.type.empty() ? "untyped" : m.type);
    out += ",\"help\":";
    appendJsonString(out, m.help);
    out += ",\"samples\":[";
    out += m.samples;
    out += "]}";
  }
  out += "}}\n";
  return out;
}

}  // namespace ugate
