// dsm::threads::multiple (issue 16.6): any thread of a rank calls dsm.
// Usage: threads_test CASE
//   writes   two threads per rank write their own slots of one array per
//            policy (direct, single_writer, write_shared) and rput to every
//            rank's block, concurrently; after a barrier every rank checks
//            every slot: a lost write is a failed check naming it
//   lock     two threads per rank increment one counter under one dsm::lock
//   blocked  one thread of each rank waits on a flag that the previous
//            rank's other thread sets only after a barrier: the waiting
//            thread must not hold the rank (its sibling enters the barrier
//            meanwhile), or the job times out
//   mixed    one thread in collectives (allreduce rounds on the world)
//            while the other moves data through a caching array and puts
#include "check.hpp"

#include <atomic>
#include <cstdint>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr int threads_per_rank = 2;

std::uint64_t stamp(int rank, int thread, std::size_t k) {
  return (static_cast<std::uint64_t>(rank) << 40) ^ (static_cast<std::uint64_t>(thread) << 32) ^ (k * 40503u + 1);
}

// Runs body(t) on threads_per_rank threads of this rank and joins them; a
// dsm::error on one is a failed check, not a terminate.
template <class Body>
void on_threads(Body body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_per_rank; ++t)
    threads.emplace_back([&, t] {
      try {
        body(t);
      } catch (const std::exception& e) {
        dsm_test::report(false, "a thread's dsm calls", __FILE__, __LINE__, e.what());
      }
    });
  for (auto& th : threads) th.join();
}

template <class Policy>
void writes_through(std::size_t per_thread) {
  const int me = dsm::rank(), n = dsm::ranks();
  const std::size_t slots = per_thread * threads_per_rank;
  dsm::shared_array<std::uint64_t, Policy> a(slots * static_cast<std::size_t>(n), dsm::cyclic, "threads");
  // Slot k of thread t of rank r: element (r * slots + t * per_thread + k),
  // cyclic, so every unit is written by several ranks and both threads.
  on_threads([&](int t) {
    for (std::size_t k = 0; k < per_thread; ++k)
      a[static_cast<std::size_t>(me) * slots + static_cast<std::size_t>(t) * per_thread + k] = stamp(me, t, k);
  });
  dsm::barrier();
  std::size_t wrong = 0, first = 0;
  for (int r = 0; r < n; ++r)
    for (int t = 0; t < threads_per_rank; ++t)
      for (std::size_t k = 0; k < per_thread; ++k) {
        const std::size_t i = static_cast<std::size_t>(r) * slots + static_cast<std::size_t>(t) * per_thread + k;
        if (a[i].get() != stamp(r, t, k) && wrong++ == 0) first = i;
      }
  if (wrong != 0)
    dsm_test::report(false, "every thread's write arrived", __FILE__, __LINE__,
                     fmt::format("{}: {} lost, first [{}] = {:#x}", a.describe(), wrong, first, a[first].get()));
  dsm::barrier();
}

void writes() {
  writes_through<dsm::direct>(200);
  writes_through<dsm::single_writer>(200);
  writes_through<dsm::write_shared>(200);
  // Puts from both threads into every rank's block.
  const int me = dsm::rank(), n = dsm::ranks();
  constexpr std::size_t per_thread = 64;
  auto blocks = dsm::allocate_collective<std::uint64_t>(per_thread * threads_per_rank * static_cast<std::size_t>(n));
  on_threads([&](int t) {
    for (int r = 0; r < n; ++r)
      for (std::size_t k = 0; k < per_thread; ++k) {
        const std::size_t at = (static_cast<std::size_t>(me) * threads_per_rank + static_cast<std::size_t>(t)) * per_thread + k;
        dsm::rput(stamp(me, t, k), blocks[static_cast<std::size_t>(r)] + static_cast<std::ptrdiff_t>(at)).wait();
      }
  });
  dsm::barrier();
  std::size_t wrong = 0;
  const std::uint64_t* mine = blocks[static_cast<std::size_t>(me)].local();
  for (int r = 0; r < n; ++r)
    for (int t = 0; t < threads_per_rank; ++t)
      for (std::size_t k = 0; k < per_thread; ++k)
        wrong += mine[(static_cast<std::size_t>(r) * threads_per_rank + static_cast<std::size_t>(t)) * per_thread + k] !=
                 stamp(r, t, k);
  CHECK_EQ(wrong, 0u);
  dsm::barrier();
  dsm::deallocate(blocks[static_cast<std::size_t>(me)]);
  dsm::barrier();
}

