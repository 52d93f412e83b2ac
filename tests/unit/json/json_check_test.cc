#include "server/json/json_check.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/support/timing.h"

namespace herald::json {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(CheckJsonTest, AcceptsDocumentsUpToTheDepthLimit) {
  EXPECT_TRUE(CheckJson(Nested(32), 32).ok());
  EXPECT_TRUE(CheckJson(R"({"a":{"b":[1,2,{"c":null}]}})", 4).ok());
  EXPECT_TRUE(CheckJson(" 17 ", 1).ok());
  absl::Status st = CheckJson(Nested(33), 32);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("nested deeper than 32 levels at byte 32"));
  EXPECT_FALSE(CheckJson(R"({"a":{"b":[{}]}})", 3).ok());
}

TEST(CheckJsonTest, RefusesWhatIsNotOneJsonValue) {
  for (const char* bad : {"", "{", "{not json", "[1,]", "{} {}", "\"\xff\"", "NaN", "[1] x"}) {
    absl::Status st = CheckJson(bad, 32);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(st.message(), HasSubstr("at byte")) << bad;
  }
}

// RapidJSON's memory stream reads a NUL byte as the end of the input, so `{}` followed by a NUL
// and anything at all would pass; no NUL byte is valid anywhere in JSON.
TEST(CheckJsonTest, RefusesANulByteAnywhere) {
  using std::string_literals::operator""s;
  for (const std::string& bad :
       {"{}\0"s, "{}\0garbage"s, "{\"a\":1}\0{\"a\":2}"s, "\"a\0b\""s, "\0"s, "[1,\0 2]"s}) {
    absl::Status st = CheckJson(bad, 32);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("at byte ", bad.find('\0')))) << bad;
  }
}

TEST(CheckJsonTest, NotesTheTopLevelKeysAndId) {
  JsonTopLevel top;
  ASSERT_TRUE(CheckJson(R"({"id":7,"subscribe":{"channel":"a","id":9}})", 32, &top).ok());
  EXPECT_EQ(top.id, 7u);
  EXPECT_THAT(top.keys, ElementsAre("id", "subscribe"));
  ASSERT_TRUE(CheckJson(R"({"id":"12","x":[{"id":3}]})", 32, &top).ok());
  EXPECT_EQ(top.id, 12u);
  ASSERT_TRUE(CheckJson(R"({"id":-1})", 32, &top).ok());
  EXPECT_FALSE(top.id.has_value());
  ASSERT_TRUE(CheckJson(R"([{"id":3}])", 32, &top).ok());
  EXPECT_FALSE(top.id.has_value());
  EXPECT_TRUE(top.keys.empty());
  // What was read before a problem is still noted.
  EXPECT_FALSE(CheckJson(R"({"id":4,"message":{"data":)" + Nested(100) + "}}", 32, &top).ok());
  EXPECT_EQ(top.id, 4u);
}

