// RPC and distributed objects (issue 19.1-2) on real ranks: results of
// every kind of callable and of serialisable types, arguments copied at
// the call, exact counts under contention (futures and fire-and-forget),
// errors thrown by the body arriving as the caller's, calls refused
// before they leave, forged requests refused by the target, dist_object
// fetch and as an argument. Arguments: "stalled" (a call to a rank that
// never progresses times out, named), "ff_throws" (an rpc_ff whose body
// throws ends the job), "mixed" (what holds between ranks of different
// binaries: run in a mixed-ISA job).
#include "check.hpp"

#include <fmt/ranges.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace {

// A user type carried through cereal's serialize().
struct particle {
  std::int32_t id = 0;
  double mass = 0;
  std::vector<double> position;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, mass, position, label);
  }
  bool operator==(const particle&) const = default;
};

std::int64_t square_plus_rank(std::int64_t x) { return x * x + dsm::rank(); }
std::string greet(const std::string& who, int times) {
  std::string s;
  for (int k = 0; k < times; ++k) s += "hello " + who + " from " + std::to_string(dsm::rank()) + ";";
  return s;
}

// This rank's program state that RPCs change.
std::uint64_t counter = 0;
std::vector<std::string> journal;

void results_of_every_kind() {
  const int me = dsm::rank(), n = dsm::ranks();
  for (int r = 0; r < n; ++r) {
    // A captureless lambda, a function (and its pointer), dsm::fn<&f>.
    CHECK_EQ(dsm::rpc(r, [](int a, int b) { return a * 100 + b + dsm::rank(); }, 7, me).wait(), 700 + me + r);
    CHECK_EQ(dsm::rpc(r, square_plus_rank, std::int64_t{12}).wait(), 144 + r);
    CHECK_EQ(dsm::rpc(r, &square_plus_rank, std::int64_t{-3}).wait(), 9 + r);
    CHECK_EQ(dsm::rpc(r, dsm::fn<&square_plus_rank>, std::int64_t{5}).wait(), 25 + r);
    // Strings, containers, a user type, a tuple, an optional.
    CHECK_EQ(dsm::rpc(r, greet, std::string("rank ") + std::to_string(me), 2).wait(),
             fmt::format("hello rank {} from {};hello rank {} from {};", me, r, me, r));
    const std::vector<double> values{1.5, 2.5, 3.0};
    CHECK_EQ(dsm::rpc(r, [](std::vector<double> v) {
               double s = 0;
               for (double x : v) s += x;
               return std::vector<double>{s, double(v.size()), double(dsm::rank())};
             }, values).wait(),
             (std::vector<double>{7.0, 3.0, double(r)}));
    const particle p{me, 1.25, {0.5, -1.0, 2.0}, "p" + std::to_string(me)};
    const particle moved = dsm::rpc(r, [](particle q) {
      q.mass *= 2;
      q.label += "@" + std::to_string(dsm::rank());
      for (double& x : q.position) x += 1;
      return q;
    }, p).wait();
    CHECK(moved == (particle{me, 2.5, {1.5, 0.0, 3.0}, fmt::format("p{}@{}", me, r)}));
    const std::map<std::string, int> m{{"a", 1}, {"b", 2}};
    const auto [sum, keys, where] = dsm::rpc(r, [](const std::map<std::string, int>& mm) {
      int s = 0;
      std::string k;
      for (const auto& [key, v] : mm) s += v, k += key;
      return std::tuple<int, std::string, int>{s, k, dsm::rank()};
    }, m).wait();
    CHECK_EQ(sum, 3);
    CHECK_EQ(keys, std::string("ab"));
    CHECK_EQ(where, r);
    CHECK(!dsm::rpc(r, [](int x) { return x > 0 ? std::optional<int>(x) : std::nullopt; }, -1).wait().has_value());
    // void: done when the body has run there.
    dsm::rpc(r, [](std::string s) { journal.push_back(std::move(s)); }, fmt::format("from {}", me)).wait();
  }
  dsm::barrier();
  CHECK_EQ(journal.size(), std::size_t(n));
  journal.clear();
  dsm::barrier();

  // Two lambdas spelt alike (same function, same signature) stay apart
  // between ranks of one binary.
  const int next = (me + 1) % n;
  auto a = dsm::rpc(next, [](int x) { return x + 1; }, 10);
  auto b = dsm::rpc(next, [](int x) { return x + 2; }, 10);
  CHECK_EQ(a.wait(), 11);
  CHECK_EQ(b.wait(), 12);

  // Futures compose: then() on a result, when_all over several ranks.
  CHECK_EQ(dsm::rpc(next, [] { return dsm::rank(); }).then([](int r) { return r * 2; }).wait(), next * 2);
  std::vector<dsm::future<int>> all;
  for (int r = 0; r < n; ++r) all.push_back(dsm::rpc(r, [] { return dsm::rank() * dsm::rank(); }));
  const auto squares = dsm::when_all(std::move(all)).wait();
  for (int r = 0; r < n; ++r) CHECK_EQ(squares[std::size_t(r)], r * r);
  dsm::barrier();
}

