// dsm::global_ref<T, Policy>: what shared_array's operator[] returns. Reading
// converts to T, assignment writes, compound assignment is a
// read-modify-write, each through the array's coherence policy. A compound
// assignment is not atomic across ranks: synchronise with a lock, or use
// dsm::atomic_fetch_add on pointer() for integers.
#pragma once

#include <dsm/global_ptr.hpp>

#include <cstddef>
#include <utility>

namespace dsm {

template <class T, class Policy>
class shared_array;

template <class T, class Policy>
class global_ref {
 public:
  global_ref(shared_array<T, Policy>& array, std::size_t index) noexcept : array_(&array), index_(index) {}

  // Inlined: the policy's hit path belongs in the caller's loop.
  [[gnu::always_inline]] operator T() const { return array_->policy_state().read(index_); }
  T get() const { return static_cast<T>(*this); }

  [[gnu::always_inline]] const global_ref& operator=(const T& value) const {
    array_->policy_state().write(index_, value);
    return *this;
  }
  // Element-to-element assignment copies the value, not the reference.
  const global_ref& operator=(const global_ref& other) const { return *this = other.get(); }

#define DSM_GLOBAL_REF_COMPOUND(op)                                             \
  template <class U>                                                            \
  const global_ref& operator op##=(U&& rhs) const                               \
    requires requires(T t) { t op## = std::forward<U>(rhs); }                   \
  {                                                                             \
    T value = get();                                                            \
    value op## = std::forward<U>(rhs);                                          \
    return *this = value;                                                       \
  }
  DSM_GLOBAL_REF_COMPOUND(+)
  DSM_GLOBAL_REF_COMPOUND(-)
  DSM_GLOBAL_REF_COMPOUND(*)
  DSM_GLOBAL_REF_COMPOUND(/)
  DSM_GLOBAL_REF_COMPOUND(%)
  DSM_GLOBAL_REF_COMPOUND(&)
  DSM_GLOBAL_REF_COMPOUND(|)
  DSM_GLOBAL_REF_COMPOUND(^)
  DSM_GLOBAL_REF_COMPOUND(<<)
  DSM_GLOBAL_REF_COMPOUND(>>)
#undef DSM_GLOBAL_REF_COMPOUND

  global_ptr<T> pointer() const { return array_->pointer(index_); }
  std::size_t index() const noexcept { return index_; }

 private:
  shared_array<T, Policy>* array_;
  std::size_t index_;
};

}  // namespace dsm