TEST(CheckJsonTest, NotesWhereEachTopLevelValueLies) {
  const std::string doc =
      "{ \"a\" : 12 ,\"b\":\"s\\\"t\",\"c\":[1,{\"x\":[]}],\"d\":{} ,\"e\":null,\"f\":-1.5e3,"
      "\"g\"\n:\ttrue}";
  JsonTopLevel top;
  ASSERT_TRUE(CheckJson(doc, 32, &top).ok());
  ASSERT_THAT(top.keys, ElementsAre("a", "b", "c", "d", "e", "f", "g"));
  ASSERT_EQ(top.value_spans.size(), top.keys.size());
  std::vector<std::string> values;
  for (const auto& [begin, end] : top.value_spans) values.push_back(doc.substr(begin, end - begin));
  EXPECT_THAT(values,
              ElementsAre("12", R"("s\"t")", R"([1,{"x":[]}])", "{}", "null", "-1.5e3", "true"));
  // Not an object: no keys, no spans.
  ASSERT_TRUE(CheckJson(R"([{"a":1}])", 32, &top).ok());
  EXPECT_TRUE(top.value_spans.empty());
}

TEST(CheckJsonTest, NotesTheDataMemberOfEachTopLevelObject) {
  const std::string doc =
      R"({"id":1,"publish":{"channel":"c", "data" : {"data":[1,{"data":2}]} },"x":{"data":"s"},)"
      R"("y":{"data":3,"data":4},"z":[{"data":5}],"w":{"a":{"data":6}}})";
  JsonTopLevel top;
  ASSERT_TRUE(CheckJson(doc, 32, &top).ok());
  ASSERT_THAT(top.keys, ElementsAre("id", "publish", "x", "y", "z", "w"));
  ASSERT_EQ(top.data.size(), top.keys.size());
  auto data = [&](size_t i) {
    const auto [begin, end] = top.data[i].span;
    return doc.substr(begin, end - begin);
  };
  EXPECT_EQ(top.data[0].count, 0);
  EXPECT_EQ(top.data[1].count, 1);
  EXPECT_EQ(data(1), R"({"data":[1,{"data":2}]})");  // only the member one level down
  EXPECT_EQ(top.data[2].count, 1);
  EXPECT_EQ(data(2), R"("s")");
  EXPECT_EQ(top.data[3].count, 2);  // given twice: the caller does not pick one
  EXPECT_EQ(top.data[4].count, 0);  // in an array, not the object's own member
  EXPECT_EQ(top.data[5].count, 0);
}

TEST(CheckJsonTest, WorkIsLinearInTheInput) {
  // 2 MB of nesting (the HTTP body limit) and 2 MB of flat values both take milliseconds.
  std::string deep = Nested(1 << 20);
  std::string wide = "[";
  for (int i = 0; i < 200000; ++i) wide += "[[1.5e3,\"x\"]],";
  wide += "0]";
  for (std::string* doc : {&deep, &wide}) {
    const absl::Time start = absl::Now();
    CheckJson(*doc, 32).IgnoreError();
    EXPECT_LT(absl::Now() - start, herald::testing::TimeBound(absl::Milliseconds(500)));
  }
  EXPECT_TRUE(CheckJson(wide, 32).ok());
}

TEST(CheckJsonTest, RefusesARepeatedKeyWhenAskedInEveryObject) {
  for (const char* doc : {R"({"k":1,"k":2})", R"({"a":{"x":1,"y":{"k":1,"k":[]}}})",
                          R"([{"a":1},{"k":1,"b":2,"k":3}])"}) {
    SCOPED_TRACE(doc);
    EXPECT_TRUE(CheckJson(doc, 32).ok());  // not asked
    absl::Status st = CheckJson(doc, 32, nullptr, /*unique_keys=*/true);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(), "Repeated map key: 'k' is already set.");
  }
  // The same key in sibling or nested objects is fine.
  EXPECT_TRUE(CheckJson(R"({"k":{"k":1},"j":[{"k":1},{"k":2}]})", 32, nullptr, true).ok());
  // Wide objects (past the short list) too, in linear time.
  std::string wide = "{";
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&wide, "\"k", i, "\":0,");
  std::string repeated = absl::StrCat(wide, "\"k19999\":1}");
  wide += "\"end\":0}";
  const absl::Time start = absl::Now();
  EXPECT_TRUE(CheckJson(wide, 32, nullptr, true).ok());
  EXPECT_EQ(CheckJson(repeated, 32, nullptr, true).message(),
            "Repeated map key: 'k19999' is already set.");
  EXPECT_LT(absl::Now() - start, herald::testing::TimeBound(absl::Milliseconds(500)));
}

// ParseJson refuses what CheckJson refuses, in its words, and builds the DOM in the same pass.
TEST(ParseJsonTest, BuildsTheDomOfWhatCheckJsonAccepts) {
  rapidjson::Document doc;
  ASSERT_TRUE(ParseJson(R"({"a":{"b":[1,2,{"c":null}]},"s":"x\u00e9"})", 4, &doc).ok());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["a"]["b"].Size(), 3u);
  EXPECT_TRUE(doc["a"]["b"][2]["c"].IsNull());
  EXPECT_STREQ(doc["s"].GetString(), "x\xc3\xa9");
  ASSERT_TRUE(ParseJson(Nested(32), 32, &doc).ok());
  EXPECT_TRUE(doc.IsArray());

  using std::string_literals::operator""s;
  const std::vector<std::pair<std::string, size_t>> refused = {
      {Nested(33), 32},  {"", 32},
      {"{", 32},         {"[1,]", 32},
      {"{} {}", 32},     {"\"\xff\"", 32},
      {"NaN", 32},       {"{}\0garbage"s, 32},
      {"\"a\0b\""s, 32}, {R"({"a":{"b":[{}]}})", 3}};
  for (const auto& [bad, depth] : refused) {
    absl::Status st = ParseJson(bad, depth, &doc);
    EXPECT_EQ(st, CheckJson(bad, depth)) << bad;
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseJson(Nested(33), 32, &doc).message(),
              HasSubstr("nested deeper than 32 levels at byte 32"));
}

TEST(ParseJsonTest, WorkIsLinearInTheInput) {
  // Iterative: 2 MB of nesting neither recurses nor takes long.
  const std::string deep = Nested(1 << 20);
  rapidjson::Document doc;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(ParseJson(deep, 32, &doc).ok());
  EXPECT_TRUE(ParseJson(deep, 1 << 20, &doc).ok());
  EXPECT_LT(absl::Now() - start, herald::testing::TimeBound(absl::Milliseconds(1000)));
}

TEST(ValidUtf8Test, KeepsValidTextAndEscapesInvalid) {
  EXPECT_EQ(ValidUtf8("application/json"), "application/json");
  EXPECT_EQ(ValidUtf8("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(ValidUtf8("got '\xe0\x9e\x8f/json'"), "got \\'\\xe0\\x9e\\x8f/json\\'");
  EXPECT_EQ(ValidUtf8("\xc3"), "\\xc3");  // truncated sequence
}

}  // namespace
}  // namespace herald::json
