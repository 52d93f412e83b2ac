#include "client/cli/simulate.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace herald::cli {
namespace {

struct MenuItem {
  const char* sku;
  const char* name;
  int64_t price;  // minor units
};

constexpr MenuItem kMenu[] = {
    {"pz-margherita", "Pizza Margherita", 950},
    {"pz-diavola", "Pizza Diavola", 1150},
    {"pz-funghi", "Pizza Funghi", 1090},
    {"pz-quattro", "Quattro Formaggi", 1250},
    {"sd-caesar", "Caesar Salad", 890},
    {"sd-greek", "Greek Salad", 820},
    {"pa-carbonara", "Spaghetti Carbonara", 1190},
    {"pa-arrabbiata", "Penne Arrabbiata", 990},
    {"ds-tiramisu", "Tiramisu", 550},
    {"ds-gelato", "Gelato (2 scoops)", 450},
    {"dr-lemonade", "Homemade Lemonade", 350},
    {"dr-water", "Sparkling Water", 250},
};

constexpr const char* kNames[] = {"Ada",  "Ben",   "Chloé",   "Dmitri", "Elif", "Farah", "Giulia",
                                  "Hiro", "Inès",  "Jonas",   "Kemal",  "Lena", "Mateo", "Nadia",
                                  "Omar", "Priya", "Quentin", "Rosa",   "Sven", "Tariq"};
constexpr const char* kStreets[] = {"Baker St", "Canal Rd", "Elm Ave",    "Harbour Ln",
                                    "Mill St",  "Park Row", "Station Rd", "Vine St"};
constexpr const char* kCouriers[] = {"Alex (bike)", "Sam (scooter)", "Jo (e-bike)", "Kim (car)"};

template <typename T, size_t N>
const T& Pick(std::mt19937_64& rng, const T (&items)[N]) {
  return items[std::uniform_int_distribution<size_t>(0, N - 1)(rng)];
}

}  // namespace

OrderSimulator::OrderSimulator(SimulateOptions options, absl::Time start)
    : options_(std::move(options)),
      rng_(options_.seed != 0 ? options_.seed : std::random_device()()),
      next_arrival_(start) {
  run_id_ = absl::StrCat(
      absl::Hex(std::uniform_int_distribution<uint32_t>(0, 0xffff)(rng_), absl::kZeroPad4));
}

absl::Duration OrderSimulator::Jittered(absl::Duration mean) {
  // 50% .. 150% of the mean: lively but never instantaneous.
  return mean * std::uniform_real_distribution<double>(0.5, 1.5)(rng_);
}

v1::Order OrderSimulator::NewOrder(absl::Time now) {
  v1::Order o;
  o.set_id(absl::StrCat("o-", run_id_, "-", ++created_));
  o.set_version(1);
  o.set_status(v1::ORDER_STATUS_CREATED);
  o.set_store_id(
      options_.stores[std::uniform_int_distribution<size_t>(0, options_.stores.size() - 1)(rng_)]);
  const int customer = std::uniform_int_distribution<int>(1, std::max(1, options_.customers))(rng_);
  o.set_customer_id(absl::StrCat("c-", customer));
  const int lines = std::uniform_int_distribution<int>(1, 4)(rng_);
  int64_t total = 0;
  std::vector<const MenuItem*> chosen;
  for (int i = 0; i < lines; ++i) {
    const MenuItem* item = &Pick(rng_, kMenu);
    if (std::find(chosen.begin(), chosen.end(), item) != chosen.end()) continue;
    chosen.push_back(item);
    v1::OrderItem* line = o.add_items();
    line->set_sku(item->sku);
    line->set_name(item->name);
    line->set_quantity(std::uniform_int_distribution<uint32_t>(1, 3)(rng_));
    line->mutable_unit_price()->set_minor_units(item->price);
    line->mutable_unit_price()->set_currency("EUR");
    total += item->price * line->quantity();
  }
  o.mutable_total()->set_minor_units(total);
  o.mutable_total()->set_currency("EUR");
  o.set_created_at_ms(absl::ToUnixMillis(now));
  o.set_updated_at_ms(absl::ToUnixMillis(now));
  auto& attrs = *o.mutable_attributes();
  attrs["customer_name"] = kNames[(customer - 1) % (sizeof kNames / sizeof kNames[0])];
  attrs["address"] =
      absl::StrCat(std::uniform_int_distribution<int>(1, 180)(rng_), " ", Pick(rng_, kStreets));
  return o;
}

