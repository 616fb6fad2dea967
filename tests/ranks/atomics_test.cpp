// Remote atomics from every rank: an exact counter, a compare-and-swap
// ticket dispenser, exchange/load/store, on 64- and 32-bit words; float and
// double adds, and/or/xor, min/max, each with exact totals under contention.
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

    // Floating-point adds under contention: every rank adds 0.5 and 0.25
    // (exact in binary) `adds` times to one double and one float on rank
    // n-1; the totals are exact, and the values each add saw are distinct
    // (each add saw the word after a different number of earlier adds).
    {
      const auto doubles = dsm::allocate_collective<double>(1);
      const auto floats = dsm::allocate_collective<float>(1);
      const auto d = doubles[static_cast<std::size_t>(n - 1)];
      const auto f = floats[static_cast<std::size_t>(n - 1)];
      std::vector<double> seen;
      for (int i = 0; i < adds; ++i) {
        seen.push_back(dsm::atomic_fetch_add(d, 0.5).wait());
        dsm::atomic_fetch_add(f, 0.25f).wait();
      }
      dsm::barrier();
      CHECK_EQ(dsm::rget(d).wait(), 0.5 * adds * n);
      CHECK_EQ(dsm::rget(f).wait(), 0.25f * static_cast<float>(adds * n));
      auto all_seen = dsm::allgatherv(std::span<const double>(seen));
      std::vector<double> every;
      for (const auto& part : all_seen) every.insert(every.end(), part.begin(), part.end());
      std::sort(every.begin(), every.end());
      CHECK(std::adjacent_find(every.begin(), every.end()) == every.end());
      CHECK_EQ(every.size(), static_cast<std::size_t>(adds * n));
      dsm::barrier();
    }

    // Bitwise and, or, xor on 64 and 32 bits: each rank sets its own bit
    // (or), clears its bit of a word of ones (and), and toggles its bit
    // twice and bit 40 once per round (xor), all on rank 0's words.
    {
      const auto bits64 = dsm::allocate_collective<std::uint64_t>(3)[0];
      const auto bits32 = dsm::allocate_collective<std::uint32_t>(1)[0];
      if (me == 0) dsm::atomic_store(bits64 + 1, ~std::uint64_t{0}).wait();
      dsm::barrier();
      const std::uint64_t mine64 = std::uint64_t{1} << me;
      dsm::atomic_fetch_or(bits64, mine64).wait();
      const std::uint64_t before = dsm::atomic_fetch_and(bits64 + 1, ~mine64).wait();
      CHECK((before & mine64) != 0);  // nobody else clears this rank's bit
      for (int i = 0; i < 2 * adds; ++i) dsm::atomic_fetch_xor(bits64 + 2, mine64).wait();
      for (int i = 0; i < adds; ++i) dsm::atomic_fetch_xor(bits64 + 2, std::uint64_t{1} << 40).wait();
      dsm::atomic_fetch_or(bits32, std::uint32_t{1} << (me + 3)).wait();
      dsm::barrier();
      const std::uint64_t everyone = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
      CHECK_EQ(dsm::atomic_load(bits64).wait(), everyone);
      CHECK_EQ(dsm::atomic_load(bits64 + 1).wait(), ~everyone);
      CHECK_EQ(dsm::atomic_load(bits64 + 2).wait(), (adds * n) % 2 == 1 ? std::uint64_t{1} << 40 : std::uint64_t{0});
      CHECK_EQ(dsm::atomic_load(bits32).wait(), static_cast<std::uint32_t>(everyone << 3));
      dsm::barrier();
    }

    // min and max under contention, compared as the word's type: signed
    // 32-bit values below zero, unsigned 64-bit values above 2^63 (a
    // signed comparison would take them for the smallest).
    {
      const auto ints = dsm::allocate_collective<std::int32_t>(2)[0];
      const auto words = dsm::allocate_collective<std::uint64_t>(2)[0];
      if (me == 0) {
        dsm::atomic_store(ints, std::int32_t{0}).wait();
        dsm::atomic_store(ints + 1, std::int32_t{-1000000}).wait();
        dsm::atomic_store(words, ~std::uint64_t{0}).wait();
      }
      dsm::barrier();
      const std::uint64_t high = std::uint64_t{1} << 63;
      for (int i = 0; i < adds; ++i) {
        const std::int32_t v = -(me * 1000 + i);
        const std::int32_t old_min = dsm::atomic_fetch_min(ints, v).wait();
        CHECK(old_min <= 0);
        dsm::atomic_fetch_max(ints + 1, v).wait();
        dsm::atomic_fetch_min(words, high + static_cast<std::uint64_t>(me * 1000 + i) + 7).wait();
        dsm::atomic_fetch_max(words + 1, high + static_cast<std::uint64_t>(me * 1000 + i)).wait();
      }
      dsm::barrier();
      CHECK_EQ(dsm::atomic_load(ints).wait(), -((n - 1) * 1000 + adds - 1));
      CHECK_EQ(dsm::atomic_load(ints + 1).wait(), 0);
      CHECK_EQ(dsm::atomic_load(words).wait(), high + 7);
      CHECK_EQ(dsm::atomic_load(words + 1).wait(), high + static_cast<std::uint64_t>((n - 1) * 1000 + adds - 1));
      // The value a min or max returns is the word before it: a max that
      // changes nothing returns the current value.
      dsm::barrier();
      if (me == 0) CHECK_EQ(dsm::atomic_fetch_max(ints + 1, std::int32_t{-5}).wait(), 0);
      dsm::barrier();
    }

    // Misaligned atomics are refused before reaching the target.
    auto misaligned = dsm::reinterpret_pointer_cast<std::uint64_t>(dsm::reinterpret_pointer_cast<std::uint8_t>(counter) + 4);
    CHECK_ERROR(dsm::errc::invalid_argument, dsm::atomic_fetch_add(misaligned, std::uint64_t{1}).wait());
    auto misaligned_double = dsm::reinterpret_pointer_cast<double>(dsm::reinterpret_pointer_cast<std::uint8_t>(counter) + 4);
    CHECK_ERROR(dsm::errc::invalid_argument, dsm::atomic_fetch_add(misaligned_double, 1.0).wait());
    CHECK_ERROR(dsm::errc::invalid_argument, dsm::atomic_fetch_max(misaligned, std::uint64_t{1}).wait());
    CHECK_ERROR(dsm::errc::invalid_argument, dsm::atomic_fetch_add(dsm::global_ptr<double>{}, 1.0).wait());
    dsm::barrier();
  });
}
