// What the NPB-style kernels on dsm add to common.hpp: policy selection
// by --policy, the report printed once per job, and main.
#pragma once

#include "common.hpp"

#include <dsm/dsm.hpp>

#include <string_view>
#include <tuple>
#include <type_traits>

namespace npb {

// Runs run.template operator()<Policy>() for the policy --policy names (the
// first listed when none is named).
template <class... Policies, class Run>
bool with_policy(const options& o, std::string_view kernel, Run&& run) {
  using first = std::tuple_element_t<0, std::tuple<Policies...>>;
  if (!o.rest.empty()) throw std::invalid_argument(fmt::format("{}: unknown argument {}", kernel, o.rest.front()));
  bool found = false, result = false;
  auto attempt = [&]<class P>() {
    if (found || !(o.policy.empty() ? std::is_same_v<P, first> : o.policy == P::name)) return;
    found = true;
    result = run.template operator()<P>();
  };
  (attempt.template operator()<Policies>(), ...);
  if (!found) {
    std::string names;
    ((names += std::string(names.empty() ? "" : ", ") + Policies::name), ...);
    throw std::invalid_argument(fmt::format("{}: --policy {}: expected one of {}", kernel, o.policy, names));
  }
  return result;
}

// Printed by rank 0 and flushed: a failed verification ends every rank
// non-zero, and dsmrun ends a job at the first such exit.
inline void print(const report& r) {
  if (dsm::rank() == 0) print(r, dsm::ranks(), DSM_VERSION);
}

// Runs a kernel's main: a usage error exits 2, a failed verification 1.
template <class Kernel>
int main(int argc, char** argv, std::string_view usage, Kernel&& kernel) {
  return exit_code([&] {
    dsm::runtime rt{argc, argv};
    const bool ok = kernel(parse(argc, argv, usage));
    dsm::barrier();  // rank 0's report is out before any rank exits
    return ok;
  });
}

}  // namespace npb
