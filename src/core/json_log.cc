#include "core/json_log.h"

#include <ctime>

#include <ugate/json_writer.h>

namespace ugate {
namespace {

// kLevelNames: log.level's names, indexed by spdlog::level::level_enum.
constexpr std::string_view kLevelNames[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

class JsonLogFormatter final : public spdlog::formatter {
 public:
  // spdlog::formatter
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    line_.clear();
    const auto i = static_cast<size_t>(msg.level);
    appendJsonLogLine(line_, msg.time, i < std::size(kLevelNames) ? kLevelNames[i] : "off",
                      std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line_.data(), line_.data() + line_.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLogFormatter>(); }

 private:
  std::string line_;  // line_: reused per line (formatters are called under the sink's lock)
};

}  // namespace

void appendJsonLogLine(std::string& out, std::chrono::system_clock::time_point t, std::string_view level,
                       std::string_view message) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[40];
  const size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  const auto milli = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  out += '{';
  JsonFields f(out);
  f.str("time", std::string(stamp, n) + "." + std::to_string(1000 + milli).substr(1) + "Z");
  f.str("level", level);
  f.str("message", message);
  out += "}\n";
}

std::unique_ptr<spdlog::formatter> newJsonLogFormatter() { return std::make_unique<JsonLogFormatter>(); }

}  // namespace ugate
