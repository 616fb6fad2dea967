#include <dsm/arch.hpp>

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace arch = dsm::arch;

namespace {

std::uint8_t pattern(std::size_t i) { return static_cast<std::uint8_t>(i * 131 + 7); }

std::vector<std::uint8_t> patterned(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = pattern(i);
  return v;
}

bool intact(const std::vector<std::uint8_t>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] != pattern(i)) return false;
  return true;
}

template <class F>
dsm::errc category_of(F&& f) {
  try {
    f();
  } catch (const dsm::error& e) {
    return e.category();
  }
  FAIL("no dsm::error thrown");
  return dsm::errc::internal;
}

}  // namespace

TEST_CASE("lines_touching: whole lines around any byte range") {
  for (std::size_t line : {32u, 64u, 256u}) {
    CAPTURE(line);
    CHECK(arch::lines_touching(0x1000, 0, line).line_count == 0);
    CHECK(arch::lines_touching(0x1000, 1, line) == arch::line_range{0x1000, 1, line});
    CHECK(arch::lines_touching(0x1000, line, line) == arch::line_range{0x1000, 1, line});
    CHECK(arch::lines_touching(0x1000, line + 1, line) == arch::line_range{0x1000, 2, line});
    // Starts and ends mid-line: both partial lines count.
    CHECK(arch::lines_touching(0x1000 + line - 1, 2, line) == arch::line_range{0x1000, 2, line});
    CHECK(arch::lines_touching(0x1000 + 3, 10 * line, line) == arch::line_range{0x1000, 11, line});
    CHECK(arch::lines_touching(0x1000 + line - 1, 1, line) == arch::line_range{0x1000, 1, line});
    CHECK(arch::lines_touching(0x1000 + 3, 10 * line, line).bytes() == 11 * line);
  }
  static_assert(arch::lines_touching(0, 4096, 64).line_count == 64);
}

TEST_CASE("cache line size is read from the CPU") {
  const std::size_t line = arch::cache_line_bytes();
  CHECK(line >= 16);
  CHECK(line <= 2048);
  CHECK((line & (line - 1)) == 0);
  // The suite runs the arm64 tests under qemu CPU models with different
  // CTR_EL0.DminLine and says which size each must report.
  if (const char* expected = std::getenv("DSM_TEST_EXPECT_LINE_BYTES")) {
    CHECK(line == std::stoul(expected));
  } else if constexpr (arch::host_isa == arch::isa::x86_64) {
    const long l1 = ::sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
    if (l1 > 0) CHECK(line == static_cast<std::size_t>(l1));
  }
  const std::string seen = std::string("isa ") + arch::to_string(arch::host_isa) + ", cache line " +
                           std::to_string(line) + " B, maintenance " +
                           (arch::cache_maintenance_enabled ? "on" : "off");
  MESSAGE(seen);
}

TEST_CASE("maintenance is on exactly where configured") {
#if DSM_CACHE_MAINTENANCE == 1
  CHECK(arch::cache_maintenance_enabled);
#elif DSM_CACHE_MAINTENANCE == 0
  CHECK_FALSE(arch::cache_maintenance_enabled);
#else
  CHECK(arch::cache_maintenance_enabled == (arch::host_isa == arch::isa::aarch64));
#endif
  CHECK(arch::coherent_dma == !arch::cache_maintenance_enabled);
}

TEST_CASE("data is intact after maintenance of ranges that start and end mid-line") {
  const std::size_t line = arch::cache_line_bytes();
  auto buf = patterned(64 * line + 7);
  // Offsets and lengths around line boundaries; the bytes outside each range
  // share its partial lines and must survive too.
  for (std::size_t start : {std::size_t{0}, std::size_t{1}, line - 1, line, line + 3}) {
    for (std::size_t len : {std::size_t{1}, line - 1, line, line + 1, 5 * line + 3, 40 * line}) {
      CAPTURE(start);
      CAPTURE(len);
      arch::clean(buf.data() + start, len);
      CHECK(intact(buf));
      arch::clean_invalidate(buf.data() + start, len);
      CHECK(intact(buf));
      arch::invalidate(buf.data() + start, len);
      CHECK(intact(buf));
    }
  }
  // Writes after maintenance land and read back.
  arch::clean_invalidate(buf.data(), buf.size());
  buf[line / 2] = 0xAB;
  arch::clean(buf.data() + line / 2, 1);
  arch::invalidate(buf.data(), line);
  CHECK(buf[line / 2] == 0xAB);
}

TEST_CASE("dma sync in every direction keeps data intact") {
  auto buf = patterned(4096 + 13);
  for (auto d : {arch::dma_direction::to_device, arch::dma_direction::from_device,
                 arch::dma_direction::bidirectional}) {
    CAPTURE(arch::to_string(d));
    arch::sync_for_device(buf.data() + 5, 4096, d);
    CHECK(intact(buf));
    arch::sync_for_cpu(buf.data() + 5, 4096, d);
    CHECK(intact(buf));
  }
}

TEST_CASE("maintenance rejects bad ranges and directions") {
  std::uint8_t byte = 1;
#if DSM_CHECKS
  CHECK(category_of([] { arch::clean(nullptr, 8); }) == dsm::errc::invalid_argument);
  CHECK(category_of([] { arch::invalidate(nullptr, 1); }) == dsm::errc::invalid_argument);
  CHECK(category_of([] { arch::clean_invalidate(nullptr, 64); }) == dsm::errc::invalid_argument);
  CHECK(category_of([&] { arch::clean(&byte, SIZE_MAX); }) == dsm::errc::invalid_argument);
  CHECK(category_of([] { arch::sync_for_cpu(nullptr, 8, arch::dma_direction::to_device); }) ==
        dsm::errc::invalid_argument);
#endif
  const auto bad = static_cast<arch::dma_direction>(7);
  CHECK(category_of([&] { arch::sync_for_device(&byte, 1, bad); }) == dsm::errc::invalid_argument);
  CHECK(category_of([&] { arch::sync_for_cpu(&byte, 1, bad); }) == dsm::errc::invalid_argument);
  // Empty ranges are fine even at null.
  arch::clean(nullptr, 0);
  arch::clean_invalidate(nullptr, 0);
  arch::sync_for_cpu(nullptr, 0, arch::dma_direction::from_device);
  CHECK(byte == 1);
}

TEST_CASE("release/acquire fences make message passing between threads safe") {
  // Classic MP litmus with relaxed atomics: without the two fences a weakly
  // ordered CPU may show the flag before the payload.
  constexpr int rounds = 20000;
  std::atomic<int> payload{0}, flag{0};
  int bad = 0;
  std::thread reader([&] {
    for (int r = 1; r <= rounds; ++r) {
      while (flag.load(std::memory_order_relaxed) != r) {
      }
      arch::acquire_fence();
      if (payload.load(std::memory_order_relaxed) != r) ++bad;
      flag.store(-r, std::memory_order_relaxed);  // hand back
    }
  });
  for (int r = 1; r <= rounds; ++r) {
    payload.store(r, std::memory_order_relaxed);
    arch::release_fence();
    flag.store(r, std::memory_order_relaxed);
    while (flag.load(std::memory_order_relaxed) != -r) {
    }
    arch::acquire_fence();
  }
  reader.join();
  arch::device_fence();
  CHECK(bad == 0);
}