// Arguments are the caller's values at the call, whatever it does next.
void arguments_copied_at_the_call() {
  const int me = dsm::rank(), n = dsm::ranks();
  std::vector<int> v(1000, me);
  std::string s = "before";
  auto f = dsm::rpc((me + 1) % n, [](const std::vector<int>& x, const std::string& t) {
    int sum = 0;
    for (int e : x) sum += e;
    return std::to_string(sum) + t;
  }, v, s);
  v.assign(1000, -1);
  s = "after";
  CHECK_EQ(f.wait(), std::to_string(1000 * me) + "before");
  dsm::barrier();
}

// Every rank calls every rank many times, some with futures, some fire
// and forget: every body runs exactly once.
void counts_under_contention() {
  const int n = dsm::ranks();
  constexpr int per_pair = 200;
  counter = 0;
  const std::uint64_t served_before = dsm::stats().rpcs_served;
  dsm::barrier();
  std::vector<dsm::future<std::uint64_t>> replies;
  for (int k = 0; k < per_pair; ++k)
    for (int r = 0; r < n; ++r) {
      if (k % 2 == 0) replies.push_back(dsm::rpc(r, [](std::uint64_t by) { return counter += by; }, std::uint64_t{1}));
      else dsm::rpc_ff(r, [](std::uint64_t by) { counter += by; }, std::uint64_t{1});
    }
  std::vector<std::uint64_t> seen = dsm::when_all(std::move(replies)).wait();
  for (std::uint64_t v : seen) CHECK(v >= 1 && v <= std::uint64_t(per_pair) * std::uint64_t(n));
  // The fire-and-forget ones arrive in their own time.
  const std::uint64_t expected = std::uint64_t(per_pair) * std::uint64_t(n);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (counter < expected && std::chrono::steady_clock::now() < until) dsm::progress();
  dsm::barrier();
  CHECK_EQ(counter, expected);
  CHECK_EQ(dsm::stats().rpcs_served - served_before, expected);
  dsm::barrier();
}

// A body may transfer and wait for one-sided operations; what it throws
// is the caller's error, with its category; collectives are refused in it.
void bodies_and_their_errors() {
  const int me = dsm::rank(), n = dsm::ranks();
  const int next = (me + 1) % n;
  const auto homes = dsm::allocate_collective<std::uint64_t>(std::size_t(n));
  const auto cells = homes[std::size_t(me)];
  dsm::barrier();
  // The body puts into the caller's memory and waits for it.
  dsm::rpc(next, [](dsm::global_ptr<std::uint64_t> back, std::uint64_t v) { dsm::rput(v, back).wait(); },
           homes[std::size_t(me)] + std::size_t(next), std::uint64_t(4242 + me))
      .wait();
  CHECK_EQ(cells.local()[next], std::uint64_t(4242 + me));

  std::string text = CHECK_ERROR(dsm::errc::out_of_range, dsm::rpc(next, [](int i) -> int {
    throw dsm::error(dsm::errc::out_of_range, fmt::format("index {} of nothing", i));
  }, 17).wait());
  CHECK(text.find(fmt::format("rpc to rank {} (", next)) != std::string::npos);
  CHECK(text.find("index 17 of nothing") != std::string::npos);
  text = CHECK_ERROR(dsm::errc::rpc_exception, dsm::rpc(next, [] { throw std::runtime_error("the body's own"); }).wait());
  CHECK(text.find("threw: the body's own") != std::string::npos);
  text = CHECK_ERROR(dsm::errc::contract_violation, dsm::rpc(next, [] { dsm::barrier(); }).wait());
  CHECK(text.find("barrier called inside an RPC's function") != std::string::npos);
  // A failed future's error stays with the chain.
  CHECK_ERROR(dsm::errc::rpc_exception,
              dsm::rpc(next, [] { throw std::logic_error("x"); }).then([] { return 1; }).wait());

  // Refused before anything is sent.
  CHECK_ERROR(dsm::errc::out_of_range, dsm::rpc(n, [] {}));
  CHECK_ERROR(dsm::errc::out_of_range, dsm::rpc_ff(-1, [] {}));
  std::int64_t (*null_function)(std::int64_t) = nullptr;
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::rpc(next, null_function, std::int64_t{1}));
  text = CHECK_ERROR(dsm::errc::invalid_argument,
                     dsm::rpc(next, [](const std::vector<char>&) {}, std::vector<char>((64u << 20) + 1)));
  CHECK(text.find("more than an RPC carries") != std::string::npos);
  dsm::barrier();
  dsm::deallocate(cells);
}

