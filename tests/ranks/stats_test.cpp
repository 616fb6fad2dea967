// dsm::stats() and shared_array::stats() (issue 19.6): the counters count
// exactly what this rank did, in code, without DSM_STATS.
#include "check.hpp"

#include <cstdint>
#include <mutex>
#include <vector>

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();
    const auto next = static_cast<std::size_t>((me + 1) % n);
    constexpr std::size_t words = 64;

    const dsm::rank_stats start = dsm::stats();
    auto blocks = dsm::allocate_collective<std::uint64_t>(words);
    CHECK_EQ(dsm::stats().allocations - start.allocations, 1u);

    // Transfers and atomics, counted one by one with their bytes.
    std::vector<std::uint64_t> data(words, static_cast<std::uint64_t>(me));
    const dsm::rank_stats before = dsm::stats();
    for (int i = 0; i < 5; ++i) dsm::rput(data.data(), words, blocks[next]).wait();
    for (int i = 0; i < 3; ++i) dsm::rget(blocks[next], words, data.data()).wait();
    for (int i = 0; i < 7; ++i) dsm::atomic_fetch_add(blocks[next] + 1, std::uint64_t{1}).wait();
    const dsm::rank_stats moved = dsm::stats();
    CHECK_EQ(moved.puts - before.puts, 5u);
    CHECK_EQ(moved.bytes_put - before.bytes_put, 5 * words * sizeof(std::uint64_t));
    CHECK_EQ(moved.gets - before.gets, 3u);
    CHECK_EQ(moved.bytes_got - before.bytes_got, 3 * words * sizeof(std::uint64_t));
    CHECK_EQ(moved.atomics - before.atomics, 7u);

    // Barriers and their time, lock acquisitions, messages.
    dsm::barrier();
    dsm::barrier();
    const dsm::rank_stats synced = dsm::stats();
    CHECK_EQ(synced.barriers - moved.barriers, 2u);
    CHECK(synced.barrier_seconds >= moved.barrier_seconds);
    if (n > 1) CHECK(synced.messages_sent > moved.messages_sent && synced.messages_received > moved.messages_received);
    dsm::lock l;
    const dsm::rank_stats unlocked = dsm::stats();
    for (int i = 0; i < 3; ++i) std::scoped_lock g(l);
    CHECK_EQ(dsm::stats().locks - unlocked.locks, 3u);
    CHECK_EQ(dsm::stats().messages_rejected, 0u);

    // Per-array counters: a direct array keeps none; a single_writer
    // array counts the units a sweep of the next rank's block fetched
    // (waited for or ahead) and the copies the barrier dropped; a
    // write_shared array its twins and diffs.
    dsm::shared_array<std::uint64_t, dsm::direct> plain(words * static_cast<std::size_t>(n), "plain");
    (void)std::uint64_t(plain[next * words]);
    CHECK_EQ(plain.stats().misses, 0u);

    constexpr std::size_t per_rank = 1024, unit_elements = 128;  // 1 KiB units of doubles
    dsm::shared_array<double, dsm::single_writer> x(per_rank * static_cast<std::size_t>(n), dsm::block, "x");
    for (double& v : x.local()) v = me;
    dsm::barrier();
    const dsm::array_counters x0 = x.stats();
    double sum = 0;
    for (std::size_t i = 0; i < per_rank; ++i) sum += x[next * per_rank + i];
    CHECK_EQ(sum, double(per_rank) * double((me + 1) % n));
    const dsm::array_counters x1 = x.stats();
    const std::uint64_t remote_units = n > 1 ? per_rank / unit_elements : 0;
    CHECK_EQ((x1.misses + x1.prefetched) - (x0.misses + x0.prefetched), remote_units);
    dsm::barrier();
    CHECK_EQ(x.stats().copies_dropped - x1.copies_dropped, remote_units);

    dsm::shared_array<std::uint64_t, dsm::write_shared> w(per_rank * static_cast<std::size_t>(n), dsm::block, "w");
    dsm::barrier();
    const dsm::array_counters w0 = w.stats();
    w[next * per_rank + 3] = 7;  // one unit: one twin, one diff at the release
    w[next * per_rank + 4] = 8;
    dsm::barrier();
    const dsm::array_counters w1 = w.stats();
    CHECK_EQ(w1.twins - w0.twins, 1u);  // (on 1 rank its own unit: a home's writes through the array are diffed too)
    CHECK_EQ(w1.diffs - w0.diffs, 1u);
    CHECK_EQ(std::uint64_t(w[next * per_rank + 4]), 8u);
  });
}
