// dsm::shared_var<T, Policy>: one shared scalar (a flag, a counter, a
// result) homed on one rank, under a coherence policy like any array.
#pragma once

#include <dsm/shared_array.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace dsm {

template <class T, class Policy = single_writer>
class shared_var {
 public:
  using value_type = T;
  using reference = global_ref<T, Policy>;

  // Collective over every rank (or t's members): the value lives on rank
  // `home` (of t), zeroed. A rank number outside the team is
  // errc::invalid_argument naming the variable.
  explicit shared_var(std::string name = {}, int home = 0) : shared_var(world(), std::move(name), home) {}
  shared_var(const team& t, std::string name, int home = 0)
      : home_(checked_home(t, name, home)),
        // One element per member, block-distributed: element r is rank r's,
        // so the value is element `home`, in its home's memory.
        slots_(t, static_cast<std::size_t>(t.size()), block, std::move(name)) {}

  // Reads through the policy (a cached copy where the policy keeps one).
  T get() const { return slots_[index()]; }
  operator T() const { return get(); }  // NOLINT: a shared scalar reads as its value

  // Writes through the policy.
  shared_var& operator=(const T& v) {
    slots_[index()] = v;
    return *this;
  }
  void set(const T& v) { slots_[index()] = v; }

  // The element itself, for compound assignment (`*counter += 1`: a read
  // and a write, atomic only under a lock) and a reduction's combine.
  reference operator*() { return slots_[index()]; }

  // A flag: signal (a release, then an atomic set or add at the home),
  // and wait_until / test, which read the home's value and then acquire
  // (see shared_array::signal).
  void signal(std::type_identity_t<T> v, signal_op op = signal_op::set) { slots_.signal(index(), v, op); }
  void wait_until(cmp c, std::type_identity_t<T> v) { slots_.wait_until(index(), c, v); }
  bool test(cmp c, std::type_identity_t<T> v) { return slots_.test(index(), c, v); }

  // Where it lives: the home (a rank of the team), a global pointer to it
  // (for rget, rput and remote atomics), the array it is an element of.
  int home_rank() const noexcept { return home_; }
  global_ptr<T> pointer() const { return slots_.pointer(index()); }
  const std::string& name() const noexcept { return slots_.name(); }
  array_counters stats() const { return slots_.stats(); }

 private:
  static int checked_home(const team& t, const std::string& name, int home) {
    if (!t.valid())
      throw error(errc::invalid_argument, fmt::format("shared_var '{}': an invalid team (no_color)", name));
    if (home < 0 || home >= t.size())
      throw error(errc::invalid_argument,
                  fmt::format("shared_var '{}': home rank {} is not a rank of a team of {}", name, home, t.size()));
    return home;
  }
  std::size_t index() const noexcept { return static_cast<std::size_t>(home_); }

  int home_;
  mutable shared_array<T, Policy> slots_;  // mutable: a read through a caching policy fills its cache
};

}  // namespace dsm
