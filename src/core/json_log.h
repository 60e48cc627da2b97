#pragma once
// The daemon log as JSON lines (log.format "json"): one object per line with `time`, `level` and
// `message`, for log shippers that parse JSON rather than a text pattern.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

namespace ugate {

/**
 * appendJsonLogLine appends `{"time":"2026-01-02T03:04:05.678Z","level":"info","message":"..."}`
 * and a newline to out (sans-I/O). The time is UTC with milliseconds, like the text format; the
 * message is escaped (control characters, quotes, invalid UTF-8), so a line never breaks in two.
 */
void appendJsonLogLine(std::string& out, std::chrono::system_clock::time_point t, std::string_view level,
                       std::string_view message);

/** newJsonLogFormatter: an spdlog formatter writing appendJsonLogLine lines (level names as log.level's). */
std::unique_ptr<spdlog::formatter> newJsonLogFormatter();

}  // namespace ugate
