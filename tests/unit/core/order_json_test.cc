// OrderJson against protobuf's own JSON printer: for every order, the two documents are equal
// JSON (same members, same values, same types).
#include "server/core/order_json.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace herald::core {
namespace {

std::string ProtobufJson(const v1::Order& order) {
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(order, &out).ok());
  return out;
}

void ExpectSameJson(const v1::Order& order) {
  const std::string ours = OrderJson(order);
  const std::string theirs = ProtobufJson(order);
  rapidjson::Document a, b;
  ASSERT_FALSE(a.Parse(ours.c_str(), ours.size()).HasParseError()) << ours;
  ASSERT_FALSE(b.Parse(theirs.c_str(), theirs.size()).HasParseError()) << theirs;
  EXPECT_TRUE(a == b) << "ours:     " << ours << "\nprotobuf: " << theirs;
}

TEST(OrderJson, AnEmptyOrderIsAnEmptyObject) {
  EXPECT_EQ(OrderJson(v1::Order()), "{}");
  ExpectSameJson(v1::Order());
}

TEST(OrderJson, EveryFieldAsProtobufPrintsIt) {
  v1::Order o;
  o.set_id("o-1001");
  o.set_version(std::numeric_limits<uint64_t>::max());
  o.set_status(v1::ORDER_STATUS_DELIVERED);
  o.set_store_id("store-7");
  o.set_customer_id("alice");
  auto* item = o.add_items();
  item->set_sku("sku-1");
  item->set_name("Margherita \"large\" \\ \n\t\x01 é 日本 \xF0\x9F\x8D\x95 </script>");
  item->set_quantity(std::numeric_limits<uint32_t>::max());
  item->mutable_unit_price()->set_minor_units(std::numeric_limits<int64_t>::min());
  item->mutable_unit_price()->set_currency("EUR");
  o.add_items();                        // an item with every field at its default
  o.add_items()->mutable_unit_price();  // a price present but zero
  o.mutable_total()->set_minor_units(-1);
  o.set_created_at_ms(1764460800000);
  o.set_updated_at_ms(-5);
  (*o.mutable_attributes())["note"] = "ring twice";
  (*o.mutable_attributes())[""] = "";
  (*o.mutable_attributes())["addr\"ess"] = "Rue \u00e9 1\n";
  ExpectSameJson(o);
  const std::string json = OrderJson(o);
  EXPECT_NE(json.find("\"version\":\"18446744073709551615\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"status\":\"ORDER_STATUS_DELIVERED\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"minorUnits\":\"-9223372036854775808\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"quantity\":4294967295"), std::string::npos) << json;
}

TEST(OrderJson, AStatusThisBuildDoesNotKnowIsItsNumber) {
  v1::Order o;
  o.set_id("o-1");
  o.set_status(static_cast<v1::OrderStatus>(42));
  ExpectSameJson(o);
}

// OrderJson writes into a string reserved for a typical order and keeps the writer's stack in a
// small pool: an order far larger than both grows them and still prints as protobuf does.
TEST(OrderJson, AnOrderLargerThanItsReservedRoom) {
  v1::Order o;
  o.set_id("o-big");
  o.set_version(7);
  o.set_status(v1::ORDER_STATUS_ACCEPTED);
  for (int i = 0; i < 100; ++i) {
    v1::OrderItem* item = o.add_items();
    item->set_sku("sku-" + std::to_string(i));
    item->set_name(std::string(30, 'x'));
    item->set_quantity(i + 1);
    item->mutable_unit_price()->set_minor_units(100 + i);
    item->mutable_unit_price()->set_currency("EUR");
  }
  for (int i = 0; i < 20; ++i) (*o.mutable_attributes())["k" + std::to_string(i)] = "v";
  ASSERT_GT(OrderJson(o).size(), 4096u);
  ExpectSameJson(o);
}

TEST(OrderJson, RandomOrdersMatchProtobuf) {
  std::mt19937_64 rng(20261130);
  auto text = [&rng]() {
    static const char* const kPieces[] = {"",   "a",    "Z9", "\"",   "\\",
                                          "\n", "\x1f", "é",  "日本", "\xF0\x9F\x8D\x95",
                                          "/",  "<>&",  " ",  "\x7f"};
    std::string s;
    for (int n = static_cast<int>(rng() % 5); n > 0; --n) s += kPieces[rng() % 14];
    return s;
  };
  auto maybe = [&rng](int64_t v) { return rng() % 3 == 0 ? 0 : v; };
  for (int i = 0; i < 2000; ++i) {
    v1::Order o;
    o.set_id(text());
    o.set_version(maybe(static_cast<int64_t>(rng() >> (rng() % 64))));
    o.set_status(static_cast<v1::OrderStatus>(rng() % 10));
    o.set_store_id(text());
    o.set_customer_id(text());
    for (int k = static_cast<int>(rng() % 4); k > 0; --k) {
      auto* item = o.add_items();
      item->set_sku(text());
      item->set_name(text());
      item->set_quantity(static_cast<uint32_t>(maybe(static_cast<int64_t>(rng() % 100000))));
      if (rng() % 2) {
        item->mutable_unit_price()->set_minor_units(maybe(static_cast<int64_t>(rng())));
        item->mutable_unit_price()->set_currency(text());
      }
    }
    if (rng() % 2) o.mutable_total()->set_minor_units(maybe(static_cast<int64_t>(rng())));
    o.set_created_at_ms(maybe(static_cast<int64_t>(rng() % 4000000000000)));
    o.set_updated_at_ms(maybe(-static_cast<int64_t>(rng() % 1000)));
    for (int k = static_cast<int>(rng() % 3); k > 0; --k)
      (*o.mutable_attributes())[text()] = text();
    ExpectSameJson(o);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace herald::core
