// gRPC status codes, their names, the grpc-status/grpc-message trailers and grpc-message's
// percent-encoding (the spec's rules and examples).
#include "xds/grpc_status.h"

#include <gtest/gtest.h>

namespace ugate::xds::grpc {
namespace {

TEST(GrpcStatusTest, NamesOfEveryCode) {
  EXPECT_EQ(codeName(Code::Ok), "OK");
  EXPECT_EQ(codeName(Code::Cancelled), "CANCELLED");
  EXPECT_EQ(codeName(Code::InvalidArgument), "INVALID_ARGUMENT");
  EXPECT_EQ(codeName(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
  EXPECT_EQ(codeName(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(codeName(Code::FailedPrecondition), "FAILED_PRECONDITION");
  EXPECT_EQ(codeName(Code::Unimplemented), "UNIMPLEMENTED");
  EXPECT_EQ(codeName(Code::Unavailable), "UNAVAILABLE");
  EXPECT_EQ(codeName(Code::Unauthenticated), "UNAUTHENTICATED");
  EXPECT_EQ(codeName(static_cast<Code>(17)), "UNKNOWN");
  for (int i = 0; i <= kMaxCode; ++i) {
    EXPECT_EQ(parseCode(std::to_string(i)), static_cast<Code>(i));
  }
}

TEST(GrpcStatusTest, PercentEncodingPerSpec) {
  EXPECT_EQ(percentEncode("plain text, ok!"), "plain text, ok!");
  EXPECT_EQ(percentEncode("100%"), "100%25");
  EXPECT_EQ(percentEncode("a\nb\tc"), "a%0Ab%09c");
  EXPECT_EQ(percentEncode("\x7f"), "%7F");
  // UTF-8 bytes are encoded one by one: "café" and U+1F600.
  EXPECT_EQ(percentEncode("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(percentEncode("\xf0\x9f\x98\x80"), "%F0%9F%98%80");
  EXPECT_EQ(percentEncode(std::string("\0", 1)), "%00");
}

TEST(GrpcStatusTest, PercentDecodingIsLenient) {
  EXPECT_EQ(percentDecode("caf%C3%A9"), "caf\xc3\xa9");
  EXPECT_EQ(percentDecode("caf%c3%a9"), "caf\xc3\xa9");
  EXPECT_EQ(percentDecode("100%25"), "100%");
  EXPECT_EQ(percentDecode("50%"), "50%");
  EXPECT_EQ(percentDecode("%4"), "%4");
  EXPECT_EQ(percentDecode("%zz%41"), "%zzA");
  for (std::string_view s : {"", "x", "%", "tab\there", "\xff\x01 %%", "\xe2\x82\xac 5"}) {
    EXPECT_EQ(percentDecode(percentEncode(s)), s);
  }
}

TEST(GrpcStatusTest, Trailers) {
  Headers ok = statusTrailers({});
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0], (std::pair<std::string, std::string>{"grpc-status", "0"}));
  Headers err = statusTrailers({Code::ResourceExhausted, "too big: 5 MiB > 4 MiB\n"});
  ASSERT_EQ(err.size(), 2u);
  EXPECT_EQ(err[0].second, "8");
  EXPECT_EQ(err[1],
            (std::pair<std::string, std::string>{"grpc-message", "too big: 5 MiB > 4 MiB%0A"}));
  EXPECT_EQ(statusFromTrailers(err), (Status{Code::ResourceExhausted, "too big: 5 MiB > 4 MiB\n"}));
  EXPECT_EQ(statusFromTrailers({}).code, Code::Unknown);
}

TEST(GrpcStatusTest, BadStatusValuesAreUnknown) {
  for (std::string_view bad : {"", "17", "-1", "+1", " 1", "1 ", "0x1", "1000", "999"}) {
    EXPECT_EQ(parseCode(bad), Code::Unknown) << bad;
  }
  EXPECT_EQ(parseCode("014"), Code::Unavailable);
}

TEST(GrpcStatusTest, HttpStatusAndResetsWithoutGrpcStatus) {
  EXPECT_EQ(codeFromHttpStatus(400), Code::Internal);
  EXPECT_EQ(codeFromHttpStatus(401), Code::Unauthenticated);
  EXPECT_EQ(codeFromHttpStatus(403), Code::PermissionDenied);
  EXPECT_EQ(codeFromHttpStatus(404), Code::Unimplemented);
  EXPECT_EQ(codeFromHttpStatus(429), Code::Unavailable);
  EXPECT_EQ(codeFromHttpStatus(503), Code::Unavailable);
  EXPECT_EQ(codeFromHttpStatus(500), Code::Unknown);
  EXPECT_EQ(codeFromH2Error(0x0), Code::Internal);
  EXPECT_EQ(codeFromH2Error(0x7), Code::Unavailable);
  EXPECT_EQ(codeFromH2Error(0x8), Code::Cancelled);
  EXPECT_EQ(codeFromH2Error(0xb), Code::ResourceExhausted);
  EXPECT_EQ(codeFromH2Error(0xc), Code::PermissionDenied);
}

}  // namespace
}  // namespace ugate::xds::grpc
