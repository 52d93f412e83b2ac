// grpc_bench: control-API throughput, with the project's own multi-threaded gRPC client.
//
//   --mode unary-order    PublishOrder: each thread keeps --window calls in flight on its own
//                         completion queue (gRPC's async API, as gRPC's own QPS client does)
//   --mode unary-publish  Publish (channel publication), likewise
//   --mode stream-order   PublishStream of order updates, one stream per thread
//   --mode stream-publish PublishStream of channel publications, one stream per thread
//                         (--batch N: N per stream message, as a PublishBatch)
//   --data value|json     publications carry their data as a google.protobuf.Value (`data`,
//                         the default) or as JSON text (`data_json`, passed through unparsed)
//   --payload short|object  a 42-byte JSON string (default), or a 200-byte JSON object like an
//                         order event (nested, numbers, an array)
//
// Orders cycle over 1000 ids per thread with increasing versions, each with a fixed store and
// customer (so none is stale and the order book and snapshots stay bounded); publications go to
// channels nobody subscribes to, so the figure is the cost of the control path itself. Prints one
// JSON object: calls/s, errors, the server's CPU seconds per call (from /proc/PID/stat) and the
// client's own CPU time.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include <google/protobuf/util/json_util.h>

#include "bench/common.h"
#include "herald/v1/broker.grpc.pb.h"

