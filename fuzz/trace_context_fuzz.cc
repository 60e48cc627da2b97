// libFuzzer target for the W3C traceparent, tracestate and baggage checks (src/http/trace_context.cc).
// The first byte picks the header; the rest is its value. Contract checked: no crash or overread on
// any input; an accepted traceparent has the version-format layout (55 characters of version 00, or
// a longer later version continued by '-'); an accepted baggage stays within its limits and holds no
// character a baggage value may not carry outside its separators; an accepted tracestate is
// printable ASCII.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/trace_context.h"

namespace {

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

bool printable(std::string_view v) {
  for (char c : v) {
    if (c != '\t' && (c < 0x20 || c > 0x7e)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view v(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace ugate::http;
  switch (data[0] % 3) {
    case 0:
      if (traceparentError(v) == nullptr) {
        check(v.size() >= 55 && v[2] == '-' && v[35] == '-' && v[52] == '-');
        check(v.substr(0, 2) != "00" || v.size() == 55);
        check(v.size() == 55 || v[55] == '-');
        check(printable(v));
      }
      break;
    case 1:
      if (tracestateError(v) == nullptr) check(printable(v));
      break;
    default:
      if (baggageError(v) == nullptr) {
        check(!v.empty() && v.size() <= kMaxBaggageBytes && printable(v));
        check(v.find('"') == std::string_view::npos && v.find('\\') == std::string_view::npos);
      }
      break;
  }
  return 0;
}
