// dsm::dist_object<T>: one T per rank, made collectively, known to every
// rank by one name. fetch(r) returns a future of rank r's value; passed to
// an RPC, it arrives as the target's own instance (UPC++'s dist_object).
#pragma once

#include <dsm/detail/type_name.hpp>
#include <dsm/rpc.hpp>
#include <dsm/runtime/runtime.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace dsm {

template <class T>
class dist_object {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T>,
                "dsm::dist_object<T>: T must be a non-const object type that is not an array");

 public:
  // Collective over the job's ranks, each with its own value: when it
  // returns, every rank's instance exists, so an RPC may name it at once.
  template <class... A>
    requires std::is_constructible_v<T, A...>
  explicit dist_object(std::in_place_t, A&&... a) : value_(std::forward<A>(a)...) {
    join();
  }
  explicit dist_object(T value)
    requires std::is_move_constructible_v<T>
      : value_(std::move(value)) {
    join();
  }
  // Not collective: an RPC that names it on this rank afterwards fails
  // with an error naming it (destroy it after a barrier to be sure none
  // is under way).
  ~dist_object() {
    if (detail::current_runtime_number() != runtime_number_) {
      if (detail::current_runtime() == nullptr)
        detail::outlived_its_runtime(fmt::format("dist_object<{}> #{}", detail::type_name<T>(), id_));
      return;  // a later runtime: its registry never held this one
    }
    detail::current_runtime()->rpc().remove_object(id_);
  }
  // Its address is its identity on this rank: neither copied nor moved.
  dist_object(const dist_object&) = delete;
  dist_object& operator=(const dist_object&) = delete;

  T& operator*() noexcept { return value_; }
  const T& operator*() const noexcept { return value_; }
  T* operator->() noexcept { return &value_; }
  const T* operator->() const noexcept { return &value_; }
  T& value() noexcept { return value_; }
  const T& value() const noexcept { return value_; }

  // Rank `rank`'s value, as it is when that rank serves the request.
  future<T> fetch(int rank) const
    requires serializable<T>
  {
    return dsm::rpc(rank, [](const dist_object& o) { return *o; }, *this);
  }

  // The same on every rank.
  std::uint64_t id() const noexcept { return id_; }

 private:
  void join() {
    detail::runtime_state& r = detail::rt();
    id_ = r.next_object_id(r.world_team());
    runtime_number_ = detail::current_runtime_number();
    r.rpc().add_object(id_, this, detail::dist_object_type_key<T>());
    try {
      r.synchronize();
    } catch (...) {
      r.rpc().remove_object(id_);
      throw;
    }
  }

  T value_;
  std::uint64_t id_ = 0;
  std::uint64_t runtime_number_ = 0;
};

}  // namespace dsm