namespace herald::bench {
namespace {

struct Options {
  std::string target = "127.0.0.1:50051";
  std::string mode = "unary-order";
  int threads = 16;
  int connections = 4;
  int window = 32;  // unary calls in flight per thread
  int batch = 1;    // requests per PublishStream message (PublishBatch when > 1)
  double duration_s = 5;
  std::vector<int> server_pids;
  std::string label;
  std::string data = "value";     // value | json
  std::string payload = "short";  // short | object
};

constexpr char kShortPayload[] = R"("hello from grpc_bench, a short publication")";
constexpr char kObjectPayload[] =
    R"({"type":"order.updated","orderId":"o-1001","store":"s-42","status":"accepted",)"
    R"("items":[{"sku":"sku-1","name":"Margherita","qty":2,"price":950}],)"
    R"("total":{"minor":1900,"currency":"EUR"},"at":1764490000000,"eta":900})";

// A publication of the chosen payload, in the chosen form.
v1::PublishRequest MakePublication(const Options& opt, const std::string& channel) {
  v1::PublishRequest pub;
  pub.set_channel(channel);
  const char* json = opt.payload == "object" ? kObjectPayload : kShortPayload;
  if (opt.data == "json") {
    pub.set_data_json(json);
  } else if (!google::protobuf::util::JsonStringToMessage(json, pub.mutable_data()).ok()) {
    std::fprintf(stderr, "grpc_bench: bad built-in payload\n");
    std::exit(1);
  }
  return pub;
}

v1::Order MakeOrder(int thread, uint64_t k) {
  v1::Order o;
  // An order keeps its store and customer from version to version (as real orders do): were it
  // to move, each customer channel would keep a snapshot entry for every order it ever had.
  const uint64_t id = k % 1000;
  o.set_id("bench-" + std::to_string(thread) + "-" + std::to_string(id));
  o.set_version(k / 1000 + 1);
  o.set_status(v1::ORDER_STATUS_ACCEPTED);
  o.set_store_id("bench-store-" + std::to_string(id % 50));
  o.set_customer_id("bench-customer-" + std::to_string(id % 997));
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

// One unary call in flight; reused for the next call once it completes.
struct UnaryCall {
  std::unique_ptr<grpc::ClientContext> ctx;
  grpc::Status status;
  v1::PublishResponse publish_resp;
  v1::PublishOrderResponse order_resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PublishResponse>> publish;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PublishOrderResponse>> order;
};

void RunUnary(const Options& opt, v1::Broker::Stub* stub, int t, std::atomic<bool>* stop,
              ThreadStats* st) {
  const bool order = opt.mode.find("order") != std::string::npos;
  const v1::PublishRequest pub = MakePublication(opt, "bench-nosub-" + std::to_string(t));
  grpc::CompletionQueue cq;
  std::vector<UnaryCall> calls(static_cast<size_t>(opt.window));
  uint64_t k = 0;
  auto start = [&](UnaryCall& c) {
    c.ctx = std::make_unique<grpc::ClientContext>();
    if (order) {
      v1::PublishOrderRequest req;
      *req.mutable_order() = MakeOrder(t, k++);
      c.order = stub->AsyncPublishOrder(c.ctx.get(), req, &cq);
      c.order->Finish(&c.order_resp, &c.status, &c);
    } else {
      c.publish = stub->AsyncPublish(c.ctx.get(), pub, &cq);
      c.publish->Finish(&c.publish_resp, &c.status, &c);
    }
  };
  for (UnaryCall& c : calls) start(c);
  size_t in_flight = calls.size();
  void* tag;
  bool ok;
  while (in_flight > 0 && cq.Next(&tag, &ok)) {
    UnaryCall& c = *static_cast<UnaryCall*>(tag);
    if (ok && c.status.ok()) {
      ++st->ok;
    } else if (st->errors++ == 0) {
      st->first_error = c.status.error_message();
    }
    if (stop->load(std::memory_order_relaxed)) {
      --in_flight;
    } else {
      start(c);
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

void RunThread(const Options& opt, v1::Broker::Stub* stub, int t, std::atomic<bool>* stop,
               ThreadStats* st) {
  const bool order = opt.mode.find("order") != std::string::npos;
  const std::string channel = "bench-nosub-" + std::to_string(t);
  if (opt.mode.rfind("unary", 0) == 0) return RunUnary(opt, stub, t, stop, st);
  grpc::ClientContext ctx;
  v1::PublishStreamSummary summary;
  std::unique_ptr<grpc::ClientWriter<v1::PublishStreamRequest>> writer =
      stub->PublishStream(&ctx, &summary);
  v1::PublishStreamRequest one;
  if (!order) *one.mutable_publish() = MakePublication(opt, channel);
  v1::PublishStreamRequest batch;
  for (int i = 0; i < opt.batch; ++i) *batch.mutable_batch()->add_requests() = one;
  v1::PublishStreamRequest& req = opt.batch > 1 ? batch : one;
  uint64_t written = 0;
  grpc::WriteOptions wo;
  for (uint64_t k = 0; !stop->load(std::memory_order_relaxed);) {
    if (order && opt.batch > 1) {
      for (auto& r : *batch.mutable_batch()->mutable_requests()) {
        *r.mutable_order()->mutable_order() = MakeOrder(t, k++);
      }
    } else if (order) {
      *one.mutable_order()->mutable_order() = MakeOrder(t, k++);
    }
    if (!writer->Write(req, wo)) break;
    written += static_cast<uint64_t>(opt.batch);
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
    } else if (a == "--batch") {
      opt.batch = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--window") {
      opt.window = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--connections") {
      opt.connections = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--duration") {
      opt.duration_s = std::atof(v.c_str());
    } else if (a == "--server-pids") {
      opt.server_pids = ParsePids(v);
    } else if (a == "--label") {
      opt.label = v;
    } else if (a == "--data" && (v == "value" || v == "json")) {
      opt.data = v;
    } else if (a == "--payload" && (v == "short" || v == "object")) {
      opt.payload = v;
    } else {
      std::fprintf(stderr,
                   "usage: grpc_bench --target HOST:PORT --mode "
                   "unary-order|unary-publish|stream-order|stream-publish [--threads T] "
                   "[--connections C] [--window W] [--batch B] [--duration S] [--server-pids P]\n"
                   "  [--data value|json] [--payload short|object]\n");
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
                          .Int("window", opt.mode.rfind("unary", 0) == 0 ? opt.window : 1)
                          .Int("batch", opt.mode.rfind("stream", 0) == 0 ? opt.batch : 1)
                          .Str("data", opt.data)
                          .Str("payload", opt.payload)
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
