#include <dsm/dsm.hpp>

#include <fmt/core.h>

int main() {
  const auto p = dsm::detail::make_global_ptr<int>({1, 2, 3, 0, 4}) + 1;
  fmt::print("consumer: {}\n", p);
  fmt::print("consumer: dsm {} on {}, cache line {} B\n", DSM_VERSION, dsm::arch::to_string(dsm::arch::host_isa),
             dsm::arch::cache_line_bytes());
}
