// ConnectionTable, ChannelIndex and validation, each on its own.
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/channel_index.h"
#include "server/core/connection_table.h"
#include "server/core/validation.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;
using ::testing::ElementsAre;

TEST(ConnectionTableTest, AddFindRemoveByIdAndUser) {
  ConnectionTable table;
  auto a = std::make_shared<FakeSession>("a", "alice");
  auto b = std::make_shared<FakeSession>("b", "alice");
  auto c = std::make_shared<FakeSession>("c");
  ASSERT_TRUE(table.Add(a).ok());
  ASSERT_TRUE(table.Add(b).ok());
  ASSERT_TRUE(table.Add(c).ok());
  EXPECT_EQ(table.Add(std::make_shared<FakeSession>("a")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.users(), 1u);
  EXPECT_EQ(table.Find("b"), b);
  EXPECT_EQ(table.Find("zzz"), nullptr);
  EXPECT_EQ(table.FindUser("alice").size(), 2u);
  EXPECT_TRUE(table.FindUser("").empty());
  EXPECT_EQ(table.Remove("a"), a);
  EXPECT_EQ(table.Remove("a"), nullptr);
  EXPECT_THAT(table.FindUser("alice"), ElementsAre(b));
  table.Remove("b");
  EXPECT_EQ(table.users(), 0u);
  EXPECT_EQ(table.All().size(), 1u);
}

TEST(ChannelIndexTest, SnapshotsAreStableAcrossChanges) {
  ChannelIndex index;
  auto a = std::make_shared<FakeSession>("a");
  auto b = std::make_shared<FakeSession>("b");
  EXPECT_TRUE(index.Add("x", a, {}));
  EXPECT_FALSE(index.Add("x", a, {}));
  Subscribers before = index.Snapshot("x");
  EXPECT_EQ(before, index.Snapshot("x"));  // cached while unchanged
  EXPECT_TRUE(index.Add("x", b, {}));
  Subscribers after = index.Snapshot("x");
  EXPECT_EQ(before->sessions.size(), 1u);  // an old snapshot is never mutated
  EXPECT_EQ(after->sessions.size(), 2u);
  EXPECT_EQ(index.SubscriberCount("x"), 2u);
  EXPECT_TRUE(index.Remove("x", a.get()));
  EXPECT_FALSE(index.Remove("x", a.get()));
  EXPECT_TRUE(index.Remove("x", b.get()));
  EXPECT_EQ(index.channels(), 0u);
  EXPECT_TRUE(index.Snapshot("x")->sessions.empty());
}

TEST(ChannelIndexTest, SnapshotGroupsSubscribersByLoop) {
  ChannelIndex index;
  std::vector<std::shared_ptr<FakeSession>> sessions;
  for (uint32_t i = 0; i < 7; ++i) {
    sessions.push_back(std::make_shared<FakeSession>(absl::StrCat("s", i), "", "10.0.0.1:1",
                                                     /*loop=*/(i * 5) % 3));
    index.Add("x", sessions.back(), {});
  }
  Subscribers subs = index.Snapshot("x");
  ASSERT_EQ(subs->sessions.size(), 7u);
  ASSERT_EQ(subs->groups.size(), 3u);
  size_t next = 0;
  for (uint32_t g = 0; g < 3; ++g) {
    EXPECT_EQ(subs->groups[g].loop, g);
    EXPECT_EQ(subs->groups[g].begin, next);
    for (size_t i = subs->groups[g].begin; i < subs->groups[g].end; ++i) {
      EXPECT_EQ(subs->sessions[i]->loop(), g);
    }
    next = subs->groups[g].end;
  }
  EXPECT_EQ(next, 7u);
}

// The fan-out's lock-free check (Accepts with the LiveMark the index holds) answers exactly as
// the subscription set does, also once the session gave up this or another subscription.
TEST(SessionTest, LiveMarkAnswersLikeTheSubscriptionSet) {
  FakeSession s("a");
  std::map<std::string, LiveMark> marks;
  for (const char* ch : {"x", "y"}) {
    ASSERT_EQ(s.AddSubscription(ch, 10, [] {}), Session::AddResult::kAdded);
    ASSERT_TRUE(s.GoLive(ch, 5, [&](const LiveMark& m) { marks[ch] = m; }));
  }
  EXPECT_EQ(marks["x"].after, 5u);
  EXPECT_FALSE(s.Accepts("x", 5, marks["x"]));  // covered by the join
  EXPECT_TRUE(s.Accepts("x", 6, marks["x"]));
  // Giving up "y" makes every older mark stale; "x" is still answered right.
  ASSERT_TRUE(s.RemoveSubscription("y", [] {}));
  EXPECT_TRUE(s.Accepts("x", 6, marks["x"]));
  EXPECT_FALSE(s.Accepts("y", 6, marks["y"]));
  // Back on "y" at a later position: the old mark must not let position 7 through.
  ASSERT_EQ(s.AddSubscription("y", 10, [] {}), Session::AddResult::kAdded);
  EXPECT_FALSE(s.Accepts("y", 7, marks["y"]));  // pending join
  ASSERT_TRUE(s.GoLive("y", 9, [&](const LiveMark& m) { marks["y"] = m; }));
  EXPECT_FALSE(s.Accepts("y", 7, marks["y"]));
  EXPECT_TRUE(s.Accepts("y", 10, marks["y"]));
  s.MarkClosed();
  EXPECT_FALSE(s.Accepts("x", 6, marks["x"]));
  EXPECT_FALSE(s.Accepts("y", 10, marks["y"]));
}

TEST(ValidationTest, Channels) {
  Limits limits;
  limits.max_channel_length = 10;
  EXPECT_TRUE(ValidateChannel("c", "store:42", limits).ok());
  EXPECT_TRUE(ValidateChannel("c", "a_b-c.d@e/=", Limits()).ok());
  EXPECT_FALSE(ValidateChannel("c", "", limits).ok());
  EXPECT_FALSE(ValidateChannel("c", "12345678901", limits).ok());
  for (const char* bad : {"a b", "a*", "a\"b", "é", "a\nb", "a\\b"}) {
    absl::Status st = ValidateChannel("sub.channel", bad, Limits());
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(st.message()), ::testing::StartsWith("sub.channel:"));
  }
}

