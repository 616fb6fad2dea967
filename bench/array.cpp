// Element-wise remote reads and writes of a shared_array against bulk get
// and put of the same data, per distribution, each as a ratio to the same
// loop over a local std::vector, measured in one run. On 2 ranks: rank 0
// walks the whole array (half of it homed on rank 1). CSV on stdout:
//
//   distribution,op,mode,elements,median_ns,ns_per_element,ratio_to_local
//
//   dsmrun --transport shm -n 2 build/bench/array [--elements N] [--reps N]
#include "timing.hpp"

#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <string_view>
#include <vector>

namespace {

using dsm_bench::median_ns;

volatile double sink;  // keeps the read loops from being optimised away

template <class Layout>
void measure(Layout layout, const char* layout_name, std::size_t n, int reps) {
  dsm::shared_array<double, dsm::direct> a(n, layout, layout_name);
  for (auto& v : a.local()) v = 1.0;
  dsm::barrier();
  if (dsm::rank() == 0) {
    std::vector<double> local(n, 1.0), buffer(n);
    const double local_read = median_ns(reps, [&] { sink = std::accumulate(local.begin(), local.end(), 0.0); });
    const double local_write = median_ns(reps, [&] { std::fill(local.begin(), local.end(), 2.0); sink = local[n / 2]; });
    auto row = [&](const char* op, const char* mode, double ns, double baseline) {
      fmt::print("{},{},{},{},{:.0f},{:.3f},{:.2f}\n", layout_name, op, mode, n, ns, ns / static_cast<double>(n),
                 ns / baseline);
      std::fflush(stdout);
    };
    row("read", "local_vector", local_read, local_read);
    row("write", "local_vector", local_write, local_write);
    row("read", "element", median_ns(reps, [&] {
          double s = 0;
          for (std::size_t i = 0; i < n; ++i) s += a[i];
          sink = s;
        }), local_read);
    row("read", "bulk", median_ns(reps, [&] {
          a.get(0, buffer);
          sink = std::accumulate(buffer.begin(), buffer.end(), 0.0);
        }), local_read);
    row("write", "element", median_ns(reps, [&] {
          for (std::size_t i = 0; i < n; ++i) a[i] = 2.0;
          dsm::fence();
        }), local_write);
    row("write", "bulk", median_ns(reps, [&] {
          std::fill(buffer.begin(), buffer.end(), 2.0);
          a.put(0, std::span<const double>(buffer));
          dsm::fence();
        }), local_write);
  }
  dsm::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  std::size_t n = std::size_t{1} << 16;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view opt = argv[i];
    if (opt == "--elements") n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (opt == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    else throw dsm::error(dsm::errc::invalid_argument, fmt::format("array bench: unknown option {}", opt));
  }
  if (n == 0) throw dsm::error(dsm::errc::invalid_argument, "array bench: --elements must be positive");
  if (dsm::rank() == 0) fmt::print("distribution,op,mode,elements,median_ns,ns_per_element,ratio_to_local\n");
  measure(dsm::block, "block", n, reps);
  measure(dsm::cyclic, "cyclic", n, reps);
  measure(dsm::block_cyclic(64), "block_cyclic(64)", n, reps);
  return 0;
}