// Requests no honest rank sends: an unknown function, arguments that do
// not parse, a function pointer outside the program's code. Each is
// refused there (counted), and the caller's call fails with the reason.
void forged_requests() {
  const int me = dsm::rank(), n = dsm::ranks();
  if (n < 2) return;
  auto& rt = dsm::detail::rt();
  const auto rejected_before = dsm::stats().messages_rejected;
  dsm::barrier();
  const auto target = std::uint32_t((me + 1) % n);
  using adder = dsm::detail::rpc_function<decltype(&square_plus_rank), std::int64_t>;
  using lambda_type = decltype([](std::string s) { return s.size(); });
  using sized = dsm::detail::rpc_function<lambda_type, std::string>;
  // Two functions spelt alike: told apart by their offsets only.
  using twin = dsm::detail::rpc_function<decltype([](int x) { return x; }), int>;
  using other_twin = dsm::detail::rpc_function<decltype([](int x) { return x + 1; }), int>;
  CHECK(twin::entry->key == other_twin::entry->key);
  CHECK(twin::entry->offset != other_twin::entry->offset);
  (void)dsm::rpc(int(target), lambda_type{}, std::string("x")).wait();  // the same function, well formed
  struct forged {
    std::uint64_t key, offset;
    std::vector<std::byte> arguments;
    const char* reason;
  };
  std::vector<std::byte> truncated;
  dsm::detail::append_values(truncated, std::string("a long enough string"));
  truncated.resize(truncated.size() - 3);
  std::vector<std::byte> outside;
  dsm::detail::append_values(outside, std::uint64_t{1} << 40, std::int64_t{3});
  std::vector<std::byte> spare;
  dsm::detail::append_values(spare, std::string("ok"), std::uint8_t{1});
  const std::vector<forged> cases{
      {0x1234567, sized::entry->offset, {}, "no RPC function with key"},
      {sized::entry->key, sized::entry->offset, truncated, "bytes to read"},
      {sized::entry->key, sized::entry->offset, spare, "left over"},
      {twin::entry->key, twin::entry->offset + 16, {}, "no RPC function"},
      {adder::entry->key, adder::entry->offset, outside, "outside the program's code"},
  };
  for (const forged& f : cases) {
    const std::uint64_t id = rt.rpc().expect_reply(target);
    rt.post_rpc(target, id, f.key, f.offset, f.arguments);
    std::optional<dsm::detail::rpc_reply> reply;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!(reply = rt.rpc().take_reply(id)) && std::chrono::steady_clock::now() < until) dsm::progress();
    CHECK(reply.has_value());
    if (!reply) continue;
    CHECK_EQ(reply->status, 1 + std::uint64_t(dsm::errc::protocol));
    const std::string text(reinterpret_cast<const char*>(reply->bytes.data()), reply->bytes.size());
    CHECK(text.find(f.reason) != std::string::npos);
    if (text.find(f.reason) == std::string::npos) fmt::print(stderr, "forged request answered: {}\n", text);
  }
  dsm::barrier();
  CHECK_EQ(dsm::stats().messages_rejected - rejected_before, cases.size());
  dsm::barrier();
}

