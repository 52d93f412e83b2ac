// grpc_bench: control-API throughput, with the project's own multi-threaded gRPC client.
//
//   --mode unary-order    PublishOrder, one blocking call at a time per thread
//   --mode unary-publish  Publish (channel publication), likewise
//   --mode stream-order   PublishStream of order updates, one stream per thread
//   --mode stream-publish PublishStream of channel publications, one stream per thread
//
// Orders cycle over 1000 ids per thread with increasing versions (so none is stale and the order
// book stays bounded); publications go to channels nobody subscribes to, so the figure is the
// cost of the control path itself. Prints one JSON object: calls/s, errors, the server's CPU
// seconds per call (from /proc/PID/stat) and the client's own CPU time.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "bench/common.h"
#include "herald/v1/broker.grpc.pb.h"

namespace herald::bench {
namespace {

struct Options {
  std::string target = "127.0.0.1:50051";
  std::string mode = "unary-order";
  int threads = 16;
  int connections = 4;
  double duration_s = 5;
  std::vector<int> server_pids;
  std::string label;
};

v1::Order MakeOrder(int thread, uint64_t k) {
  v1::Order o;
  o.set_id("bench-" + std::to_string(thread) + "-" + std::to_string(k % 1000));
  o.set_version(k / 1000 + 1);
  o.set_status(v1::ORDER_STATUS_ACCEPTED);
  o.set_store_id("bench-store-" + std::to_string(k % 50));
  o.set_customer_id("bench-customer-" + std::to_string(k % 997));
  auto* item = o.add_items();
  item->set_sku("sku-1");
  item->set_name("Margherita");
  item->set_quantity(2);
  item->mutable_unit_price()->set_minor_units(950);
  item->mutable_unit_price()->set_currency("EUR");
  o.mutable_total()->set_minor_units(1900);
  o.mutable_total()->set_currency("EUR");
  return o;
}

struct ThreadStats {
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::string first_error;
};

void RunThread(const Options& opt, v1::Broker::Stub* stub, int t, std::atomic<bool>* stop,
               ThreadStats* st) {
  const bool order = opt.mode.find("order") != std::string::npos;
  const std::string channel = "bench-nosub-" + std::to_string(t);
  if (opt.mode.rfind("unary", 0) == 0) {
    v1::PublishRequest pub;
    pub.set_channel(channel);
    pub.mutable_data()->set_string_value("hello from grpc_bench, a short publication");
    for (uint64_t k = 0; !stop->load(std::memory_order_relaxed); ++k) {
      grpc::ClientContext ctx;
      grpc::Status s;
      if (order) {
        v1::PublishOrderRequest req;
        *req.mutable_order() = MakeOrder(t, k);
        v1::PublishOrderResponse resp;
        s = stub->PublishOrder(&ctx, req, &resp);
      } else {
        v1::PublishResponse resp;
        s = stub->Publish(&ctx, pub, &resp);
      }
      if (s.ok()) {
        ++st->ok;
      } else {
        if (st->errors++ == 0) st->first_error = s.error_message();
      }
    }
    return;
  }
  grpc::ClientContext ctx;
  v1::PublishStreamSummary summary;
  std::unique_ptr<grpc::ClientWriter<v1::PublishStreamRequest>> writer =
      stub->PublishStream(&ctx, &summary);
  v1::PublishStreamRequest req;
  if (!order) {
    req.mutable_publish()->set_channel(channel);
    req.mutable_publish()->mutable_data()->set_string_value(
        "hello from grpc_bench, a short publication");
  }
  uint64_t written = 0;
  grpc::WriteOptions wo;
  for (uint64_t k = 0; !stop->load(std::memory_order_relaxed); ++k) {
    if (order) *req.mutable_order()->mutable_order() = MakeOrder(t, k);
    if (!writer->Write(req, wo)) break;
    ++written;
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) {
    st->errors = 1;
    st->first_error = s.error_message();
  }
  st->ok = order ? summary.orders_applied() + summary.orders_stale() : summary.publications();
  if (st->ok < written && s.ok()) st->errors += written - st->ok;
}

int Main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--target") {
      opt.target = v;
    } else if (a == "--mode") {
      opt.mode = v;
    } else if (a == "--threads") {
      opt.threads = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--connections") {
      opt.connections = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--duration") {
      opt.duration_s = std::atof(v.c_str());
    } else if (a == "--server-pids") {
      opt.server_pids = ParsePids(v);
    } else if (a == "--label") {
      opt.label = v;
    } else {
      std::fprintf(stderr,
                   "usage: grpc_bench --target HOST:PORT --mode "
                   "unary-order|unary-publish|stream-order|stream-publish [--threads T] "
                   "[--connections C] [--duration S] [--server-pids P]\n");
      return 2;
    }
  }
  // Separate channels (distinct channel args) so calls spread over several HTTP/2 connections.
  std::vector<std::unique_ptr<v1::Broker::Stub>> stubs;
  for (int c = 0; c < opt.connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("herald.bench.connection", c);
    stubs.push_back(v1::Broker::NewStub(
        grpc::CreateCustomChannel(opt.target, grpc::InsecureChannelCredentials(), args)));
  }
  // Warm up: connect every channel.
  for (auto& stub : stubs) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::StatsResponse resp;
    grpc::Status s = stub->Stats(&ctx, v1::StatsRequest(), &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "grpc_bench: %s: %s\n", opt.target.c_str(), s.error_message().c_str());
      return 1;
    }
  }
  std::atomic<bool> stop{false};
  std::vector<ThreadStats> stats(opt.threads);
  const double cpu0 = ProcCpuSeconds(opt.server_pids);
  const double self0 = SelfCpuSeconds();
  const uint64_t t0 = NowNs();
  std::vector<std::thread> threads;
  for (int t = 0; t < opt.threads; ++t) {
    threads.emplace_back(RunThread, std::cref(opt), stubs[t % stubs.size()].get(), t, &stop,
                         &stats[t]);
  }
  usleep(static_cast<useconds_t>(opt.duration_s * 1e6));
  stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed = static_cast<double>(NowNs() - t0) / 1e9;
  const double cpu = ProcCpuSeconds(opt.server_pids) - cpu0;
  uint64_t ok = 0, errors = 0;
  std::string first_error;
  for (const ThreadStats& s : stats) {
    ok += s.ok;
    errors += s.errors;
    if (first_error.empty()) first_error = s.first_error;
  }
  std::printf("%s\n", JsonObject()
                          .Str("label", opt.label)
                          .Str("mode", opt.mode)
                          .Int("threads", opt.threads)
                          .Int("connections", opt.connections)
                          .Int("calls", ok)
                          .Int("errors", errors)
                          .Str("first_error", first_error)
                          .Num("elapsed_s", elapsed)
                          .Num("calls_per_s", ok / elapsed)
                          .Num("server_cpu_s", cpu)
                          .Num("server_cpu_us_per_call", ok > 0 ? cpu * 1e6 / ok : 0)
                          .Num("client_cpu_s", SelfCpuSeconds() - self0)
                          .Done()
                          .c_str());
  return errors > 0 && ok == 0 ? 1 : 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) { return herald::bench::Main(argc, argv); }
