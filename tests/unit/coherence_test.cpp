// Pure parts of the coherence engine: unit geometry and byte diffs.
#include <dsm/coherence/diff.hpp>
#include <dsm/coherence/mirror_space.hpp>
#include <dsm/coherence/replica.hpp>
#include <dsm/coherence/unit_map.hpp>

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

namespace {

using dsm::coherence::byte_run;

// Every element of every owner lies in exactly one unit, units are
// contiguous runs of local indices, and no unit is larger than asked.
void check_units(const dsm::distribution& d, std::size_t element_bytes, std::size_t unit_bytes) {
  const dsm::coherence::unit_map m(d, element_bytes, {unit_bytes}, "test array");
  CHECK(m.unit_bytes() <= std::max(unit_bytes, element_bytes));
  CHECK(m.elements_per_unit() >= 1);
  for (std::size_t r = 0; r < d.ranks(); ++r) {
    std::size_t covered = 0;
    for (std::size_t u = r * m.units_per_rank(); u < (r + 1) * m.units_per_rank(); ++u) {
      REQUIRE(m.home_of(u) == r);
      if (m.elements_in(u) == 0) {  // past this rank's elements: only shorter ranks have these
        CHECK(m.first_local(u) >= d.local_size(r));
        continue;
      }
      CHECK(m.first_local(u) == covered);
      for (std::size_t k = 0; k < m.elements_in(u); ++k) CHECK(m.unit_of(r, covered + k) == u);
      CHECK((u << m.shift()) == r * m.slot_elements() + covered);  // slots hold whole units
      covered += m.elements_in(u);
    }
    CHECK(covered == d.local_size(r));
  }
  CHECK(m.slot_elements() == dsm::coherence::unit_map::slot_elements_of(d, element_bytes, {unit_bytes}, "test array"));
  CHECK(m.slot_elements() >= d.max_local_size());
  CHECK(m.slot_elements() % m.elements_per_unit() == 0);
  CHECK(m.slot_elements() < d.max_local_size() + m.elements_per_unit());
  // The hit path's place of every global index: its unit and its slot.
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto [owner, local] = d.locate(i);
    const auto [unit, slot] = m.place_of(i);
    wrong += unit != m.unit_of(owner, local);
    wrong += slot != owner * m.slot_elements() + local;
  }
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("unit_map: every element in exactly one unit, for every layout") {
  for (std::size_t p : {1, 2, 3, 4, 7})
    for (std::size_t n : {0, 1, 5, 64, 1000, 4099}) {
      for (std::size_t eb : {1, 8, 24, 4096, 100000}) {
        check_units(dsm::distribution(dsm::block, n, p), eb, 64);
        check_units(dsm::distribution(dsm::cyclic, n, p), eb, 1024);
        check_units(dsm::distribution(dsm::block_cyclic(7), n, p), eb, 65536);
      }
    }
}

TEST_CASE("replica: a tiled layout finds every element's unit and copy without a division, as the general path does") {
  std::size_t tiled_layouts = 0;
  for (std::size_t p : {1, 2, 3, 4})
    for (std::size_t n : {1, 64, 1000, 1024, 4096, 4099})
      for (std::size_t eb : {1, 8, 24}) {
        const dsm::distribution d(dsm::block, n, p);
        const dsm::coherence::unit_map m(d, eb, {64}, "tiled");
        CHECK(m.tiled() == (d.block_size() % m.elements_per_unit() == 0));
        if (!m.tiled()) continue;
        ++tiled_layouts;
        for (std::size_t me = 0; me < p; ++me) {
          const dsm::coherence::mirror_space mirror(p, me, d.max_local_size() * eb, "tiled");
          const dsm::coherence::replica copies(m, mirror, me);
          std::size_t wrong = 0;
          for (std::size_t i = 0; i < n; ++i) {
            const auto [owner, local] = d.locate(i);
            const std::size_t u = i >> m.shift();
            wrong += u != m.unit_of(owner, local);
            wrong += reinterpret_cast<std::byte*>(copies.base() + i * eb) != copies.element(owner, local);
            wrong += copies.element(owner, local) != mirror.slot(owner) + local * eb;
          }
          CHECK(wrong == 0);
        }
      }
  CHECK(tiled_layouts > 10);
  // Cyclic layouts and blocks that units do not tile take the general path.
  CHECK(!dsm::coherence::unit_map(dsm::distribution(dsm::cyclic, 1024, 2), 8, {64}, "c").tiled());
  CHECK(!dsm::coherence::unit_map(dsm::distribution(dsm::block, 1000, 3), 8, {64}, "b").tiled());
}

TEST_CASE("mirror_space: the own slot is page-aligned, slots are back to back, and the own block outlives it") {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  for (std::size_t slot_bytes : {std::size_t{0}, std::size_t{24}, page, 3 * page + 8})
    for (std::size_t ranks : {1, 3})
      for (std::size_t me = 0; me < ranks; ++me) {
        std::byte* block = nullptr;
        const std::size_t block_bytes = std::max(page, (slot_bytes + page - 1) / page * page);
        {
          dsm::coherence::mirror_space mirror(ranks, me, slot_bytes, "m");
          CHECK(reinterpret_cast<std::uintptr_t>(mirror.own_slot()) % page == 0);
          CHECK(mirror.slot(me) == mirror.own_slot());
          for (std::size_t r = 0; r + 1 < ranks; ++r) CHECK(mirror.slot(r + 1) - mirror.slot(r) == static_cast<std::ptrdiff_t>(slot_bytes));
          // Every other slot is usable memory (pages appear on first touch).
          for (std::size_t r = 0; r < ranks; ++r)
            if (r != me && slot_bytes != 0) std::memset(mirror.slot(r), 1, slot_bytes);
          // A wrong placement is refused, naming the object.
          CHECK_THROWS_WITH_AS(mirror.adopt_own_block(mirror.own_slot() + page, block_bytes, "m"),
                               doctest::Contains("m: rank"), dsm::error);
          // The block, mapped over the own slot as the runtime maps it.
          void* p = ::mmap(mirror.own_slot(), block_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
          REQUIRE(p == mirror.own_slot());
          block = static_cast<std::byte*>(p);
          mirror.adopt_own_block(block, block_bytes, "m");
          std::memset(block, 7, block_bytes);
        }
        // The mirror unmapped only the reservation around the block.
        CHECK(block[0] == std::byte{7});
        CHECK(block[block_bytes - 1] == std::byte{7});
        ::munmap(block, block_bytes);
      }
}

TEST_CASE("unit_map: a unit holds the largest power of two of elements that fits") {
  const dsm::distribution d(dsm::block, 1000, 2);
  CHECK(dsm::coherence::unit_map(d, 8, {1024}, "a").elements_per_unit() == 128);
  CHECK(dsm::coherence::unit_map(d, 24, {1024}, "a").elements_per_unit() == 32);  // 42 fit; 32 is the power of two
  CHECK(dsm::coherence::unit_map(d, 24, {1024}, "a").unit_bytes() == 768);
  CHECK(dsm::coherence::unit_map(d, 4096, {64}, "a").elements_per_unit() == 1);
}

TEST_CASE("unit_map: unit sizes outside 64 B .. 64 KiB or not powers of two are refused, naming the array") {
  const dsm::distribution d(dsm::block, 10, 1);
  for (std::size_t bad : {0, 32, 100, 65537, 131072}) {
    try {
      dsm::coherence::unit_map(d, 8, {bad}, "shared_array<double, write_shared> 'x'");
      FAIL("accepted unit size " << bad);
    } catch (const dsm::error& e) {
      CHECK(e.category() == dsm::errc::invalid_argument);
      CHECK(std::string(e.what()).find("'x'") != std::string::npos);
    }
  }
}

TEST_CASE("diff: runs cover exactly the changed bytes, never a gap") {
  std::vector<std::byte> twin(100, std::byte{0}), cur = twin;
  cur[3] = std::byte{1};
  cur[4] = std::byte{1};
  cur[6] = std::byte{1};  // gap at 5 stays out
  cur[99] = std::byte{7};  // in the tail after the last whole word
  const auto runs = dsm::coherence::changed_runs(cur.data(), twin.data(), cur.size());
  CHECK(runs == std::vector<byte_run>{{3, 2}, {6, 1}, {99, 1}});
  CHECK(dsm::coherence::run_bytes(runs) == 4);
  CHECK(dsm::coherence::changed_runs(twin.data(), twin.data(), twin.size()).empty());
}

TEST_CASE("diff: encode, decode and apply reproduce the unit; random round trips") {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t n = 1 + gen() % 300;
    std::vector<std::byte> twin(n), cur;
    for (auto& b : twin) b = std::byte(gen());
    cur = twin;
    for (int k = 0, writes = static_cast<int>(gen() % 20); k < writes; ++k) cur[gen() % n] = std::byte(gen());
    const auto runs = dsm::coherence::changed_runs(cur.data(), twin.data(), n);
    std::vector<std::byte> wire;
    dsm::coherence::encode_runs(runs, cur.data(), wire);
    const auto decoded = dsm::coherence::decode_runs(wire, n);
    REQUIRE(decoded == runs);
    std::vector<std::byte> home = twin;
    dsm::coherence::apply_runs(decoded, wire, home.data());
    CHECK(home == cur);
  }
}

TEST_CASE("diff: the runs are exactly the maximal runs of changed bytes (never an unchanged byte)") {
  std::mt19937 gen(11);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::size_t n = 1 + gen() % 200;
    std::vector<std::byte> twin(n), cur;
    for (auto& b : twin) b = std::byte(gen() % 4);  // small values: words often differ in some bytes only
    cur = twin;
    for (int k = 0, writes = static_cast<int>(gen() % 40); k < writes; ++k) cur[gen() % n] = std::byte(gen() % 4);
    std::vector<dsm::coherence::byte_run> expected;
    for (std::size_t i = 0; i < n; ++i) {
      if (cur[i] == twin[i]) continue;
      if (!expected.empty() && expected.back().offset + expected.back().length == i) ++expected.back().length;
      else expected.push_back({static_cast<std::uint32_t>(i), 1});
    }
    REQUIRE(dsm::coherence::changed_runs(cur.data(), twin.data(), n) == expected);
  }
}

