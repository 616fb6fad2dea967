// dsm::global_ref<T, Policy>: what shared_array's operator[] returns. Reading
// converts to T, assignment writes, compound assignment is a
// read-modify-write, each through the array's coherence policy. A compound
// assignment is not atomic across ranks: synchronise with a lock, use
// dsm::atomic_fetch_add on pointer() for integers, or a reduction array,
// whose combine(v) (and += for reduction<sum>) is the only way in.
#pragma once

#include <dsm/global_ptr.hpp>
#include <dsm/operators.hpp>
#include <dsm/runtime/rank_lock.hpp>

#include <concepts>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace dsm {

template <class T, class Policy>
class shared_array;

template <class T, class Policy>
class global_ref {
 public:
  global_ref(shared_array<T, Policy>& array, std::size_t index) noexcept : array_(&array), index_(index) {}

  // Inlined: the policy's hit path belongs in the caller's loop. Under
  // threads::multiple each access holds the rank lock (a cache is the
  // rank's state), out of line: an entry object in the loop, whose address
  // the lock call takes, costs the default mode 6x on a hit.
  [[gnu::always_inline]] operator T() const {
    if (!detail::multithreaded) [[likely]]
      return array_->policy_state().read(index_);
    return locked_read(array_, index_);
  }
  T get() const { return static_cast<T>(*this); }

  [[gnu::always_inline]] const global_ref& operator=(const T& value) const {
    if (!detail::multithreaded) [[likely]]
      array_->policy_state().write(index_, value);
    else
      locked_write(array_, index_, value);
    return *this;
  }
  // Element-to-element assignment copies the value, not the reference.
  const global_ref& operator=(const global_ref& other) const { return *this = other.get(); }

  // A reduction array: v joins the element's contributions of this
  // interval, combined at its home at the next barrier.
  template <class U>
  const global_ref& combine(U&& v) const
    requires std::convertible_to<U, T> && requires(typename Policy::template state<T>& s, std::size_t i, T t) { s.combine(i, t); }
  {
    const detail::rank_entry entry;
    array_->policy_state().combine(index_, static_cast<T>(std::forward<U>(v)));
    return *this;
  }

  // On a reduction array the compound assignment of its operator is
  // combine(v) (+= of reduction<sum>); any other is refused at compile time.
#define DSM_GLOBAL_REF_COMPOUND(op, combined_by)                                                              \
  template <class U>                                                                                          \
  const global_ref& operator op##=(U&& rhs) const                                                             \
    requires requires(T t) { t op## = std::forward<U>(rhs); }                                                 \
  {                                                                                                           \
    if constexpr (requires { typename Policy::combiner; }) {                                                  \
      static_assert(std::is_same_v<typename Policy::combiner, combined_by>,                                   \
                    "a reduction<Op> array takes a[i].combine(v); a[i] += v only when Op is dsm::sum");       \
      return combine(std::forward<U>(rhs));                                                                   \
    } else {                                                                                                  \
      T value = get();                                                                                        \
      value op## = std::forward<U>(rhs);                                                                      \
      return *this = value;                                                                                   \
    }                                                                                                         \
  }
  DSM_GLOBAL_REF_COMPOUND(+, dsm::sum)
  DSM_GLOBAL_REF_COMPOUND(-, void)
  DSM_GLOBAL_REF_COMPOUND(*, void)
  DSM_GLOBAL_REF_COMPOUND(/, void)
  DSM_GLOBAL_REF_COMPOUND(%, void)
  DSM_GLOBAL_REF_COMPOUND(&, void)
  DSM_GLOBAL_REF_COMPOUND(|, void)
  DSM_GLOBAL_REF_COMPOUND(^, void)
  DSM_GLOBAL_REF_COMPOUND(<<, void)
  DSM_GLOBAL_REF_COMPOUND(>>, void)
#undef DSM_GLOBAL_REF_COMPOUND

  global_ptr<T> pointer() const { return array_->pointer(index_); }
  std::size_t index() const noexcept { return index_; }

 private:
  // Static, the reference passed by value: a member function would take
  // the reference's address and make every hit store it to the stack.
  [[gnu::noinline]] static T locked_read(shared_array<T, Policy>* array, std::size_t index) {
    const detail::rank_entry entry;
    return array->policy_state().read(index);
  }
  [[gnu::noinline]] static void locked_write(shared_array<T, Policy>* array, std::size_t index, T value) {
    const detail::rank_entry entry;
    array->policy_state().write(index, value);
  }

  shared_array<T, Policy>* array_;
  std::size_t index_;
};

}  // namespace dsm
