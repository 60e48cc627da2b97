// The daemon log's JSON lines (log.format "json"): fields, time format, escaping.
#include "core/json_log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <spdlog/details/log_msg.h>

namespace ugate {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

TEST(JsonLogTest, OneObjectPerLineWithTimeLevelMessage) {
  std::string out;
  appendJsonLogLine(out, system_clock::time_point(milliseconds(1'767'323'045'678)), "info", "ugated ready");
  EXPECT_EQ(out, "{\"time\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"message\":\"ugated ready\"}\n");
  out.clear();
  appendJsonLogLine(out, system_clock::time_point(milliseconds(5)), "warn", "");
  EXPECT_EQ(out, "{\"time\":\"1970-01-01T00:00:00.005Z\",\"level\":\"warn\",\"message\":\"\"}\n");
}

TEST(JsonLogTest, MessagesAreEscapedSoALineNeverBreaks) {
  const std::string nasty = std::string("a \"quoted\" \\ line\nsecond\r\t\x01 \xff end") + '\0' + "nul";
  std::string out;
  appendJsonLogLine(out, system_clock::now(), "error", nasty);
  ASSERT_EQ(out.find('\n'), out.size() - 1) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["message"], "a \"quoted\" \\ line\nsecond\r\t\x01 \xEF\xBF\xBD end" + std::string(1, '\0') + "nul");
  EXPECT_EQ(j.size(), 3u);
}

TEST(JsonLogTest, FormatterNamesLevelsAsTheConfigDoes) {
  auto f = newJsonLogFormatter();
  auto line = [&](spdlog::level::level_enum l) {
    spdlog::details::log_msg msg("ugated", l, "x");
    spdlog::memory_buf_t buf;
    f->clone()->format(msg, buf);
    return nlohmann::json::parse(std::string(buf.data(), buf.size()));
  };
  EXPECT_EQ(line(spdlog::level::warn)["level"], "warn");
  EXPECT_EQ(line(spdlog::level::err)["level"], "error");
  EXPECT_EQ(line(spdlog::level::critical)["level"], "critical");
  EXPECT_EQ(line(spdlog::level::debug)["message"], "x");
}

}  // namespace
}  // namespace ugate
