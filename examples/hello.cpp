// hello: what this build of dsm knows about its machine, and a round trip
// through the layers that exist so far (arch and address).
#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <numeric>
#include <vector>

int main() {
  namespace arch = dsm::arch;
  fmt::print("dsm {} on {}: cache line {} B, DMA {}, cache maintenance {}\n", DSM_VERSION,
             arch::to_string(arch::host_isa), arch::cache_line_bytes(),
             arch::coherent_dma ? "treated as coherent" : "not coherent", arch::cache_maintenance_enabled ? "on" : "off");

  // A buffer handed to a device and back, the way the transport will do it.
  std::vector<std::uint64_t> buffer(1000);
  std::iota(buffer.begin(), buffer.end(), std::uint64_t{1});
  arch::sync_for_device(buffer.data(), buffer.size() * sizeof(std::uint64_t), arch::dma_direction::bidirectional);
  arch::sync_for_cpu(buffer.data(), buffer.size() * sizeof(std::uint64_t), arch::dma_direction::bidirectional);
  const auto sum = std::accumulate(buffer.begin(), buffer.end(), std::uint64_t{0});
  const auto lines = arch::lines_touching(buffer.data(), buffer.size() * sizeof(std::uint64_t));
  fmt::print("synced {} B over {} lines, sum {} ({})\n", buffer.size() * sizeof(std::uint64_t), lines.line_count, sum,
             sum == 500500 ? "intact" : "CORRUPT");

  const auto p = dsm::detail::make_global_ptr<double>({3, 2, 1, 0, 0x40});
  fmt::print("a global address: {}, 8 elements on: {}\n", p, p + 8);
  return sum == 500500 ? 0 : 1;
}
