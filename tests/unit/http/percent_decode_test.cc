// herald::http::PercentDecode: query-string components as browsers and curl encode them.
#include "server/http/percent_decode.h"

#include "gtest/gtest.h"

namespace herald::http {
namespace {

TEST(PercentDecodeTest, DecodesEscapesAndPlusAndKeepsTheRest) {
  EXPECT_EQ(PercentDecode(""), "");
  // Nothing to decode (a token: base64url and dots): the bytes as they are.
  EXPECT_EQ(PercentDecode("eyJhbGciOi.J9-_x.AbC"), "eyJhbGciOi.J9-_x.AbC");
  EXPECT_EQ(PercentDecode("a%20b+c"), "a b c");
  EXPECT_EQ(PercentDecode("%41%42%43"), "ABC");
  EXPECT_EQ(PercentDecode("x%2Fy%2fz"), "x/y/z");
  EXPECT_EQ(PercentDecode("%e2%82%ac"), "\xe2\x82\xac");
  // A '%' without two hex digits after it stays.
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%4"), "%4");
  EXPECT_EQ(PercentDecode("%zz1"), "%zz1");
  EXPECT_EQ(PercentDecode("ab%4"), "ab%4");
  EXPECT_EQ(PercentDecode("+"), " ");
}

}  // namespace
}  // namespace herald::http
