// shared_array with the direct policy, for every distribution: mapping,
// element and bulk access from every rank to every rank, compound
// assignment, local spans, range-v3 views, sizes 0, 1, prime and 64 MiB,
// and the errors (out-of-range index naming the array, stale pointers from a
// destroyed array).
#include "check.hpp"

#include <dsm/views.hpp>

#include <range/v3/algorithm/count.hpp>
#include <range/v3/numeric/accumulate.hpp>
#include <range/v3/range/conversion.hpp>
#include <range/v3/view/transform.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {

std::uint64_t value_of(std::size_t i) { return i * 2654435761u + 17; }

template <class Layout>
void exercise(Layout layout, const char* layout_name, std::size_t n) {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::string name = fmt::format("{}-{}", layout_name, n);
  dsm::shared_array<std::uint64_t, dsm::direct> a(n, layout, name);
  CHECK_EQ(a.size(), n);
  CHECK_EQ(a.name(), name);

  // Mapping: the local spans of all ranks cover every index exactly once.
  std::vector<std::uint32_t> covered(n);
  for (std::size_t g : a.local_indices()) {
    CHECK_EQ(a.owner(g), static_cast<std::size_t>(me));
    ++covered[g];
  }
  CHECK_EQ(a.local().size(), a.local_size());
  dsm::allreduce(std::span<std::uint32_t>(covered));
  CHECK_EQ(ranges::count(covered, 1u), static_cast<long>(n));

  // Element writes from every rank to every rank: rank r writes i = r mod p.
  for (std::size_t i = static_cast<std::size_t>(me); i < n; i += static_cast<std::size_t>(p)) a[i] = value_of(i);
  dsm::barrier();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += a[i] != value_of(i);
  CHECK_EQ(wrong, std::size_t{0});
  // The owner sees them in its local span.
  std::size_t local_wrong = 0;
  for (std::size_t l = 0; l < a.local_size(); ++l)
    local_wrong += a.local()[l] != value_of(a.distribution().global_index(static_cast<std::size_t>(me), l));
  CHECK_EQ(local_wrong, std::size_t{0});
  dsm::barrier();

  // Compound assignment, each element by one rank (the next one round).
  for (std::size_t i = static_cast<std::size_t>((me + 1) % p); i < n; i += static_cast<std::size_t>(p)) {
    a[i] += 3;
    a[i] *= 2;
  }
  dsm::barrier();
  wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += a[i] != (value_of(i) + 3) * 2;
  CHECK_EQ(wrong, std::size_t{0});
  dsm::barrier();

  // Bulk: each rank puts its slice, everyone gets everything, in pieces of
  // awkward sizes too.
  const std::size_t slice = (n + static_cast<std::size_t>(p) - 1) / static_cast<std::size_t>(p);
  const std::size_t first = std::min(n, slice * static_cast<std::size_t>(me)), last = std::min(n, first + slice);
  std::vector<std::uint64_t> mine(last - first);
  for (std::size_t i = first; i < last; ++i) mine[i - first] = ~value_of(i);
  a.put(first, mine);
  dsm::barrier();
  std::vector<std::uint64_t> all(n);
  a.get(0, all);
  wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += all[i] != ~value_of(i);
  CHECK_EQ(wrong, std::size_t{0});
  if (n > 10) {
    std::vector<std::uint64_t> part(n - 7);
    a.get(5, n - 7, part.data());
    CHECK_EQ(part.front(), ~value_of(5));
    CHECK_EQ(part.back(), ~value_of(n - 3));
  }

  // Views: the global view reads whole chunks (stats count one get per
  // owner per chunk), the local view is plain memory.
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < n; ++i) expected += ~value_of(i);
  auto& stats = dsm::detail::rt().stats();
  const std::uint64_t gets_before = stats.gets;
  const std::size_t chunk = 1000;
  CHECK_EQ(ranges::accumulate(dsm::views::global(a, chunk), std::uint64_t{0}), expected);
  const std::uint64_t chunks = (n + chunk - 1) / chunk;
  CHECK(stats.gets - gets_before <= chunks * static_cast<std::uint64_t>(p));
  const auto local_sum = ranges::accumulate(dsm::views::local(a), std::uint64_t{0});
  CHECK_EQ(dsm::allreduce(local_sum), expected);
  dsm::barrier();

  // Errors at the API boundary name the array and the index.
  const auto msg = CHECK_ERROR(dsm::errc::out_of_range, (void)a[n].get());
  CHECK(msg.find(fmt::format("'{}'", name)) != std::string::npos);
  CHECK(msg.find(fmt::format("index {}", n)) != std::string::npos);
  CHECK_ERROR(dsm::errc::out_of_range, a.get(n, 1, all.data()));
  CHECK_ERROR(dsm::errc::out_of_range, a.put(n > 0 ? n - 1 : 0, std::span<const std::uint64_t>(mine.data(), 2)));
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int p = dsm::ranks();
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{97}, std::size_t{10007}}) {
      exercise(dsm::block, "block", n);
      exercise(dsm::cyclic, "cyclic", n);
      exercise(dsm::block_cyclic(3), "bc3", n);
      exercise(dsm::block_cyclic(64), "bc64", n);
    }

    // 64 MiB: bulk in, bulk out, checksummed.
    constexpr std::size_t big = (std::size_t{64} << 20) / sizeof(std::uint64_t);
    for (bool use_cyclic : {false, true}) {
      auto run = [&](auto layout) {
        dsm::shared_array<std::uint64_t> a(big, layout, "big");
        for (std::size_t l = 0; l < a.local_size(); ++l)
          a.local()[l] = value_of(a.distribution().global_index(static_cast<std::size_t>(dsm::rank()), l));
        dsm::barrier();
        if (dsm::rank() == p - 1) {
          std::vector<std::uint64_t> all(big);
          a.get(0, all);
          std::size_t wrong = 0;
          for (std::size_t i = 0; i < big; ++i) wrong += all[i] != value_of(i);
          CHECK_EQ(wrong, std::size_t{0});
          for (auto& v : all) v = ~v;
          a.put(0, all);
        }
        dsm::barrier();
        std::size_t wrong = 0;
        for (std::size_t l = 0; l < a.local_size(); ++l)
          wrong += a.local()[l] != ~value_of(a.distribution().global_index(static_cast<std::size_t>(dsm::rank()), l));
        CHECK_EQ(wrong, std::size_t{0});
      };
      if (use_cyclic) run(dsm::cyclic);
      else run(dsm::block);
    }

    // A pointer kept from a destroyed array is stale.
    dsm::global_ptr<std::uint64_t> kept;
    {
      dsm::shared_array<std::uint64_t> gone(64, dsm::block, "gone");
      kept = gone.pointer(63);  // homed on the last rank
    }
    CHECK_ERROR(dsm::errc::stale_pointer, dsm::rget(kept).wait());
    dsm::barrier();
  });
}
