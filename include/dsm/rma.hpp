// One-sided access through global pointers: rput, rget and remote atomics.
// Each returns a dsm::future; local targets are served with plain memory
// operations, except atomics, which always go through UCX so that they are
// atomic with respect to every other rank's.
#pragma once

#include <dsm/global_ptr.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/transport/rma.hpp>

#include <cstddef>
#include <cstring>
#include <type_traits>

namespace dsm {

namespace detail {
template <class T>
std::uint64_t span_bytes(std::size_t n) {
  if (n > std::numeric_limits<std::uint64_t>::max() / sizeof(T))
    throw error(errc::out_of_range, fmt::format("{} elements of {} overflow", n, type_name<T>()));
  return std::uint64_t{n} * sizeof(T);
}
template <class T>
void check_not_null(global_ptr<T> p, const char* operation) {
  if (p.is_null()) throw error(errc::invalid_argument, fmt::format("{} through a null global_ptr<{}>", operation, type_name<T>()));
}
}  // namespace detail

// Copies n elements from local src to p .. p+n.
template <global_element T>
future<> rput(const T* src, std::size_t n, global_ptr<T> dst) {
  detail::check_not_null(dst, "rput");
  auto& rt = detail::rt();
  const std::uint64_t bytes = detail::span_bytes<T>(n);
  auto& st = rt.stats();
  ++st.puts;
  st.bytes_put += bytes;
  if (dst.is_local()) {
    std::memmove(rt.local_bytes(dst.segment(), dst.generation(), dst.byte_offset(), bytes, "rput"), src, bytes);
    return {};
  }
  return rt.with_remote(dst.home_rank(), dst.segment(), dst.generation(), dst.byte_offset(), bytes, "rput",
                        [&](const transport::remote_address& to) {
                          return transport::put(rt.worker(), rt.endpoints(), src, bytes, to);
                        });
}

// Writes one value to *p; the value is copied, the caller need not keep it.
template <global_element T>
future<> rput(const T& value, global_ptr<T> dst) {
  if constexpr (sizeof(T) > detail::op_buffer::capacity) {
    return rput(&value, 1, dst).wait(), future<>{};
  } else {
    detail::check_not_null(dst, "rput");
    auto& rt = detail::rt();
    auto& st = rt.stats();
    ++st.puts;
    st.bytes_put += sizeof(T);
    if (dst.is_local()) {
      std::memcpy(rt.local_bytes(dst.segment(), dst.generation(), dst.byte_offset(), sizeof(T), "rput"), &value, sizeof(T));
      return {};
    }
    return rt.with_remote(dst.home_rank(), dst.segment(), dst.generation(), dst.byte_offset(), sizeof(T), "rput",
                          [&](const transport::remote_address& to) {
                            return transport::put_value(rt.worker(), rt.endpoints(), value, to);
                          });
  }
}

// Copies n elements from p .. p+n into local dst.
template <class T>
  requires global_element<std::remove_const_t<T>>
future<> rget(global_ptr<T> src, std::size_t n, std::remove_const_t<T>* dst) {
  detail::check_not_null(src, "rget");
  auto& rt = detail::rt();
  const std::uint64_t bytes = detail::span_bytes<T>(n);
  auto& st = rt.stats();
  ++st.gets;
  st.bytes_got += bytes;
  if (src.is_local()) {
    std::memmove(dst, rt.local_bytes(src.segment(), src.generation(), src.byte_offset(), bytes, "rget"), bytes);
    return {};
  }
  return rt.with_remote(src.home_rank(), src.segment(), src.generation(), src.byte_offset(), bytes, "rget",
                        [&](const transport::remote_address& from) {
                          return transport::get(rt.worker(), rt.endpoints(), dst, bytes, from);
                        });
}

// Reads *p.
template <class T>
  requires global_element<std::remove_const_t<T>> && (sizeof(T) <= detail::op_buffer::capacity)
future<std::remove_const_t<T>> rget(global_ptr<T> src) {
  using value_type = std::remove_const_t<T>;
  detail::check_not_null(src, "rget");
  auto& rt = detail::rt();
  auto& st = rt.stats();
  ++st.gets;
  st.bytes_got += sizeof(T);
  if (src.is_local()) {
    detail::op_buffer* b = detail::op_buffer_pool::take();
    std::memcpy(b->bytes, rt.local_bytes(src.segment(), src.generation(), src.byte_offset(), sizeof(T), "rget"), sizeof(T));
    return future<value_type>(rt.worker(), nullptr, b, {"rget", static_cast<int>(src.home_rank())});
  }
  return rt.with_remote(src.home_rank(), src.segment(), src.generation(), src.byte_offset(), sizeof(T), "rget",
                        [&](const transport::remote_address& from) {
                          return transport::get_value<value_type>(rt.worker(), rt.endpoints(), from);
                        });
}

namespace detail {
template <transport::atomic_word T>
future<T> remote_atomic(global_ptr<T> p, transport::atomic_op op, T operand, T desired, const char* name) {
  check_not_null(p, name);
#if DSM_CHECKS
  if (p.byte_offset() % sizeof(T) != 0)
    throw error(errc::invalid_argument, fmt::format("{} on {}: not {}-byte aligned", name, p.describe(), sizeof(T)));
#endif
  auto& r = rt();
  ++r.stats().atomics;
  return r.with_remote(p.home_rank(), p.segment(), p.generation(), p.byte_offset(), sizeof(T), name,
                       [&](const transport::remote_address& at) {
                         return transport::atomic<T>(r.worker(), r.endpoints(), op, at, operand, desired);
                       });
}
}  // namespace detail

// Remote atomics on 32- and 64-bit integers; each future yields the value
// before the operation.
template <transport::atomic_word T>
future<T> atomic_fetch_add(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::remote_atomic<T>(p, transport::atomic_op::fetch_add, v, 0, "atomic_fetch_add");
}
template <transport::atomic_word T>
future<T> atomic_exchange(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::remote_atomic<T>(p, transport::atomic_op::exchange, v, 0, "atomic_exchange");
}
// Swaps in `desired` when *p == expected; yields the old value either way.
template <transport::atomic_word T>
future<T> atomic_compare_exchange(global_ptr<T> p, std::type_identity_t<T> expected, std::type_identity_t<T> desired) {
  return detail::remote_atomic<T>(p, transport::atomic_op::compare_exchange, expected, desired, "atomic_compare_exchange");
}
template <transport::atomic_word T>
future<T> atomic_load(global_ptr<T> p) {
  return detail::remote_atomic<T>(p, transport::atomic_op::load, 0, 0, "atomic_load");
}
template <transport::atomic_word T>
future<T> atomic_store(global_ptr<T> p, std::type_identity_t<T> v) {
  return detail::remote_atomic<T>(p, transport::atomic_op::store, v, 0, "atomic_store");
}

}  // namespace dsm
