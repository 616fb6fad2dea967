// dsm::lock: mutual exclusion of a plain (non-atomic) read-modify-write
// counter, FIFO fairness under full contention, try_lock, scoped_lock.
#include "check.hpp"

#include <dsm/transport/clock.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();
    constexpr int rounds = 1000;
    const auto shared = dsm::allocate_collective<std::uint64_t>(2);
    const auto counter = shared[0];
    const auto log = dsm::allocate_collective<std::int32_t>(rounds * static_cast<std::size_t>(n))[0];
    dsm::lock l;

    for (int i = 0; i < rounds; ++i) {
      std::scoped_lock g(l);
      // Deliberately not atomic: only the lock keeps it exact.
      const std::uint64_t v = dsm::rget(counter).wait();
      dsm::rput(std::int32_t(me), log + static_cast<std::ptrdiff_t>(v)).wait();
      dsm::rput(v + 1, counter).wait();
    }
    dsm::barrier();
    CHECK_EQ(dsm::rget(counter).wait(), std::uint64_t(rounds) * static_cast<std::uint64_t>(n));

    // No rank starves: every rank finished its rounds (the exact total
    // above). How the acquisitions interleaved is reported, not judged: a
    // rank next to the lock's tail re-queues faster than one a network
    // round trip away, so equal shares are not what FIFO promises.
    if (me == 0 && n > 1) {
      std::vector<std::int32_t> order(rounds * static_cast<std::size_t>(n));
      dsm::rget(log, order.size(), order.data()).wait();
      std::vector<int> share(static_cast<std::size_t>(n));
      std::size_t handovers = 0;
      for (std::size_t i = 0; i < order.size(); ++i) {
        CHECK(order[i] >= 0 && order[i] < n);
        if (order[i] < 0 || order[i] >= n) break;
        ++share[static_cast<std::size_t>(order[i])];
        handovers += i > 0 && order[i] != order[i - 1];
      }
      for (int r = 0; r < n; ++r) CHECK_EQ(share[static_cast<std::size_t>(r)], rounds);
      fmt::print("lock: {} acquisitions, {} hand-overs between ranks\n", order.size(), handovers);
    }
    dsm::barrier();

    // FIFO: while rank 0 holds the lock, ranks 1 .. n-1 queue one after the
    // other, each once its predecessor is the queue's tail; they must get it
    // in exactly that order. Rank 0 lets go once the last has queued.
    if (n > 1) {
      const auto fifo_log = dsm::allocate_collective<std::int32_t>(static_cast<std::size_t>(n))[0];
      const auto next_slot = dsm::allocate_collective<std::uint64_t>(1)[0];
      if (me == 0) l.lock();
      dsm::barrier();
      const auto tail_is = [&](int r) {
        for (const dsm::transport::deadline give_up{std::chrono::seconds(60)};
             dsm::detail::lock_queue_probe::tail(l) != static_cast<std::uint64_t>(r) + 1;)
          if (give_up.passed())
            throw dsm::error(dsm::errc::timeout, fmt::format("rank {} waited 60 s for rank {} to queue", me, r));
      };
      tail_is(me == 0 ? n - 1 : me - 1);
      if (me == 0) {
        l.unlock();
      } else {
        std::scoped_lock g(l);
        const std::uint64_t slot = dsm::atomic_fetch_add(next_slot, std::uint64_t{1}).wait();
        dsm::rput(std::int32_t(me), fifo_log + static_cast<std::ptrdiff_t>(slot)).wait();
      }
      dsm::barrier();
      if (me == 0) {
        std::vector<std::int32_t> order(static_cast<std::size_t>(n - 1));
        dsm::rget(fifo_log, order.size(), order.data()).wait();
        for (int k = 1; k < n; ++k) CHECK_EQ(order[static_cast<std::size_t>(k - 1)], k);
      }
      dsm::barrier();
    }

    // try_lock: exactly one rank wins while rank 0 holds the lock.
    if (me == 0) l.lock();
    dsm::barrier();
    const bool got = me != 0 && l.try_lock();
    CHECK(!got);
    dsm::barrier();
    if (me == 0) {
      l.unlock();
      CHECK(l.try_lock());
      l.unlock();
    }
    dsm::barrier();
  });
}