TEST_CASE("diff: malformed wire forms are rejected before anything is applied") {
  std::vector<std::byte> twin(64, std::byte{0}), cur = twin;
  cur[10] = std::byte{1};
  std::vector<std::byte> wire;
  dsm::coherence::encode_runs(dsm::coherence::changed_runs(cur.data(), twin.data(), 64), cur.data(), wire);
  CHECK_THROWS_AS(dsm::coherence::decode_runs(wire, 8), dsm::error);  // run outside the unit
  auto truncated = wire;
  truncated.pop_back();
  CHECK_THROWS_AS(dsm::coherence::decode_runs(truncated, 64), dsm::error);
  auto doubled = wire;
  doubled.insert(doubled.end(), wire.begin(), wire.end());  // the same run twice: not ascending
  CHECK_THROWS_AS(dsm::coherence::decode_runs(doubled, 64), dsm::error);
  std::vector<std::byte> empty_run(8, std::byte{0});  // length 0
  CHECK_THROWS_AS(dsm::coherence::decode_runs(empty_run, 64), dsm::error);
}

TEST_CASE("diff: first_overlap finds the first byte two writers share") {
  using v = std::vector<byte_run>;
  CHECK_FALSE(dsm::coherence::first_overlap(v{{0, 1}, {2, 1}}, v{{1, 1}, {3, 5}}).has_value());
  CHECK(dsm::coherence::first_overlap(v{{0, 4}}, v{{3, 2}}) == 3u);
  CHECK(dsm::coherence::first_overlap(v{{10, 1}, {20, 4}}, v{{0, 5}, {22, 1}}) == 22u);
}

TEST_CASE("unit_map: units_covering lists each unit of a range once, in order") {
  for (std::size_t p : {1, 3, 4}) {
    const dsm::distribution d(dsm::cyclic, 1000, p);
    const dsm::coherence::unit_map m(d, 8, {64}, "a");
    const auto units = m.units_covering(d, 10, 500);
    CHECK(std::is_sorted(units.begin(), units.end()));
    CHECK(std::adjacent_find(units.begin(), units.end()) == units.end());
    std::vector<bool> expected(m.units());
    for (std::size_t i = 10; i < 510; ++i) expected[m.unit_of(d.owner(i), d.local_index(i))] = true;
    std::size_t k = 0;
    for (std::size_t u = 0; u < m.units(); ++u)
      if (expected[u]) CHECK(units.at(k++) == u);
    CHECK(k == units.size());
  }
}
