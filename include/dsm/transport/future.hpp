// dsm::future<T>: the completion of one non-blocking operation. wait()
// progresses the worker until UCX reports the request done (bounded by
// DSM_TIMEOUT) and returns the fetched value, if any. A result lands in a
// small buffer from a per-thread pool, so posting an operation allocates
// nothing on the heap.
#pragma once

#include <dsm/transport/status.hpp>
#include <dsm/transport/worker.hpp>

#include <fmt/format.h>
#include <ucp/api/ucp.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace dsm {

namespace detail {

// Room for any fetched scalar or an operand UCX reads after posting.
struct alignas(16) op_buffer {
  static constexpr std::size_t capacity = 64;
  std::byte bytes[capacity];
  op_buffer* next_free;
};

class op_buffer_pool {
 public:
  static op_buffer* take() {
    op_buffer_pool& p = local();
    if (op_buffer* b = p.free_) {
      p.free_ = b->next_free;
      return b;
    }
    return new op_buffer;
  }
  static void give_back(op_buffer* b) noexcept {
    op_buffer_pool& p = local();
    b->next_free = p.free_;
    p.free_ = b;
  }
  ~op_buffer_pool() {
    while (free_) delete std::exchange(free_, free_->next_free);
  }

 private:
  static op_buffer_pool& local() {
    thread_local op_buffer_pool pool;
    return pool;
  }
  op_buffer* free_ = nullptr;
};

// What an operation is, for messages: "get of 8 bytes from rank 2".
struct op_label {
  const char* operation = "";
  int peer = transport::no_peer;
};

}  // namespace detail

namespace detail {
template <class T>
constexpr bool is_future_value() {
  if constexpr (std::is_void_v<T>) return true;
  else return std::is_trivially_copyable_v<T> && sizeof(T) <= op_buffer::capacity;
}
}  // namespace detail

template <class T = void>
class future {
  static_assert(detail::is_future_value<T>(),
                "dsm::future<T>: T must be void or a trivially copyable value of at most 64 bytes");

 public:
  future() = default;
  future(future&& o) noexcept
      : worker_(o.worker_), request_(std::exchange(o.request_, nullptr)), buffer_(std::exchange(o.buffer_, nullptr)),
        label_(o.label_), abandoned_(o.abandoned_) {}
  future& operator=(future&& o) noexcept {
    if (this != &o) {
      release();
      worker_ = o.worker_;
      request_ = std::exchange(o.request_, nullptr);
      buffer_ = std::exchange(o.buffer_, nullptr);
      label_ = o.label_;
      abandoned_ = o.abandoned_;
    }
    return *this;
  }
  future(const future&) = delete;
  future& operator=(const future&) = delete;

  // An operation still in flight is completed before its buffers go away.
  ~future() {
    if (request_ != nullptr || buffer_ != nullptr) release();  // inline: most futures end empty
  }

  // Done already, without progressing (an operation UCX completed in place).
  bool done() const { return !request_ || request_done(); }

  // Done? Progresses the worker once if not.
  bool ready() {
    if (!request_) return true;
    if (request_done()) return true;
    worker_->progress();
    return request_done();
  }

  // Past DSM_TIMEOUT, errc::timeout; the request is then abandoned to the
  // worker's quarantine with its buffer (UCX cannot cancel a one-sided
  // operation, and a late reply must not land in a buffer reused by a
  // later operation), and this future is empty: never waited on again.
  // The destination of an rget into the caller's memory may still be
  // written by such a late reply.
  T wait() {
    if (request_ == nullptr && !abandoned_) [[likely]] return result();  // completed in place, or waited on
    return wait_for_request();
  }

  // For the transport: an operation posted with `request` (nullptr, or a UCX
  // status pointer, as ucp_*_nbx returned it) and result buffer `buffer`.
  future(transport::worker& w, ucs_status_ptr_t request, detail::op_buffer* buffer, detail::op_label label)
      : worker_(&w), buffer_(buffer), label_(label) {
    if (UCS_PTR_IS_ERR(request)) [[unlikely]] {
      release();
      transport::throw_status(UCS_PTR_STATUS(request), label.operation, label.peer);
    }
    request_ = request;
  }

 private:
  T result() const {
    if constexpr (!std::is_void_v<T>) {
      T value;
      std::memcpy(&value, buffer_->bytes, sizeof(T));
      return value;
    }
  }

  // Out of line: the progress loop and its error paths.
  [[gnu::noinline]] T wait_for_request() {
    if (abandoned_)
      throw error(errc::invalid_argument,
                  fmt::format("{} rank {}: waited on again after it timed out", label_.operation, label_.peer));
    if (request_) {
      try {
        worker_->wait_until([this] { return request_done(); }, worker_->timeout(),
                            [this] { return fmt::format("{} rank {}", label_.operation, label_.peer); }, label_.peer);
      } catch (...) {
        abandon();
        throw;
      }
      finish_request();
    }
    return result();
  }

  bool request_done() const {
    const auto g = worker_->lock();
    return ucp_request_check_status(request_) != UCS_INPROGRESS;
  }

  void finish_request() {
    ucs_status_t status;
    {
      const auto g = worker_->lock();
      status = ucp_request_check_status(request_);
      ucp_request_free(request_);
    }
    request_ = nullptr;
    if (status != UCS_OK) transport::throw_status(status, label_.operation, label_.peer);
  }

  void abandon() noexcept {
    abandoned_ = true;
    worker_->quarantine({std::exchange(request_, nullptr), std::exchange(buffer_, nullptr),
                         [](void* b) noexcept { delete static_cast<detail::op_buffer*>(b); }});
  }

  [[gnu::noinline]] void release() noexcept {
    if (request_) {
      try {
        wait();
      } catch (const std::exception& e) {
        fmt::print(stderr, "dsm: an operation completed with an error nobody waited for: {}\n", e.what());
      }
    }
    if (buffer_) detail::op_buffer_pool::give_back(std::exchange(buffer_, nullptr));
  }

  transport::worker* worker_ = nullptr;
  void* request_ = nullptr;
  detail::op_buffer* buffer_ = nullptr;
  detail::op_label label_;
  bool abandoned_ = false;  // timed out: its request and buffer belong to the quarantine
};

}  // namespace dsm
