// Futures that compose (issue 19.5) over real operations: then() on gets
// and atomics, a get whose callback posts a put (the put's future is the
// result), when_all over futures of several types and over a vector of
// them, callbacks of a dropped future, errors. Argument "stalled": a get
// from a rank that does not progress times out naming the chain (run
// over tcp, where gets need the target, with DSM_PROGRESS=poll).
#include "check.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace {
std::uint64_t value_at(int rank, std::size_t i) { return std::uint64_t(rank) * 1000 + i; }

void composed() {
  const int me = dsm::rank(), n = dsm::ranks();
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  constexpr std::size_t width = 64;
  auto blocks = dsm::allocate_collective<std::uint64_t>(width);
  auto out = dsm::allocate_collective<std::uint64_t>(std::size_t(n));
  auto counter = dsm::allocate_collective<std::uint64_t>(1)[0];
  for (std::size_t i = 0; i < width; ++i) blocks[me].local()[i] = value_at(me, i);
  dsm::barrier();

  // A value transformed, then transformed again into another type.
  auto plus_one = dsm::rget(blocks[next] + 5).then([](std::uint64_t v) { return v + 1; });
  CHECK_EQ(plus_one.wait(), value_at(next, 6));
  CHECK_EQ(plus_one.wait(), value_at(next, 6));  // again, as an operation's value
  auto text = dsm::rget(blocks[next] + 9).then([](std::uint64_t v) { return v * 2; }).then([](std::uint64_t v) {
    return std::to_string(v);
  });
  CHECK_EQ(text.wait(), std::to_string(2 * value_at(next, 9)));

  // A get whose callback puts what it read into the previous rank's memory:
  // the chain is done when the put is.
  auto forwarded = dsm::rget(blocks[next] + 7).then([&](std::uint64_t v) {
    return dsm::rput(v, out[prev] + std::size_t(me));
  });
  static_assert(std::is_same_v<decltype(forwarded), dsm::future<>>);
  forwarded.wait();
  dsm::barrier();
  CHECK_EQ(out[me].local()[next], value_at((next + 1) % n, 7));
  dsm::barrier();

  // when_all over futures of three kinds, one of them void.
  std::uint64_t mine = 77;
  auto [from_next, from_prev] =
      dsm::when_all(dsm::rget(blocks[next] + 1), dsm::rput(mine, out[next] + std::size_t(me)),
                    dsm::rget(blocks[prev] + 2))
          .wait();
  CHECK_EQ(from_next, value_at(next, 1));
  CHECK_EQ(from_prev, value_at(prev, 2));
  dsm::barrier();
  CHECK_EQ(out[me].local()[prev], 77u);

  // when_all over a vector: element 3 of every rank's block, each through
  // a callback; tested with ready() (one progress round a call) only.
  std::vector<dsm::future<std::uint64_t>> reads;
  for (int r = 0; r < n; ++r)
    reads.push_back(dsm::rget(blocks[r] + 3).then([](std::uint64_t v) { return v + 1; }));
  auto all = dsm::when_all(std::move(reads));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!all.ready() && std::chrono::steady_clock::now() < until) {
  }
  CHECK(all.done());
  const std::vector<std::uint64_t> got = all.wait();
  CHECK_EQ(got.size(), std::size_t(n));
  for (int r = 0; r < n && r < int(got.size()); ++r) CHECK_EQ(got[std::size_t(r)], value_at(r, 3) + 1);

  // Atomics through callbacks: every fetched value is distinct, and the sum
  // of all ranks' increments is exact.
  std::vector<dsm::future<std::uint64_t>> tickets;
  for (int k = 0; k < 50; ++k)
    tickets.push_back(dsm::atomic_fetch_add(counter, std::uint64_t{1}).then([](std::uint64_t before) { return before; }));
  const std::vector<std::uint64_t> seen = dsm::when_all(std::move(tickets)).wait();
  dsm::barrier();
  CHECK_EQ(dsm::atomic_load(counter).wait(), std::uint64_t(50) * std::uint64_t(n));
  std::uint64_t seen_sum = 0;
  for (std::uint64_t v : seen) seen_sum += v;
  const std::uint64_t all_sum = dsm::allreduce(seen_sum);
  const std::uint64_t total = std::uint64_t(50) * std::uint64_t(n);
  CHECK_EQ(all_sum, total * (total - 1) / 2);  // 0 .. total-1, each once

  // A future dropped unwaited runs its callback before it goes.
  std::uint64_t dropped_saw = 0;
  { auto dropped = dsm::rget(blocks[next] + 11).then([&](std::uint64_t v) { dropped_saw = v; }); }
  CHECK_EQ(dropped_saw, value_at(next, 11));

  // An error a callback throws reaches the waiter, past later callbacks.
  int skipped = 0;
  auto failing = dsm::rget(blocks[next])
                     .then([](std::uint64_t) -> std::uint64_t {
                       throw dsm::error(dsm::errc::invalid_argument, "the callback refused");
                     })
                     .then([&](std::uint64_t v) {
                       ++skipped;
                       return v;
                     });
  const std::string message = CHECK_ERROR(dsm::errc::invalid_argument, (void)failing.wait());
  CHECK(message.find("the callback refused") != std::string::npos);
  CHECK_EQ(skipped, 0);
  // An operation refused when posted is thrown by the call itself.
  CHECK_ERROR(dsm::errc::out_of_range, (void)dsm::rget(blocks[next] + width));
  dsm::barrier();
}

// Rank 1 sleeps outside dsm (no progress under DSM_PROGRESS=poll); rank 0's
// chained get from it times out, named by the chain.
void stalled() {
  auto blocks = dsm::allocate_collective<std::uint64_t>(8);
  dsm::barrier();
  // Rank 1 may still progress on its way out of the barrier (serving a get
  // sent at once); a second later it is surely asleep.
  if (dsm::rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(8));
  if (dsm::rank() == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    (void)dsm::rget(blocks[1] + 2).then([](std::uint64_t v) { return v; }).wait();
  }
  dsm::barrier();
}
}  // namespace

int main(int argc, char** argv) {
  const bool stall = argc > 1 && std::string_view(argv[1]) == "stalled";
  return dsm_test::run(argc, argv, stall ? stalled : composed);
}
