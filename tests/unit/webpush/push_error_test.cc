#include "webpush/push_error.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace ugate::webpush {
namespace {

TEST(PushErrorTest, EveryCodeHasItsOwnSnakeCaseReason) {
  std::set<std::string> seen;
  for (int c = 0; c <= static_cast<int>(PushErrc::Internal); ++c) {
    std::string reason(pushErrcReason(static_cast<PushErrc>(c)));
    EXPECT_NE(reason, "unknown") << c;
    EXPECT_TRUE(seen.insert(reason).second) << "reason used twice: " << reason;
    for (char ch : reason) EXPECT_TRUE((ch >= 'a' && ch <= 'z') || ch == '_') << reason;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(PushErrc::Internal) + 1);
  PushError e = pushError(PushErrc::WrongAudience, "aud is https://a");
  EXPECT_EQ(e.reason(), "wrong_audience");
  EXPECT_EQ(e.detail, "aud is https://a");
}

}  // namespace
}  // namespace ugate::webpush
