#include "auth/encoding.h"

#include <gtest/gtest.h>

namespace ugate::auth {
namespace {

TEST(EncodingTest, Base32Rfc4648VectorsWithoutPadding) {
  // RFC 4648 §10, padding stripped.
  EXPECT_EQ(base32Encode(asBytes("")), "");
  EXPECT_EQ(base32Encode(asBytes("f")), "MY");
  EXPECT_EQ(base32Encode(asBytes("fo")), "MZXQ");
  EXPECT_EQ(base32Encode(asBytes("foo")), "MZXW6");
  EXPECT_EQ(base32Encode(asBytes("foob")), "MZXW6YQ");
  EXPECT_EQ(base32Encode(asBytes("fooba")), "MZXW6YTB");
  EXPECT_EQ(base32Encode(asBytes("foobar")), "MZXW6YTBOI");
}

TEST(EncodingTest, Base64BothAlphabets) {
  EXPECT_EQ(base64Encode(asBytes("foobar")), "Zm9vYmFy");
  EXPECT_EQ(base64Encode(asBytes("fooba")), "Zm9vYmE=");
  EXPECT_EQ(base64Encode(asBytes("foob")), "Zm9vYg==");
  const uint8_t bin[] = {0xfb, 0xff, 0xfe};
  EXPECT_EQ(base64Encode(bin), "+//+");
  EXPECT_EQ(base64UrlEncode(bin), "-__-");
  EXPECT_EQ(base64UrlEncode(asBytes("fooba")), "Zm9vYmE");
}

TEST(EncodingTest, Base64DecodeAcceptsPaddingUrlAndWhitespace) {
  EXPECT_EQ(asString(*base64Decode("Zm9vYmE=")), "fooba");
  EXPECT_EQ(asString(*base64Decode("Zm9vYmE")), "fooba");
  EXPECT_EQ(asString(*base64Decode("Zm9v\nYmFy\n")), "foobar");
  EXPECT_EQ(*base64Decode("-__-"), (std::vector<uint8_t>{0xfb, 0xff, 0xfe}));
  EXPECT_FALSE(base64Decode("Zm9v!"));
  EXPECT_FALSE(base64Decode("Z"));
  EXPECT_FALSE(base64Decode("Zm=9"));
}

}  // namespace
}  // namespace ugate::auth
