// The cache lines a byte range touches: pure arithmetic, shared by every ISA
// and by the statistics of bytes maintained.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dsm::arch {

struct line_range {
  std::uintptr_t first_line = 0;  // address of the first line touched
  std::size_t line_count = 0;     // 0 for an empty byte range
  std::size_t line_bytes = 0;

  constexpr std::size_t bytes() const noexcept { return line_count * line_bytes; }
  friend constexpr bool operator==(const line_range&, const line_range&) = default;
};

// Every line that holds at least one byte of [address, address + bytes).
// `line_bytes` must be a power of two; a range that starts or ends mid-line
// includes that whole line, since maintenance works on lines.
constexpr line_range lines_touching(std::uintptr_t address, std::size_t bytes,
                                    std::size_t line_bytes) noexcept {
  if (bytes == 0) return {address & ~(std::uintptr_t{line_bytes} - 1), 0, line_bytes};
  const std::uintptr_t mask = ~(std::uintptr_t{line_bytes} - 1);
  const std::uintptr_t first = address & mask;
  const std::uintptr_t last = (address + bytes - 1) & mask;
  return {first, static_cast<std::size_t>((last - first) / line_bytes) + 1, line_bytes};
}

}  // namespace dsm::arch