void distributed_objects() {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::dist_object<std::string> name(fmt::format("rank-{}", me));
  dsm::dist_object<std::vector<int>> inbox(std::in_place, std::size_t(0), 0);
  for (int r = 0; r < n; ++r) CHECK_EQ(name.fetch(r).wait(), fmt::format("rank-{}", r));
  // Every rank appends to every rank's own instance through an RPC.
  std::vector<dsm::future<std::size_t>> sizes;
  for (int r = 0; r < n; ++r)
    sizes.push_back(dsm::rpc(r, [](dsm::dist_object<std::vector<int>>& box, int from) {
      box->push_back(from);
      return box->size();
    }, inbox, me));
  for (auto& f : sizes) CHECK(f.wait() >= 1);
  dsm::barrier();
  CHECK_EQ(inbox->size(), std::size_t(n));
  long total = 0;
  for (int v : *inbox) total += v;
  CHECK_EQ(total, long(n) * (n - 1) / 2);
  // Ids agree across ranks and objects differ.
  CHECK(name.id() != inbox.id());
  CHECK_EQ(dsm::allreduce(name.id(), dsm::max{}), name.id());
  CHECK_EQ(dsm::allreduce(name.id(), dsm::min{}), name.id());
  dsm::barrier();

  // An RPC naming an object its target has destroyed fails, named.
  std::optional<dsm::dist_object<int>> late(std::in_place, me * 10);
  const int next = (me + 1) % n;
  CHECK_EQ(late->fetch(next).wait(), next * 10);
  const auto late_id = late->id();
  dsm::barrier();
  late.reset();
  dsm::barrier();
  if (n > 1) {
    // Rebuild a reference the way an argument travels.
    const std::string text = CHECK_ERROR(dsm::errc::invalid_argument, dsm::rpc(next, [](std::uint64_t id) {
      dsm::detail::dist_object_ref<int> ref{id};
      return *dsm::detail::local_arg(ref);
    }, late_id).wait());
    CHECK(text.find(fmt::format("dist_object<int> #{} was destroyed", late_id)) != std::string::npos);
  }
  dsm::barrier();
}

// A call to rank 1, which sleeps without progressing, times out naming it.
void stalled() {
  if (dsm::rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(8));
  if (dsm::rank() == 0) (void)dsm::rpc(1, [] { return 1; }).wait();
  dsm::barrier();
}

// An rpc_ff whose body throws: nobody waits for it, so the job ends.
void ff_throws() {
  if (dsm::rank() == 0) dsm::rpc_ff(1, [](int x) { throw std::runtime_error(fmt::format("ff body failed with {}", x)); }, 5);
  dsm::barrier();
  dsm::barrier();
}

// Ranks of different binaries (an x86-64 and an arm64 build): functions
// named by their spelling work (a lambda spelt once, dsm::fn<&f>,
// dist_object); a function pointer and a lambda spelt like another are
// refused before they leave.
void mixed() {
  const int me = dsm::rank(), n = dsm::ranks();
  for (int r = 0; r < n; ++r) {
    CHECK_EQ(dsm::rpc(r, dsm::fn<&square_plus_rank>, std::int64_t{6}).wait(), 36 + r);
    CHECK_EQ(dsm::rpc(r, dsm::fn<&greet>, std::string("x"), 1).wait(), fmt::format("hello x from {};", r));
    const particle p{me, 0.5, {1, 2}, "m"};
    CHECK(dsm::rpc(r, [](particle q, std::int64_t k) {
      q.id += int(k);
      return q;
    }, p, std::int64_t{100}).wait() == (particle{me + 100, 0.5, {1, 2}, "m"}));
  }
  dsm::dist_object<std::uint64_t> word(std::uint64_t(me) << 40 | 7);
  for (int r = 0; r < n; ++r) CHECK_EQ(word.fetch(r).wait(), std::uint64_t(r) << 40 | 7);
  const int other = [&] {
    for (int r = 0; r < n; ++r)
      if (dsm::detail::rt().isa_of(std::uint32_t(r)) != dsm::detail::rt().isa_of(std::uint32_t(me))) return r;
    return -1;
  }();
  CHECK(other >= 0);
  if (other >= 0) {
    std::string text = CHECK_ERROR(dsm::errc::invalid_argument, dsm::rpc(other, square_plus_rank, std::int64_t{1}));
    CHECK(text.find("a function pointer names code of this binary") != std::string::npos);
    auto twin = [](int x) { return x; };
    auto twin2 = [](int x) { return -x; };
    (void)twin2;
    text = CHECK_ERROR(dsm::errc::invalid_argument, dsm::rpc(other, twin, 1));
    CHECK(text.find("is spelt alike by several functions") != std::string::npos);
    CHECK_ERROR(dsm::errc::invalid_argument, dsm::rpc(other, twin2, 1));
  }
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "all";
  return dsm_test::run(argc, argv, [&] {
    if (mode == "stalled") return stalled();
    if (mode == "ff_throws") return ff_throws();
    if (mode == "mixed") return mixed();
    results_of_every_kind();
    arguments_copied_at_the_call();
    counts_under_contention();
    bodies_and_their_errors();
    forged_requests();
    distributed_objects();
  });
}