void lock_counts() {
  dsm::lock l;
  dsm::shared_array<std::uint64_t, dsm::single_writer> counter(1, "counter");
  constexpr int times = 60;
  on_threads([&](int) {
    for (int k = 0; k < times; ++k) {
      const std::scoped_lock g(l);
      counter[0] = counter[0].get() + 1;
    }
  });
  dsm::barrier();
  CHECK_EQ(counter[0].get(), static_cast<std::uint64_t>(times * threads_per_rank * dsm::ranks()));
  dsm::barrier();
}

// Twice: a flag of a shared_array (wait_until, signal), then a word
// (dsm::wait_until, a put completed at the target).
void blocked() {
  const int me = dsm::rank(), n = dsm::ranks();
  const auto next_rank = static_cast<std::size_t>((me + 1) % n);
  dsm::shared_array<std::uint64_t, dsm::single_writer> flags(static_cast<std::size_t>(n), dsm::cyclic, "flags");
  auto words = dsm::allocate_collective<std::uint64_t>(1);
  const dsm::global_ptr<std::uint64_t> mine = words[static_cast<std::size_t>(me)];
  dsm::barrier();
  on_threads([&](int t) {
    if (t == 0) {
      flags.wait_until(static_cast<std::size_t>(me), dsm::cmp::eq, 1);
      dsm::wait_until(mine, dsm::cmp::eq, std::uint64_t{1});
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the sibling is waiting by now
      dsm::barrier();
      flags.signal(next_rank, 1);
      dsm::barrier();
      dsm::rput(std::uint64_t{1}, words[next_rank], dsm::remote_cx).wait();
    }
  });
  CHECK_EQ(*mine.local(), 1u);
  CHECK_EQ(flags.test(static_cast<std::size_t>(me), dsm::cmp::eq, 1), true);
  dsm::barrier();
  dsm::deallocate(mine);
  dsm::barrier();
}

void mixed() {
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::shared_array<std::uint64_t, dsm::write_shared> a(static_cast<std::size_t>(256 * n), "mixed");
  std::atomic<int> sums_done{0};
  on_threads([&](int t) {
    if (t == 0) {
      for (int round = 1; round <= 50; ++round) {
        CHECK_EQ(dsm::allreduce(round), round * n);
        ++sums_done;
      }
    } else {
      for (std::size_t k = 0; k < 256; ++k) a[static_cast<std::size_t>(me) * 256 + k] = stamp(me, 1, k);
      std::uint64_t seen = 0;
      for (std::size_t i = 0; i < a.size(); ++i) seen += a[i].get() != 0;  // concurrent reads: any value
      (void)seen;
    }
  });
  CHECK_EQ(sums_done.load(), 50);
  dsm::barrier();
  std::size_t wrong = 0;
  for (int r = 0; r < n; ++r)
    for (std::size_t k = 0; k < 256; ++k) wrong += a[static_cast<std::size_t>(r) * 256 + k].get() != stamp(r, 1, k);
  CHECK_EQ(wrong, 0u);
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view which = argc > 1 ? argv[1] : "";
  return dsm_test::run(
      argc, argv,
      [&] {
        if (which == "writes") writes();
        else if (which == "lock") lock_counts();
        else if (which == "blocked") blocked();
        else if (which == "mixed") mixed();
        else CHECK_EQ(std::string(which), std::string("a case"));
      },
      dsm::threads::multiple);
}
