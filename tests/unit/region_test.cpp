// The single-process parts of global_region: an arena's free list, the
// memory file's two views, and the SIGSEGV dispatch that sends a fault in
// a registered range to its target with the access it was.
#include <dsm/detail/region_heap.hpp>
#include <dsm/detail/region_mapping.hpp>
#include <dsm/runtime/fault_dispatch.hpp>

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

TEST_CASE("region_heap: first fit, aligned, merged on free, every byte back") {
  dsm::detail::region_heap h(4096, 4096 + 65536, "heap");
  const auto a = h.allocate(10, 8), b = h.allocate(100, 64), c = h.allocate(4000, 4096);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  CHECK(*a == 4096);
  CHECK(*b % 64 == 0);
  CHECK(*c % 4096 == 0);
  CHECK(*b >= *a + 16);
  CHECK(*c >= *b + 112);
  CHECK(!h.allocate(65536, 16));  // more than is left
  h.free(*b, 100);
  const auto d = h.allocate(90, 16);  // first fit: b's place, merged with the gap its alignment left
  REQUIRE(d);
  CHECK(*d == *a + 16);
  h.free(*a, 10);
  h.free(*c, 4000);
  h.free(*d, 90);
  CHECK(h.bytes_used() == 0);
  CHECK(h.free_ranges() == 1);  // merged back into one
  CHECK(h.allocate(65536, 16) == std::optional<std::size_t>(4096));
}

TEST_CASE("region_heap: a double free or a foreign range is refused, the list intact") {
  dsm::detail::region_heap h(0, 1024, "heap");
  const auto a = h.allocate(64, 16);
  REQUIRE(a);
  h.free(*a, 64);
  CHECK_THROWS_AS(h.free(*a, 64), dsm::error);
  CHECK_THROWS_AS(h.free(2048, 16), dsm::error);
  CHECK_THROWS_AS(h.free(8, 16), dsm::error);  // not on a granule
  CHECK(h.free_ranges() == 1);
  CHECK(h.allocate(1024, 16) == std::optional<std::size_t>(0));
}

TEST_CASE("region_heap: random allocations never overlap") {
  dsm::detail::region_heap h(0, 1 << 20, "heap");
  std::mt19937 gen(7);
  struct block {
    std::size_t at, bytes;
  };
  std::vector<block> live;
  for (int k = 0; k < 5000; ++k) {
    if (!live.empty() && gen() % 3 == 0) {
      const std::size_t i = gen() % live.size();
      h.free(live[i].at, live[i].bytes);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    const std::size_t bytes = 1 + gen() % 3000, align = std::size_t{1} << (gen() % 8);
    if (const auto at = h.allocate(bytes, align)) {
      CHECK(*at % align == 0);
      std::size_t overlapping = 0;
      for (const auto& b : live) overlapping += !(*at + bytes <= b.at || b.at + b.bytes <= *at);
      CHECK(overlapping == 0);
      live.push_back({*at, bytes});
    }
  }
  for (const auto& b : live) h.free(b.at, b.bytes);
  CHECK(h.bytes_used() == 0);
  CHECK(h.free_ranges() == 1);
}

TEST_CASE("region_mapping: the program view shows what the system view holds, as protected") {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  dsm::detail::region_mapping m(4 * page, "mapping");
  auto* at = reinterpret_cast<std::byte*>(std::uintptr_t{0x1234} << 32);
  REQUIRE(m.map_program_view(at, page, true, [](std::size_t off) { return off; }));
  CHECK(m.program_view() == at);
  std::memset(m.system_view() + page, 0x5a, page);
  m.protect(page, page, PROT_READ);
  CHECK(static_cast<unsigned char>(at[page + 7]) == 0x5a);
  m.release_pages(page, page);  // a dropped copy: memory back, zeros again
  CHECK(static_cast<unsigned char>(at[page + 7]) == 0);
  // Taken: the same address cannot be mapped twice.
  dsm::detail::region_mapping other(page, "other");
  CHECK(!other.map_program_view(at, page, true, [](std::size_t off) { return off; }));
}

TEST_CASE("region_mapping: cyclic views put each unit where the file order says") {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  dsm::detail::region_mapping m(4 * page, "cyclic");
  for (std::size_t u = 0; u < 4; ++u) std::memset(m.system_view() + u * page, static_cast<int>(u + 1), page);
  auto* at = reinterpret_cast<std::byte*>(std::uintptr_t{0x1240} << 32);
  // View unit g is file unit (g % 2) * 2 + g / 2: two ranks, two units each.
  REQUIRE(m.map_program_view(at, page, false, [&](std::size_t off) {
    const std::size_t g = off / page;
    return ((g % 2) * 2 + g / 2) * page;
  }));
  m.protect(0, 4 * page, PROT_READ);
  CHECK(static_cast<int>(at[0]) == 1);
  CHECK(static_cast<int>(at[page]) == 3);
  CHECK(static_cast<int>(at[2 * page]) == 2);
  CHECK(static_cast<int>(at[3 * page]) == 4);
}

// Opens the page for reading on a read fault, for writing on a write
// fault; an access the frame does not name is a read while the page is
// closed and a write once it is readable (as a region infers it).
struct opening_target final : dsm::detail::fault_target {
  std::byte* page = nullptr;
  std::size_t bytes = 0;
  int faults = 0;
  bool readable = false;
  dsm::detail::fault_access last = dsm::detail::fault_access::unknown;
  void on_fault(std::byte* address, dsm::detail::fault_access access) noexcept override {
    ++faults;
    last = access;
    CHECK(address >= page);
    const bool write = access == dsm::detail::fault_access::write ||
                       (access == dsm::detail::fault_access::unknown && readable);
    ::mprotect(page, bytes, write ? PROT_READ | PROT_WRITE : PROT_READ);
    readable = true;
  }
};

TEST_CASE("fault_dispatch: a fault in a registered range reaches its target with its access") {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* p = ::mmap(nullptr, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  opening_target t;
  t.page = static_cast<std::byte*>(p);
  t.bytes = page;
  REQUIRE(dsm::detail::fault_dispatch::add(t.page, t.page + page, &t));
  volatile auto* word = reinterpret_cast<volatile std::uint32_t*>(t.page + 64);
  CHECK(*word == 0u);
  CHECK(t.faults == 1);
  // x86-64 always says; arm64 says through the frame's ESR record, which
  // qemu-user does not write (unknown: the region infers it).
#if defined(__x86_64__)
  CHECK(t.last == dsm::detail::fault_access::read);
#else
  CHECK(t.last != dsm::detail::fault_access::write);
#endif
  *word = 9;  // read-only now: a write fault
  CHECK(t.faults == 2);
#if defined(__x86_64__)
  CHECK(t.last == dsm::detail::fault_access::write);
#else
  CHECK(t.last != dsm::detail::fault_access::read);
#endif
  CHECK(*word == 9u);
  dsm::detail::fault_dispatch::remove(&t);
  ::munmap(p, page);
}

}  // namespace
