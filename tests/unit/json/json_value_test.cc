#include "server/json/json_value.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::json {
namespace {

namespace pb = google::protobuf;
using ::testing::HasSubstr;

// RapidJSON's reading must be protobuf's JSON mapping's, value for value: client frames' data
// was read by protobuf's parser before.
TEST(ParseValueTest, ReadsWhatProtobufsParserReads) {
  for (const std::string json : {
           R"({"a":{"x":1},"b":[1,2,{"c":null}],"t":true,"f":false})",
           R"("\u0000x\n\ud83d\ude00é")",
           R"({"\u00e9":"é","":1})",
           "0.30000000000000004",
           "0.1",
           "9007199254740993",
           "123456789012345678",
           "12345678901234567890123",
           "-0",
           "-1E-7",
           "5e-324",
           "2.2250738585072011e-308",
           "1.7976931348623157e308",
           "[[[[[[1]]]]],[],{}]",
           "null",
       }) {
    pb::Value ours;
    ASSERT_TRUE(ParseValue(json, &ours).ok()) << json;
    pb::Value theirs;
    ASSERT_TRUE(pb::util::JsonStringToMessage(json, &theirs).ok()) << json;
    EXPECT_TRUE(pb::util::MessageDifferencer::Equals(ours, theirs))
        << json << "\nours: " << ours.DebugString() << "theirs: " << theirs.DebugString();
  }
}

TEST(ParseValueTest, RefusesAKeyGivenTwiceAsProtobufDoes) {
  pb::Value v;
  absl::Status st = ParseValue(R"({"a":{"b":1,"b":2}})", &v);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "Repeated map key: 'b' is already set.");
  EXPECT_FALSE(pb::util::JsonStringToMessage(R"({"a":{"b":1,"b":2}})", &v).ok());
}

TEST(ParseValueTest, SaysWhereADocumentDoesNotParse) {
  pb::Value v;
  absl::Status st = ParseValue("[1,", &v);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("at byte 3"));
}

}  // namespace
}  // namespace herald::json
