// put and get between every pair of ranks, 1 B to 4 MiB, at unaligned
// offsets and lengths, with every byte checked.
#include "check.hpp"

#include <cstdint>
#include <vector>

namespace {

std::uint8_t pattern(int writer, int target, std::size_t i) {
  return static_cast<std::uint8_t>(writer * 37 + target * 11 + i * 7 + (i >> 8));
}

}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();
    constexpr std::size_t max_bytes = std::size_t{4} << 20;
    // One window per writer in every rank's segment, plus slack for offsets.
    constexpr std::size_t window = max_bytes + 64;
    auto mine = dsm::allocate<std::uint8_t>(window * static_cast<std::size_t>(n));
    const auto all = dsm::allgather(mine);
    CHECK(mine.is_local());
    CHECK_EQ(all[static_cast<std::size_t>(me)], mine);

    std::vector<std::size_t> sizes{1, 2, 3, 7, 8, 13, 64, 65, 1000, 4096, 4097, 65536 + 3, 1u << 20, max_bytes};
    std::vector<std::size_t> offsets{0, 1, 3, 8, 61};
    std::vector<std::uint8_t> src(max_bytes), back(max_bytes);
    for (std::size_t bytes : sizes) {
      for (std::size_t offset : offsets) {
        // Every rank writes its window of every rank...
        for (int t = 0; t < n; ++t) {
          for (std::size_t i = 0; i < bytes; ++i) src[i] = pattern(me, t, i + offset);
          auto dst = all[static_cast<std::size_t>(t)] + static_cast<std::ptrdiff_t>(window * static_cast<std::size_t>(me) + offset);
          dsm::rput(src.data(), bytes, dst).wait();
        }
        dsm::barrier();
        // ...then reads back what every rank wrote into the next rank.
        const int t = (me + 1) % n;
        for (int w = 0; w < n; ++w) {
          auto from = all[static_cast<std::size_t>(t)] + static_cast<std::ptrdiff_t>(window * static_cast<std::size_t>(w) + offset);
          dsm::rget(from, bytes, back.data()).wait();
          std::size_t bad = 0;
          for (std::size_t i = 0; i < bytes; ++i) bad += back[i] != pattern(w, t, i + offset);
          if (bad) CHECK_EQ(bad, std::size_t{0});
        }
        // Local view of the same bytes.
        const std::uint8_t* local = mine.local();
        std::size_t bad = 0;
        for (int w = 0; w < n; ++w)
          for (std::size_t i = 0; i < bytes; ++i)
            bad += local[window * static_cast<std::size_t>(w) + offset + i] != pattern(w, me, i + offset);
        CHECK_EQ(bad, std::size_t{0});
        dsm::barrier();
      }
    }

    // Single values, several in flight at once, then completed together.
    auto words = dsm::allgather(dsm::allocate<std::uint64_t>(static_cast<std::size_t>(n)));
    std::vector<dsm::future<>> puts;
    for (int t = 0; t < n; ++t)
      puts.push_back(dsm::rput(std::uint64_t(1000 * me + t), words[static_cast<std::size_t>(t)] + me));
    for (auto& f : puts) f.wait();
    dsm::barrier();
    for (int w = 0; w < n; ++w) CHECK_EQ(dsm::rget(words[static_cast<std::size_t>(me)] + w).wait(), std::uint64_t(1000 * w + me));
    std::vector<dsm::future<std::uint64_t>> gets;
    for (int t = 0; t < n; ++t) gets.push_back(dsm::rget(words[static_cast<std::size_t>(t)] + me));
    for (int t = 0; t < n; ++t) CHECK_EQ(gets[static_cast<std::size_t>(t)].wait(), std::uint64_t(1000 * me + t));
    // ready() polls without blocking; it turns true and wait() then yields.
    auto polled = dsm::rget(words[static_cast<std::size_t>((me + 1) % n)] + me);
    while (!polled.ready()) {
    }
    CHECK_EQ(polled.wait(), std::uint64_t(1000 * me + (me + 1) % n));
    // const global pointers read too.
    dsm::global_ptr<const std::uint64_t> ro = words[0];
    CHECK_EQ(dsm::rget(ro).wait(), std::uint64_t(0));
    dsm::barrier();
  });
}
