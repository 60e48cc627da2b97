#include "test_common/config_cases.h"

#include <gtest/gtest.h>

namespace ugate::test {

ConfigPtr parseOk(std::string_view json) {
  auto r = parseConfig(json, "test");
  EXPECT_TRUE(r.has_value()) << json << "\n -> " << (r ? "" : r.error().detail);
  return r ? *r : nullptr;
}

std::string parseErr(std::string_view json) {
  auto r = parseConfig(json, "test");
  EXPECT_FALSE(r.has_value()) << "accepted: " << json;
  if (r) return "";
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  return r.error().detail;
}

void expectConfigError(const ErrCase& c) {
  std::string got = parseErr(c.json);
  if (!c.message.empty() && c.message.back() == '*') {
    std::string prefix = c.message.substr(0, c.message.size() - 1);
    EXPECT_EQ(got.substr(0, prefix.size()), prefix) << c.json << "\n -> " << got;
  } else {
    EXPECT_EQ(got, c.message) << c.json;
  }
}

}  // namespace ugate::test
