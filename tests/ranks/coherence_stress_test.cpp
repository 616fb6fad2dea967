// Randomised stress of a caching policy (argv[1]: single_writer,
// write_shared or migratory): every rank runs critical sections under random locks, each
// doing random reads and writes of the indices that lock guards, and logs
// them with the lock's sequence number (kept in a shared array under the
// same lock). Replaying the logs sequentially in lock order must reproduce
// every value read and the final array.
#include "check.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string_view>
#include <vector>

namespace {

struct logged_op {
  std::uint32_t lock;
  std::uint32_t sequence;  // the critical section's place in its lock's order
  std::uint32_t index;
  std::uint32_t is_write;
  std::uint64_t value;  // written, or read
};
static_assert(sizeof(logged_op) == 24);

template <class Policy>
void stress(std::size_t unit_bytes, std::uint32_t seed) {
  const int me = dsm::rank();
  constexpr std::size_t locks = 4, n = 257, sections = 60;
  dsm::shared_array<std::uint64_t, Policy> data(n, dsm::cyclic, dsm::unit_size{unit_bytes}, "stressed");
  dsm::shared_array<std::uint64_t, Policy> order(locks, dsm::block, dsm::unit_size{64}, "lock order");
  std::vector<std::unique_ptr<dsm::lock>> guards;
  for (std::size_t l = 0; l < locks; ++l) guards.push_back(std::make_unique<dsm::lock>());

  std::mt19937 gen(seed * 977u + static_cast<std::uint32_t>(me));
  std::vector<logged_op> log;
  for (std::size_t k = 0; k < sections; ++k) {
    const auto l = static_cast<std::uint32_t>(gen() % locks);
    guards[l]->lock();
    const auto s = static_cast<std::uint32_t>(order[l].get());
    order[l] = s + 1;
    for (std::size_t op = 0, ops = 1 + gen() % 6; op < ops; ++op) {
      const std::size_t index = l + locks * (gen() % ((n - l + locks - 1) / locks));  // guarded by lock l
      if (gen() % 2 == 0) {
        log.push_back({l, s, static_cast<std::uint32_t>(index), 0, data[index].get()});
      } else {
        const std::uint64_t v = (std::uint64_t(me) << 40) | (k << 20) | op;
        data[index] = v;
        log.push_back({l, s, static_cast<std::uint32_t>(index), 1, v});
      }
    }
    guards[l]->unlock();
  }
  dsm::barrier();

  // Everybody's log, replayed in lock order.
  const auto all = dsm::detail::rt().allgather(
      {reinterpret_cast<const std::byte*>(log.data()), log.size() * sizeof(logged_op)});
  std::vector<logged_op> ops;
  for (const auto& bytes : all) {
    const std::size_t count = bytes.size() / sizeof(logged_op);
    const std::size_t at = ops.size();
    ops.resize(at + count);
    std::memcpy(ops.data() + at, bytes.data(), count * sizeof(logged_op));
  }
  std::stable_sort(ops.begin(), ops.end(), [](const logged_op& a, const logged_op& b) {
    return a.lock != b.lock ? a.lock < b.lock : a.sequence < b.sequence;
  });
  std::vector<std::uint64_t> model(n, 0);
  std::map<std::uint32_t, std::uint32_t> sections_per_lock;
  std::size_t stale_reads = 0;
  for (const auto& op : ops) {
    sections_per_lock[op.lock] = std::max(sections_per_lock[op.lock], op.sequence + 1);
    if (op.is_write) model[op.index] = op.value;
    else stale_reads += model[op.index] != op.value;
  }
  CHECK_EQ(stale_reads, 0u);
  std::vector<std::uint64_t> final_values(n);
  data.get(0, final_values);
  std::size_t differing = 0;
  for (std::size_t i = 0; i < n; ++i) differing += final_values[i] != model[i];
  CHECK_EQ(differing, 0u);
  // Every section took one sequence number: no two saw the same counter.
  std::uint64_t total = 0;
  for (std::size_t l = 0; l < locks; ++l) {
    CHECK_EQ(order[l].get(), std::uint64_t{sections_per_lock[static_cast<std::uint32_t>(l)]});
    total += order[l];
  }
  CHECK_EQ(total, static_cast<std::uint64_t>(sections) * static_cast<std::uint64_t>(dsm::ranks()));
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view policy = argc > 1 ? argv[1] : "";
  return dsm_test::run(argc, argv, [&] {
    for (std::uint32_t seed = 1; seed <= 2; ++seed)
      for (std::size_t unit : {64, 1024}) {
        if (policy == "single_writer") stress<dsm::single_writer>(unit, seed);
        else if (policy == "write_shared") stress<dsm::write_shared>(unit, seed);
        else if (policy == "migratory") stress<dsm::migratory>(unit, seed);
        else CHECK(!"expected single_writer, write_shared or migratory");
      }
  });
}
