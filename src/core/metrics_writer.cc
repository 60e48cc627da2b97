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

void MetricsWriter::counter(std::string_view name, std::string_view help, MetricValue value) {
  family(name, "counter", help);
  sample(name, value);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, MetricValue value) {
  family(name, "gauge", help);
  sample(name, value);
}

}  // namespace ugate
