// ValueJson against protobuf's own JSON printer: equal JSON for every Value it writes, and
// nothing (so the caller asks protobuf for its error) for what protobuf refuses.
#include "server/core/value_json.h"

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace herald::core {
namespace {

namespace pb = google::protobuf;

// Parsed with full precision (as JavaScript's JSON.parse does): a shortest form may differ in its
// last digit from protobuf's and still name the same double.
void ExpectSameJson(const pb::Value& v) {
  std::optional<std::string> ours = ValueJson(v);
  ASSERT_TRUE(ours.has_value());
  std::string theirs;
  ASSERT_TRUE(pb::util::MessageToJsonString(v, &theirs).ok());
  rapidjson::Document a, b;
  ASSERT_FALSE(
      a.Parse<rapidjson::kParseFullPrecisionFlag>(ours->c_str(), ours->size()).HasParseError())
      << *ours;
  ASSERT_FALSE(
      b.Parse<rapidjson::kParseFullPrecisionFlag>(theirs.c_str(), theirs.size()).HasParseError())
      << theirs;
  EXPECT_TRUE(a == b) << "ours:     " << *ours << "\nprotobuf: " << theirs;
}

pb::Value Number(double d) {
  pb::Value v;
  v.set_number_value(d);
  return v;
}

TEST(ValueJson, ScalarsAsProtobufPrintsThem) {
  for (double d :
       {0.0, -0.0, 1.0, -1.0, 3.0, 0.1, 1.5, -2.25, 1e21, 1e-7, 123456789.125, 9007199254740991.0,
        9007199254740992.0, 1.7976931348623157e308, 4.9406564584124654e-324, 1.0000000000000002}) {
    ExpectSameJson(Number(d));
  }
  EXPECT_EQ(*ValueJson(Number(3)), "3");
  // The shortest form that names the same double: protobuf's text for all but the last, which it
  // prints as 4.94065645841247e-324.
  EXPECT_EQ(*ValueJson(Number(0.1 + 0.2)), "0.30000000000000004");
  EXPECT_EQ(*ValueJson(Number(9007199254740992.0)), "9007199254740992");
  EXPECT_EQ(*ValueJson(Number(1e21)), "1e+21");
  EXPECT_EQ(*ValueJson(Number(-1e-7)), "-1e-07");
  EXPECT_EQ(*ValueJson(Number(5e-324)), "5e-324");
  EXPECT_EQ(*ValueJson(Number(-42)), "-42");
  pb::Value s;
  s.set_string_value("q\"uote \\ \n\t\x01 é 日本 \xF0\x9F\x8D\x95 </script>");
  ExpectSameJson(s);
  pb::Value b;
  b.set_bool_value(false);
  ExpectSameJson(b);
  EXPECT_EQ(*ValueJson(b), "false");
  pb::Value n;
  n.set_null_value(pb::NULL_VALUE);
  EXPECT_EQ(*ValueJson(n), "null");
}

TEST(ValueJson, WhatProtobufRefusesIsLeftToIt) {
  EXPECT_FALSE(ValueJson(Number(std::nan(""))).has_value());
  EXPECT_FALSE(ValueJson(Number(std::numeric_limits<double>::infinity())).has_value());
  EXPECT_FALSE(ValueJson(pb::Value()).has_value());  // no kind
  pb::Value list;
  list.mutable_list_value()->add_values()->set_number_value(
      -std::numeric_limits<double>::infinity());
  EXPECT_FALSE(ValueJson(list).has_value());
}

TEST(ValueJson, RandomDocumentsMatchProtobuf) {
  std::mt19937_64 rng(20261130);
  static const char* const kText[] = {"", "a", "id", "\"", "\\", "\n", "é", "日本", "/", "<>&"};
  std::function<void(pb::Value*, int)> fill = [&](pb::Value* v, int depth) {
    switch (rng() % (depth > 4 ? 4 : 6)) {
      case 0:
        v->set_null_value(pb::NULL_VALUE);
        break;
      case 1:
        v->set_bool_value(rng() % 2);
        break;
      case 2: {
        const double choices[] = {
            static_cast<double>(static_cast<int64_t>(rng() % 2000000) - 1000000),
            static_cast<double>(rng()) / 1e6, -static_cast<double>(rng() % 1000) / 7.0,
            std::ldexp(static_cast<double>(rng() % 1000), static_cast<int>(rng() % 200) - 100)};
        v->set_number_value(choices[rng() % 4]);
        break;
      }
      case 3:
        v->set_string_value(std::string(kText[rng() % 10]) + kText[rng() % 10]);
        break;
      case 4: {
        auto* fields = v->mutable_struct_value()->mutable_fields();
        for (int k = static_cast<int>(rng() % 4); k > 0; --k) {
          fill(&(*fields)[std::string(kText[rng() % 10]) + std::to_string(k)], depth + 1);
        }
        break;
      }
      default: {
        auto* list = v->mutable_list_value();
        for (int k = static_cast<int>(rng() % 4); k > 0; --k) fill(list->add_values(), depth + 1);
      }
    }
  };
  for (int i = 0; i < 3000; ++i) {
    pb::Value v;
    fill(&v, 0);
    ExpectSameJson(v);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace herald::core
