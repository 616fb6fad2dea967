// Remote atomics from every rank: an exact counter, a compare-and-swap
// ticket dispenser, exchange/load/store, on 64- and 32-bit words.
#include "check.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();
    const auto cells = dsm::allocate_collective<std::uint64_t>(4);
    const auto counter = cells[0], tickets = cells[0] + 1, swapped = cells[0] + 2;
    const auto small = dsm::allocate_collective<std::uint32_t>(2);
    constexpr int adds = 500;

    for (int i = 0; i < adds; ++i) dsm::atomic_fetch_add(counter, std::uint64_t{1}).wait();
    for (int i = 0; i < adds; ++i) dsm::atomic_fetch_add(small[static_cast<std::size_t>(n - 1)], std::uint32_t{3}).wait();
    dsm::barrier();
    CHECK_EQ(dsm::atomic_load(counter).wait(), std::uint64_t(adds) * static_cast<std::uint64_t>(n));
    CHECK_EQ(dsm::atomic_load(small[static_cast<std::size_t>(n - 1)]).wait(), std::uint32_t(3 * adds * n));

    // Tickets by CAS: every rank takes 100; all tickets 0 .. 100n-1 are
    // handed out exactly once.
    std::vector<std::uint64_t> mine;
    while (mine.size() < 100) {
      std::uint64_t seen = dsm::atomic_load(tickets).wait();
      for (;;) {
        const std::uint64_t old = dsm::atomic_compare_exchange(tickets, seen, seen + 1).wait();
        if (old == seen) break;
        seen = old;
      }
      mine.push_back(seen);
    }
    std::vector<std::uint64_t> all(mine.size() * static_cast<std::size_t>(n));
    auto gathered = dsm::allgather(mine.size());
    CHECK(std::all_of(gathered.begin(), gathered.end(), [](std::size_t s) { return s == 100; }));
    // Count with a collective sum of a per-ticket histogram.
    std::vector<std::uint32_t> histogram(100 * static_cast<std::size_t>(n));
    for (auto t : mine) {
      CHECK(t < histogram.size());
      if (t < histogram.size()) ++histogram[t];
    }
    dsm::allreduce(std::span<std::uint32_t>(histogram));
    CHECK(std::all_of(histogram.begin(), histogram.end(), [](std::uint32_t c) { return c == 1; }));

    // exchange: every rank swaps its id in; the old values plus the final
    // value are exactly the initial 0 and every rank's id + 1.
    const std::uint64_t old = dsm::atomic_exchange(swapped, std::uint64_t(me + 1)).wait();
    auto olds = dsm::allgather(old);
    dsm::barrier();
    olds.push_back(dsm::atomic_load(swapped).wait());
    std::sort(olds.begin(), olds.end());
    for (int i = 0; i <= n; ++i) CHECK_EQ(olds[static_cast<std::size_t>(i)], std::uint64_t(i));
    dsm::barrier();

    // store then load, on a 32-bit word homed on the next rank.
    const auto target = small[static_cast<std::size_t>((me + 1) % n)] + 1;
    dsm::atomic_store(target, std::uint32_t(77 + me)).wait();
    dsm::barrier();
    CHECK_EQ(dsm::atomic_load(small[static_cast<std::size_t>(me)] + 1).wait(), std::uint32_t(77 + (me + n - 1) % n));

    // Misaligned atomics are refused before reaching the target.
    auto misaligned = dsm::reinterpret_pointer_cast<std::uint64_t>(dsm::reinterpret_pointer_cast<std::uint8_t>(counter) + 4);
    CHECK_ERROR(dsm::errc::invalid_argument, dsm::atomic_fetch_add(misaligned, std::uint64_t{1}).wait());
    dsm::barrier();
  });
}