TEST(ValidationTest, OrderChannelsAndIds) {
  v1::Order o;
  o.set_id("o1");
  o.set_store_id("s1");
  o.set_version(1);
  o.set_status(v1::ORDER_STATUS_READY);
  EXPECT_TRUE(ValidateOrder("order", o, Limits()).ok());
  EXPECT_THAT(OrderChannels(o), ElementsAre("orders", "store:s1", "order:o1"));
  o.set_customer_id("c1");
  EXPECT_THAT(OrderChannels(o), ElementsAre("orders", "store:s1", "customer:c1", "order:o1"));
  o.set_customer_id("bad id");
  EXPECT_THAT(std::string(ValidateOrder("order", o, Limits()).message()),
              ::testing::StartsWith("order.customer_id:"));
}

// The field names in ValidateOrder's messages are built only on an error; pin them exactly.
TEST(ValidationTest, OrderErrorsNameTheField) {
  herald::v1::Order o;
  o.set_store_id("s1");
  o.set_version(1);
  o.set_status(herald::v1::ORDER_STATUS_ACCEPTED);
  EXPECT_EQ(ValidateOrder("order", o, Limits()).message(), "order.id: must not be empty");
  Limits limits;
  limits.max_channel_length = 20;  // ids get 20 - 9 ("customer:") = 11 bytes
  o.set_id("o-123456789");
  EXPECT_TRUE(ValidateOrder("order", o, limits).ok());
  o.set_id("o-1234567890");
  EXPECT_EQ(ValidateOrder("requests[2].order", o, limits).message(),
            "requests[2].order.id: longer than 11 bytes");
  o.set_id("o1");
  o.set_store_id("s 1");
  EXPECT_EQ(ValidateOrder("order", o, limits).message(),
            "order.store_id: invalid character; allowed are letters, digits and _ : . @ / = -");
  EXPECT_EQ(ValidateChannel("channel", "", Limits()).message(), "channel: must not be empty");
}

TEST(ValidationTest, CloseAndOrigins) {
  EXPECT_TRUE(ValidateClose(1000, "").ok());
  EXPECT_TRUE(ValidateClose(4999, "x").ok());
  EXPECT_FALSE(ValidateClose(1001, "").ok());
  EXPECT_FALSE(ValidateClose(5000, "").ok());
  EXPECT_FALSE(ValidateClose(1000, std::string(124, 'x')).ok());
  EXPECT_TRUE(OriginAllowed("https://a.test", {}));
  EXPECT_TRUE(OriginAllowed("https://a.test", {"https://A.test"}));
  EXPECT_FALSE(OriginAllowed("https://evil.test", {"https://a.test"}));
  EXPECT_TRUE(OriginAllowed("https://evil.test", {"*"}));
  EXPECT_TRUE(OriginAllowed("", {"https://a.test"}));
  EXPECT_TRUE(IsTerminal(v1::ORDER_STATUS_CANCELLED));
  EXPECT_FALSE(IsTerminal(v1::ORDER_STATUS_READY));
}

}  // namespace
}  // namespace herald::core
