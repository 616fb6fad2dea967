// Fuzz target: diffs. The runs found between a unit and its twin are
// exactly the changed bytes; a received diff (write_shared's runs,
// single_writer's recalls and write-backs) lies inside its unit, its runs
// are sorted and disjoint, and applying it touches only those bytes.
#include "input.hpp"

#include <dsm/coherence/diff.hpp>

#include <cstdlib>
#include <vector>

// The runs the writer side finds between a unit and its twin (here the two
// halves of the input) are exactly the bytes that differ.
void check_changed_runs(std::span<const std::byte> both) {
  const std::size_t n = both.size() / 2;
  const auto runs = dsm::coherence::changed_runs(both.data(), both.data() + n, n);
  std::size_t at = 0;
  for (const auto& r : runs) {
    for (; at < r.offset; ++at)
      if (both[at] != both[n + at]) std::abort();  // a changed byte left out
    for (; at < std::size_t{r.offset} + r.length; ++at)
      if (both[at] == both[n + at]) std::abort();  // an unchanged byte sent
  }
  for (; at < n; ++at)
    if (both[at] != both[n + at]) std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_changed_runs({reinterpret_cast<const std::byte*>(data), size});
  dsm_fuzz::input in(data, size);
  const std::size_t unit_bytes = std::size_t{64} << (in.take<std::uint8_t>() % 11);  // 64 B .. 64 KiB
  const auto wire = in.rest();
  try {
    const auto runs = dsm::coherence::decode_runs(wire, unit_bytes);
    std::size_t end = 0;
    for (const auto& r : runs) {
      if (r.length == 0 || r.offset < end || std::size_t{r.offset} + r.length > unit_bytes) std::abort();
      end = std::size_t{r.offset} + r.length;
    }
    std::vector<std::byte> unit(unit_bytes + 16, std::byte{0x5a});  // 16 guard bytes
    dsm::coherence::apply_runs(runs, wire, unit.data());
    for (std::size_t i = unit_bytes; i < unit.size(); ++i)
      if (unit[i] != std::byte{0x5a}) std::abort();
    (void)dsm::coherence::first_overlap(runs, runs);
    // Encoding what was decoded gives the same wire bytes back.
    std::vector<std::byte> again;
    dsm::coherence::encode_runs(runs, unit.data(), again);
    if (again.size() != wire.size()) std::abort();
  } catch (const dsm::error& e) {
    if (e.category() != dsm::errc::protocol) std::abort();
  }
  return 0;
}