bool OrderSimulator::Advance(v1::Order* order, absl::Time now) {
  const v1::OrderStatus status = order->status();
  const bool early = status == v1::ORDER_STATUS_CREATED || status == v1::ORDER_STATUS_ACCEPTED;
  // Spread the cancel ratio over the two early steps.
  if (early && std::bernoulli_distribution(options_.cancel_ratio / 2)(rng_)) {
    order->set_status(v1::ORDER_STATUS_CANCELLED);
    (*order->mutable_attributes())["cancel_reason"] =
        status == v1::ORDER_STATUS_CREATED ? "store is too busy" : "customer changed their mind";
  } else {
    switch (status) {
      case v1::ORDER_STATUS_CREATED:
        order->set_status(v1::ORDER_STATUS_ACCEPTED);
        break;
      case v1::ORDER_STATUS_ACCEPTED:
        order->set_status(v1::ORDER_STATUS_PREPARING);
        break;
      case v1::ORDER_STATUS_PREPARING:
        order->set_status(v1::ORDER_STATUS_READY);
        break;
      case v1::ORDER_STATUS_READY:
        order->set_status(v1::ORDER_STATUS_SHIPPED);
        (*order->mutable_attributes())["courier"] = Pick(rng_, kCouriers);
        break;
      case v1::ORDER_STATUS_SHIPPED:
        order->set_status(v1::ORDER_STATUS_DELIVERED);
        break;
      default:
        return false;
    }
  }
  order->set_version(order->version() + 1);
  order->set_updated_at_ms(absl::ToUnixMillis(now));
  return true;
}

std::vector<v1::Order> OrderSimulator::Due(absl::Time now) {
  std::vector<v1::Order> out;
  // Arrivals: a Poisson process at `rate`.
  while (options_.rate > 0 && next_arrival_ <= now) {
    v1::Order o = NewOrder(next_arrival_);
    out.push_back(o);
    open_.push_back({std::move(o), next_arrival_ + Jittered(options_.step)});
    next_arrival_ += absl::Seconds(std::exponential_distribution<double>(options_.rate)(rng_));
  }
  // Progress, in due order so one order's versions come out in sequence.
  std::sort(open_.begin(), open_.end(), [](const Open& a, const Open& b) { return a.due < b.due; });
  for (Open& o : open_) {
    if (o.due > now) break;
    if (Advance(&o.order, o.due)) {
      out.push_back(o.order);
      o.due += Jittered(options_.step);
    }
  }
  open_.erase(std::remove_if(open_.begin(), open_.end(),
                             [](const Open& o) {
                               return o.order.status() == v1::ORDER_STATUS_DELIVERED ||
                                      o.order.status() == v1::ORDER_STATUS_CANCELLED;
                             }),
              open_.end());
  return out;
}

std::vector<v1::Order> OrderSimulator::CancelOpen(absl::Time now) {
  std::vector<v1::Order> out;
  for (Open& o : open_) {
    o.order.set_status(v1::ORDER_STATUS_CANCELLED);
    (*o.order.mutable_attributes())["cancel_reason"] = "simulation stopped";
    o.order.set_version(o.order.version() + 1);
    o.order.set_updated_at_ms(absl::ToUnixMillis(now));
    out.push_back(o.order);
  }
  open_.clear();
  return out;
}

absl::Time OrderSimulator::next_due() const {
  absl::Time next = options_.rate > 0 ? next_arrival_ : absl::InfiniteFuture();
  for (const Open& o : open_) next = std::min(next, o.due);
  return next;
}

}  // namespace herald::cli
