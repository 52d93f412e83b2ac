#include "server/rpc/arena_allocator.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "herald/v1/broker.pb.h"

namespace herald::rpc {
namespace {

using Allocator = ArenaMessageAllocator<v1::PublishOrderRequest, v1::PublishOrderResponse>;

v1::PublishOrderRequest SampleOrder() {
  v1::PublishOrderRequest req;
  v1::Order* order = req.mutable_order();
  order->set_id("o-1001");
  order->set_version(3);
  order->set_store_id("store-with-a-name-longer-than-sso");
  auto* item = order->add_items();
  item->set_sku("sku-1");
  item->set_name("Margherita");
  item->mutable_unit_price()->set_currency("EUR");
  return req;
}

TEST(ArenaMessageAllocator, ParsesRequestsIntoAnArenaAndKeepsResponsesOnTheHeap) {
  Allocator allocator;
  grpc::MessageHolder<v1::PublishOrderRequest, v1::PublishOrderResponse>* holder =
      allocator.AllocateMessages();
  ASSERT_NE(holder->request()->GetArena(), nullptr);
  // The handlers move a heap result into the response: a swap only when both are on the heap.
  EXPECT_EQ(holder->response()->GetArena(), nullptr);
  ASSERT_TRUE(holder->request()->ParseFromString(SampleOrder().SerializeAsString()));
  EXPECT_EQ(holder->request()->order().store_id(), "store-with-a-name-longer-than-sso");
  holder->response()->set_applied(true);
  holder->Release();
}

TEST(ArenaMessageAllocator, ReusesReleasedHoldersWithFreshMessages) {
  Allocator allocator;
  auto* first = allocator.AllocateMessages();
  ASSERT_TRUE(first->request()->ParseFromString(SampleOrder().SerializeAsString()));
  first->response()->set_applied(true);
  first->response()->add_deliveries()->set_channel("orders");
  first->Release();
  EXPECT_EQ(allocator.idle_for_testing(), 1u);

  auto* second = allocator.AllocateMessages();
  EXPECT_EQ(second, first);  // the same holder, from the pool
  EXPECT_EQ(allocator.idle_for_testing(), 0u);
  // Nothing of the previous call shows through.
  EXPECT_FALSE(second->request()->has_order());
  EXPECT_FALSE(second->response()->applied());
  EXPECT_EQ(second->response()->deliveries_size(), 0);
  second->Release();
}

TEST(ArenaMessageAllocator, ARequestLargerThanTheFirstBlockStillParses) {
  Allocator allocator;
  v1::PublishOrderRequest big = SampleOrder();
  for (int i = 0; i < 200; ++i) {
    auto* item = big.mutable_order()->add_items();
    item->set_sku("sku-" + std::to_string(i));
    item->set_name(std::string(40, 'n'));
  }
  for (int round = 0; round < 2; ++round) {
    auto* holder = allocator.AllocateMessages();
    ASSERT_TRUE(holder->request()->ParseFromString(big.SerializeAsString()));
    EXPECT_EQ(holder->request()->order().items_size(), 201);
    holder->Release();  // Reset frees the blocks beyond the first
  }
}

TEST(ArenaMessageAllocator, KeepsAtMostkMaxIdleHolders) {
  Allocator allocator;
  std::vector<grpc::MessageHolder<v1::PublishOrderRequest, v1::PublishOrderResponse>*> held;
  for (size_t i = 0; i < Allocator::kMaxIdle + 10; ++i)
    held.push_back(allocator.AllocateMessages());
  for (auto* h : held) h->Release();
  EXPECT_EQ(allocator.idle_for_testing(), Allocator::kMaxIdle);
}

}  // namespace
}  // namespace herald::rpc
