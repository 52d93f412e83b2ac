#include "server/closest_name.h"

#include "gtest/gtest.h"

namespace herald {
namespace {

const std::vector<std::string> kKeys = {
    "api-key",   "max-frame-bytes", "max-subscriptions", "threads",
    "node",      "log-level",       "history-size",      "history-ttl",
    "ws-listen", "max-connections", "grpc-listen"};

TEST(EditDistanceTest, CountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("abc", ""), 3);
  EXPECT_EQ(EditDistance("", "abc"), 3);
  EXPECT_EQ(EditDistance("node", "node"), 0);
  EXPECT_EQ(EditDistance("nod", "node"), 1);    // insertion
  EXPECT_EQ(EditDistance("nodes", "node"), 1);  // deletion
  EXPECT_EQ(EditDistance("mode", "node"), 1);   // substitution
  EXPECT_EQ(EditDistance("ndoe", "node"), 1);   // adjacent swap
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("Node", "node"), 1);  // case-sensitive on its own
}

TEST(ClosestNameTest, FindsTheKeyATypoMeant) {
  EXPECT_EQ(ClosestName("max-frame-byte", kKeys), "max-frame-bytes");
  EXPECT_EQ(ClosestName("max-farme-bytes", kKeys), "max-frame-bytes");
  EXPECT_EQ(ClosestName("thread", kKeys), "threads");
  EXPECT_EQ(ClosestName("loglevel", kKeys), "log-level");
  EXPECT_EQ(ClosestName("history-tll", kKeys), "history-ttl");
  EXPECT_EQ(ClosestName("max-conections", kKeys), "max-connections");
}

TEST(ClosestNameTest, IgnoresCaseAndUnderscoreVersusDash) {
  EXPECT_EQ(ClosestName("api_key", kKeys), "api-key");
  EXPECT_EQ(ClosestName("API_KEY", kKeys), "api-key");
  EXPECT_EQ(ClosestName("Max_Frame_Byte", kKeys), "max-frame-bytes");
  EXPECT_EQ(ClosestName("WS_LISTEN", kKeys), "ws-listen");
}

TEST(ClosestNameTest, SuggestsNothingForANameThatIsNoTypo) {
  EXPECT_EQ(ClosestName("port", kKeys), "");
  EXPECT_EQ(ClosestName("foo", kKeys), "");
  EXPECT_EQ(ClosestName("redis-url", kKeys), "");
  EXPECT_EQ(ClosestName("", kKeys), "");
  EXPECT_EQ(ClosestName("threads", {}), "");
}

TEST(ClosestNameTest, TheNearestWinsAndTiesGoToTheEarliestCandidate) {
  EXPECT_EQ(ClosestName("history-tt", kKeys), "history-ttl");  // 1 edit; history-size is 4
  EXPECT_EQ(ClosestName("abcd", {"abxy", "abcx"}), "abcx");
  EXPECT_EQ(ClosestName("ab", {"ac", "ad"}), "ac");
  EXPECT_EQ(ClosestName("ab", {"ad", "ac"}), "ad");
}

}  // namespace
}  // namespace herald
