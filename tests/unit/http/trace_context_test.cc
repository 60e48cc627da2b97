// W3C Trace Context and Baggage header checks: the specifications' examples and the cases of the
// W3C trace-context test suite (test/test.py), plus the limits.
#include "http/trace_context.h"

#include <gtest/gtest.h>

#include <string>

namespace ugate::http {
namespace {

TEST(TraceparentTest, SpecExamplesAreValid) {
  EXPECT_EQ(traceparentError("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), nullptr);
  EXPECT_EQ(traceparentError("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), nullptr);
  EXPECT_EQ(traceparentError("00-12345678901234567890123456789012-1234567890123456-ff"), nullptr);  // any flags
}

TEST(TraceparentTest, MalformedValuesNameTheirFault) {
  const std::string tid = "4bf92f3577b34da6a3ce929d0e0e4736", pid = "00f067aa0ba902b7";
  EXPECT_STREQ(traceparentError(""), "shorter than 55 characters");
  EXPECT_STREQ(traceparentError("00-" + tid + "-" + pid), "shorter than 55 characters");
  EXPECT_STREQ(traceparentError("0x-" + tid + "-" + pid + "-01"), "version is not 2 lowercase hex digits");
  EXPECT_STREQ(traceparentError("ff-" + tid + "-" + pid + "-01"), "version ff is forbidden");
  EXPECT_STREQ(traceparentError("00_" + tid + "-" + pid + "-01"), "fields not separated by '-'");
  EXPECT_STREQ(traceparentError("00-" + tid + "_" + pid + "-01"), "fields not separated by '-'");
  EXPECT_STREQ(traceparentError("00-4BF92F3577B34DA6A3CE929D0E0E4736-" + pid + "-01"),
               "trace-id is not 32 lowercase hex digits");
  EXPECT_STREQ(traceparentError("00-4bf92f3577b34da6a3ce929d0e0e473.-" + pid + "-01"),
               "trace-id is not 32 lowercase hex digits");
  EXPECT_STREQ(traceparentError("00-00000000000000000000000000000000-" + pid + "-01"), "trace-id is all zeros");
  EXPECT_STREQ(traceparentError("00-" + tid + "-00F067AA0BA902B7-01"), "parent-id is not 16 lowercase hex digits");
  EXPECT_STREQ(traceparentError("00-" + tid + "-0000000000000000-01"), "parent-id is all zeros");
  EXPECT_STREQ(traceparentError("00-" + tid + "-" + pid + "-0g"), "trace-flags is not 2 lowercase hex digits");
}

// test_traceparent_version_0x00 / test_traceparent_version_0xcc of the W3C test suite.
TEST(TraceparentTest, OnlyLaterVersionsMayGrow) {
  const std::string base = "12345678901234567890123456789012-1234567890123456-01";
  EXPECT_STREQ(traceparentError("00-" + base + "."), "version 00 has data after trace-flags");
  EXPECT_STREQ(traceparentError("00-" + base + "-what-the-future-will-be-like"), "version 00 has data after trace-flags");
  EXPECT_EQ(traceparentError("cc-" + base), nullptr);
  EXPECT_EQ(traceparentError("cc-" + base + "-what-the-future-will-be-like"), nullptr);
  EXPECT_STREQ(traceparentError("cc-" + base + ".what-the-future-will-be-like"), "no '-' after trace-flags");
  EXPECT_STREQ(traceparentError("cc-" + base + "-what the future"), "space or control character after trace-flags");
}

TEST(TracestateTest, ValidLists) {
  EXPECT_EQ(tracestateError("congo=t61rcWkgMzE"), nullptr);
  EXPECT_EQ(tracestateError("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), nullptr);
  EXPECT_EQ(tracestateError("rojo=00f067aa0ba902b7 ,\tcongo=t61rcWkgMzE"), nullptr);  // OWS around ','
  EXPECT_EQ(tracestateError("fw529a3039@dt=ZmVkZWQ,1tenant@vendor_x=a b"), nullptr);  // multi-tenant keys
  EXPECT_EQ(tracestateError("a=1,,b=2,"), nullptr);                                  // empty members
  EXPECT_EQ(tracestateError("k*/_-9=v"), nullptr);
}

TEST(TracestateTest, InvalidLists) {
  EXPECT_STREQ(tracestateError("Rojo=1"), "invalid key");          // keys are lower case
  EXPECT_STREQ(tracestateError("1abc=1"), "invalid key");          // a simple key starts with a letter
  EXPECT_STREQ(tracestateError("t@Vendor=1"), "invalid key");
  EXPECT_STREQ(tracestateError("t@abcdefghijklmno=1"), "invalid key");  // system-id: at most 14
  EXPECT_STREQ(tracestateError("rojo"), "list-member without '='");
  EXPECT_STREQ(tracestateError("a=b=c"), "invalid value");
  EXPECT_STREQ(tracestateError("a="), "invalid value");
  EXPECT_STREQ(tracestateError("a=caf\xc3\xa9"), "invalid value");
  EXPECT_STREQ(tracestateError("a=" + std::string(257, 'x')), "invalid value");
  EXPECT_EQ(tracestateError("a=" + std::string(256, 'x')), nullptr);
  std::string many;
  for (int i = 0; i < 32; ++i) many += (i ? ",k" : "k") + std::to_string(i) + "=v";
  EXPECT_EQ(tracestateError(many), nullptr);
  EXPECT_STREQ(tracestateError(many + ",k32=v"), "more than 32 list-members");
}

TEST(BaggageTest, SpecExamplesAreValid) {
  EXPECT_EQ(baggageError("userId=alice,serverNode=DF%2028,isProduction=false"), nullptr);
  EXPECT_EQ(baggageError("key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"),
            nullptr);
  EXPECT_EQ(baggageError("k="), nullptr);  // an empty value is allowed
  EXPECT_EQ(baggageError("k=v\t,\tj=w"), nullptr);
}

TEST(BaggageTest, InvalidHeaders) {
  EXPECT_STREQ(baggageError(""), "empty list-member");
  EXPECT_STREQ(baggageError("a=1,,b=2"), "empty list-member");
  EXPECT_STREQ(baggageError("=value"), "empty key");
  EXPECT_STREQ(baggageError("key"), "list-member without '='");
  EXPECT_STREQ(baggageError("ke y=v"), "key is not a token");
  EXPECT_STREQ(baggageError("k=value 2"), "value has a character outside baggage-octet");
  EXPECT_STREQ(baggageError("k=\"q\""), "value has a character outside baggage-octet");
  EXPECT_STREQ(baggageError("k=a\\b"), "value has a character outside baggage-octet");
  EXPECT_STREQ(baggageError("k=v;"), "empty property");
  EXPECT_STREQ(baggageError("k=v;p=x y"), "value has a character outside baggage-octet");
  EXPECT_STREQ(baggageError("k=v;=x"), "empty key");
}

TEST(BaggageTest, Limits) {
  std::string members;
  for (int i = 0; i < 180; ++i) members += (i ? ",k" : "k") + std::to_string(i) + "=v";
  EXPECT_EQ(baggageError(members), nullptr);
  EXPECT_STREQ(baggageError(members + ",k180=v"), "more than 180 list-members");
  std::string big = "k=" + std::string(kMaxBaggageBytes - 2, 'v');
  EXPECT_EQ(baggageError(big), nullptr);
  EXPECT_STREQ(baggageError(big + "v"), "longer than 8192 bytes");
}

TEST(TakeTraceContextTest, KeepsValidFieldsAndSaysWhyOthersAreDropped) {
  auto from = [](std::string tp, std::string ts, std::string bg) {
    return takeTraceContext([=](std::string_view n) { return n == "traceparent" ? tp : n == "tracestate" ? ts : bg; });
  };
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto all = from(tp, "congo=t61rcWkgMzE", "k=v");
  ASSERT_EQ(all.size(), 3u);
  for (const auto& f : all) EXPECT_EQ(f.why, nullptr) << f.name;
  EXPECT_EQ(all[0].name, "traceparent");
  EXPECT_EQ(all[1].value, "congo=t61rcWkgMzE");

  // A tracestate without a valid traceparent is dropped; baggage stands on its own.
  auto noTp = from("", "congo=t61rcWkgMzE", "k=v");
  ASSERT_EQ(noTp.size(), 2u);
  EXPECT_STREQ(noTp[0].why, "no valid traceparent");
  EXPECT_EQ(noTp[1].why, nullptr);
  auto badTp = from("00-" + std::string(32, '0') + "-00f067aa0ba902b7-01", "congo=x", "");
  ASSERT_EQ(badTp.size(), 2u);
  EXPECT_STREQ(badTp[0].why, "trace-id is all zeros");
  EXPECT_STREQ(badTp[1].why, "no valid traceparent");
  // Two traceparent fields joined are not one traceparent.
  EXPECT_NE(from(tp + "," + tp, "", "")[0].why, nullptr);
  EXPECT_TRUE(from("", "", "").empty());
}

}  // namespace
}  // namespace ugate::http
