// Non-blocking one-sided operations on registered memory of a peer: put,
// get and 32/64-bit atomics. Each returns a dsm::future; none checks bounds
// (the runtime has done that before calling).
#pragma once

#include <dsm/transport/endpoints.hpp>
#include <dsm/transport/future.hpp>
#include <dsm/transport/worker.hpp>

#include <ucp/api/ucp.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dsm::transport {

// The integer types UCX can operate on atomically.
template <class T>
concept atomic_word = std::integral<T> && (sizeof(T) == 4 || sizeof(T) == 8);

enum class atomic_op { fetch_add, exchange, compare_exchange, load, store };

struct remote_address {
  int rank;
  std::uint64_t address;
  ucp_rkey_h rkey;
};

// No optional parameters: UCX reads only the fields op_attr_mask names, so
// the other 56 bytes need no zeroing on every small put.
inline ucp_request_param_t no_parameters() noexcept {
  ucp_request_param_t param;
  param.op_attr_mask = 0;
  return param;
}

inline future<> put(worker& w, endpoints& eps, const void* src, std::size_t bytes, const remote_address& to) {
  ucp_request_param_t param = no_parameters();
  ucs_status_ptr_t req;
  {
    const auto g = w.lock();
    req = ucp_put_nbx(eps[to.rank], src, bytes, to.address, to.rkey, &param);
  }
  eps.mark_written(to.rank);
  return future<>(w, req, nullptr, {"put", to.rank});
}

// A put of a value the caller need not keep: it is copied first.
template <class T>
future<> put_value(worker& w, endpoints& eps, const T& value, const remote_address& to) {
  static_assert(sizeof(T) <= detail::op_buffer::capacity, "put_value: use the bulk put for large values");
  detail::op_buffer* buffer = detail::op_buffer_pool::take();
  std::memcpy(buffer->bytes, &value, sizeof(T));
  ucp_request_param_t param = no_parameters();
  ucs_status_ptr_t req;
  {
    const auto g = w.lock();
    req = ucp_put_nbx(eps[to.rank], buffer->bytes, sizeof(T), to.address, to.rkey, &param);
  }
  eps.mark_written(to.rank);
  return future<>(w, req, buffer, {"put", to.rank});
}

// A batch of operations to one peer completed together: post(ep, param)
// makes the UCX calls and hands each one's status to issued(); their
// requests are left to UCX (freed when done), and the future is a flush
// of the peer's endpoint, which completes after everything posted to it.
// `keep` (a pooled buffer the operations read) is released with the
// future. Every `progress_every` operations the worker is progressed, so
// that a long batch does not pile up in UCX's queues.
template <class Post>
future<> post_then_flush(worker& w, endpoints& eps, int rank, const char* name, Post&& post,
                         detail::op_buffer* keep = nullptr) {
  constexpr std::size_t progress_every = 256;
  ucp_request_param_t param = no_parameters();
  ucs_status_ptr_t flush;
  {
    const auto g = w.lock();
    std::size_t posted = 0;
    const auto issued = [&](ucs_status_ptr_t req) {
      if (UCS_PTR_IS_ERR(req)) {
        if (keep) detail::op_buffer_pool::give_back(keep);
        throw_status(UCS_PTR_STATUS(req), name, rank);
      }
      if (req != nullptr) ucp_request_free(req);
      if (++posted % progress_every == 0) ucp_worker_progress(w.handle());
    };
    post(eps[rank], param, issued);
    flush = ucp_ep_flush_nbx(eps[rank], &param);
  }
  return future<>(w, flush, keep, {name, rank});
}

// A put whose future completes when the bytes are at the target (not only
// when `src` may be reused): the put, then the flush.
inline future<> put_remote_complete(worker& w, endpoints& eps, const void* src, std::size_t bytes,
                                    const remote_address& to, detail::op_buffer* keep = nullptr) {
  return post_then_flush(
      w, eps, to.rank, "put (remote completion)",
      [&](ucp_ep_h ep, ucp_request_param_t& param, auto&& issued) {
        issued(ucp_put_nbx(ep, src, bytes, to.address, to.rkey, &param));
      },
      keep);
}

// Operations posted after this complete at their targets after those
// posted before (UCX's worker fence): a signal never overtakes its data.
inline void order_after_posted(worker& w) {
  const auto g = w.lock();
  check(ucp_worker_fence(w.handle()), "worker_fence");
}

inline future<> get(worker& w, endpoints& eps, void* dst, std::size_t bytes, const remote_address& from) {
  ucp_request_param_t param = no_parameters();
  ucs_status_ptr_t req;
  {
    const auto g = w.lock();
    req = ucp_get_nbx(eps[from.rank], dst, bytes, from.address, from.rkey, &param);
  }
  return future<>(w, req, nullptr, {"get", from.rank});
}

template <class T>
future<T> get_value(worker& w, endpoints& eps, const remote_address& from) {
  detail::op_buffer* buffer = detail::op_buffer_pool::take();
  ucp_request_param_t param = no_parameters();
  ucs_status_ptr_t req;
  {
    const auto g = w.lock();
    req = ucp_get_nbx(eps[from.rank], buffer->bytes, sizeof(T), from.address, from.rkey, &param);
  }
  return future<T>(w, req, buffer, {"get", from.rank});
}

// fetch_add, exchange, load and store return the old value; compare_exchange
// returns the old value too (equal to `expected` when it swapped).
template <atomic_word T>
future<T> atomic(worker& w, endpoints& eps, atomic_op op, const remote_address& at, T operand, T desired = 0) {
  detail::op_buffer* buffer = detail::op_buffer_pool::take();
  // UCX writes the old value into the reply slot, where the future reads
  // its result; for CSWAP the reply slot carries the new value in.
  T* reply = reinterpret_cast<T*>(buffer->bytes);
  T* operand_slot = reinterpret_cast<T*>(buffer->bytes + 16);
  ucp_atomic_op_t opcode = UCP_ATOMIC_OP_ADD;
  const char* name = "atomic fetch_add";
  switch (op) {
    case atomic_op::fetch_add: *operand_slot = operand; break;
    case atomic_op::load: *operand_slot = 0; name = "atomic load"; break;
    case atomic_op::exchange:
    case atomic_op::store:
      opcode = UCP_ATOMIC_OP_SWAP, *operand_slot = operand;
      name = op == atomic_op::store ? "atomic store" : "atomic exchange";
      break;
    case atomic_op::compare_exchange:
      opcode = UCP_ATOMIC_OP_CSWAP, *operand_slot = operand, *reply = desired;
      name = "atomic compare_exchange";
      break;
  }
  ucp_request_param_t param = no_parameters();
  param.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FIELD_REPLY_BUFFER;
  param.datatype = ucp_dt_make_contig(sizeof(T));
  param.reply_buffer = reply;
  ucs_status_ptr_t req;
  {
    const auto g = w.lock();
    req = ucp_atomic_op_nbx(eps[at.rank], opcode, operand_slot, 1, at.address, at.rkey, &param);
  }
  eps.mark_written(at.rank);
  return future<T>(w, req, buffer, {name, at.rank});
}

}  // namespace dsm::transport
