#ifndef HERALD_SERVER_RPC_ARENA_ALLOCATOR_H_
#define HERALD_SERVER_RPC_ARENA_ALLOCATOR_H_

#include <cstddef>
#include <memory>
#include <vector>

#include <grpcpp/support/message_allocator.h>

#include "absl/base/thread_annotations.h"
#include "google/protobuf/arena.h"
#include "server/core/mutex.h"

namespace herald::rpc {

// gRPC's message allocator for one unary method: each call's request is parsed into a protobuf
// Arena whose first block lives inside a pooled holder, so an order's dozen strings and nested
// messages cost no malloc/free each (gRPC's default parses into a heap message: one allocation
// per string and sub-message, freed on another thread). The response stays a heap message: the
// handlers move their result into it, which is a swap only when both are on the heap.
//
// Owns the pool of idle holders (at most kMaxIdle; a holder whose arena grew past its first
// block is reset, which frees the extra blocks). Thread-safe: gRPC allocates on its threads and
// releases on whichever finished the call. Must outlive the server it is registered with.
template <typename Req, typename Resp>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Req, Resp> {
 public:
  ArenaMessageAllocator() = default;
  ArenaMessageAllocator(const ArenaMessageAllocator&) = delete;
  ArenaMessageAllocator& operator=(const ArenaMessageAllocator&) = delete;

  grpc::MessageHolder<Req, Resp>* AllocateMessages() override {
    std::unique_ptr<Holder> holder;
    {
      core::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        holder = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (holder == nullptr) holder = std::make_unique<Holder>(this);
    holder->Start();
    return holder.release();
  }

  size_t idle_for_testing() {
    core::MutexLock lock(&mu_);
    return idle_.size();
  }

  static constexpr size_t kMaxIdle = 256;
  static constexpr size_t kFirstBlockBytes = 1024;

 private:
  class Holder final : public grpc::MessageHolder<Req, Resp> {
   public:
    explicit Holder(ArenaMessageAllocator* owner) : owner_(owner), arena_(Options(block_)) {}

    void Start() {
      this->set_request(google::protobuf::Arena::CreateMessage<Req>(&arena_));
      this->set_response(&response_);
    }

    void Release() override {
      // The request's objects are the arena's; Reset frees only blocks beyond the first.
      arena_.Reset();
      response_.Clear();
      owner_->Recycle(std::unique_ptr<Holder>(this));
    }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kFirstBlockBytes;
      return options;
    }

    ArenaMessageAllocator* const owner_;
    alignas(std::max_align_t) char block_[kFirstBlockBytes];
    google::protobuf::Arena arena_;
    Resp response_;
  };

  void Recycle(std::unique_ptr<Holder> holder) {
    {
      core::MutexLock lock(&mu_);
      if (idle_.size() < kMaxIdle) {
        idle_.push_back(std::move(holder));
        return;
      }
    }
    // Over the bound: `holder` is freed here, outside the lock.
  }

  core::Mutex mu_;
  std::vector<std::unique_ptr<Holder>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_ARENA_ALLOCATOR_H_
