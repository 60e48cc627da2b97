#pragma once
// The JSON helpers of config parsing, for modules' own sections and listener options (in their
// *_config.cc files, the only ones besides src/core/config.cc that include nlohmann/json.hpp). Each
// validates one value and names its JSON path in the error: `fail` throws a ConfigError that the
// caller's ConfigErrors::attempt records, so one broken element does not hide the errors of others.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <ugate/config.h>
#include <ugate/time.h>

namespace ugate::cfgjson {

/** ConfigError: "path: reason", thrown by the helpers below; never leaves config parsing. */
struct ConfigError {
  std::string msg;
};

/** ConfigErrors: every error of one config, one per element, in the order found. */
class ConfigErrors {
 public:
  /** attempt runs fn; a ConfigError it throws is recorded. Returns whether fn succeeded. */
  bool attempt(const std::function<void()>& fn);
  /** add records "path: why". */
  void add(const std::string& path, const std::string& why) { msgs_.push_back(path + ": " + why); }
  bool empty() const { return msgs_.empty(); }
  /** joined: one error per line, in the order found. */
  std::string joined() const;

 private:
  std::vector<std::string> msgs_;
};

/**
 * eachElement runs parse(element, index, path) on every element of the array root[key] (absent:
 * none), each on its own. Returns the names of the elements that failed (their path when
 * unnamed), so references to them are not reported again.
 */
std::set<std::string> eachElement(const nlohmann::json& root, const std::string& key, ConfigErrors& errs,
                                  const std::function<void(const nlohmann::json&, size_t, const std::string&)>& parse);

[[noreturn]] void fail(const std::string& path, const std::string& why);
std::string typeName(const nlohmann::json& j);
/** checkKeys: j is an object with no key outside `keys` (the error lists the known ones). */
void checkKeys(const nlohmann::json& j, const std::string& path, std::initializer_list<std::string_view> keys);
std::string getString(const nlohmann::json& j, const std::string& path);
int64_t getInt(const nlohmann::json& j, const std::string& path, int64_t lo, int64_t hi);
bool getBool(const nlohmann::json& j, const std::string& path);
/** getDuration: "250ms", "10s", "5m", "1h" or a number of seconds. */
Duration getDuration(const nlohmann::json& j, const std::string& path);
/** getStringList: a string or an array of strings. */
std::vector<std::string> getStringList(const nlohmann::json& j, const std::string& path);
/** parsePorts: a port, "lo-hi", or an array of them. */
std::vector<PortRange> parsePorts(const nlohmann::json& j, const std::string& path);
/** parseNodeIds: node IDs (a string or an array), normalised to upper case. */
std::vector<std::string> parseNodeIds(const nlohmann::json& j, const std::string& path);
/** parsePeerIds: node IDs (upper-cased) or spiffe:// IDs, and "*" (any authenticated peer) if star. */
std::vector<std::string> parsePeerIds(const nlohmann::json& j, const std::string& path, bool star);

}  // namespace ugate::cfgjson
