// dsm::future<T>: the completion of one non-blocking operation, or a value
// computed from others' (then, when_all, make_ready_future). wait()
// progresses the worker until it is done (bounded by DSM_TIMEOUT) and
// returns the value, if any. An operation's result lands in a small buffer
// from a per-thread pool, so posting one allocates nothing on the heap; a
// composed future keeps its computation on the heap.
#pragma once

#include <dsm/detail/type_name.hpp>
#include <dsm/transport/status.hpp>
#include <dsm/transport/worker.hpp>

#include <fmt/format.h>
#include <ucp/api/ucp.h>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

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

template <class T>
class future;

namespace detail {
// Whether an operation's fetched value of type T comes back through an
// op_buffer; any other value is a composed future's.
template <class T>
constexpr bool is_future_value() {
  if constexpr (std::is_void_v<T>) return true;
  else
    return std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T> &&
           sizeof(T) <= op_buffer::capacity;
}

// A value computed after operations complete: what a composed future polls.
template <class T>
class deferred {
 public:
  virtual ~deferred() = default;
  // Moves the computation on without progressing the worker (it may run a
  // callback or post an operation); true once the value or an error is in.
  virtual bool advance() = 0;
  // The value, or the error thrown; once, after advance() said true.
  virtual T take() = 0;
  // What it still waits for, and on which rank (a timeout's message).
  virtual std::string describe() const = 0;
  virtual int awaited() const noexcept = 0;
  // After a timeout: what is still in flight goes to the worker's quarantine.
  virtual void abandon() noexcept = 0;
};

// What the composition needs of a future and users never call.
struct future_access;
}  // namespace detail

template <class T = void>
class future {
  static_assert(std::is_void_v<T> || (std::is_object_v<T> && !std::is_array_v<T> && std::is_move_constructible_v<T>),
                "dsm::future<T>: T must be void or a movable object type");

 public:
  using value_type = T;

  future() = default;
  future(future&& o) noexcept
      : worker_(o.worker_), request_(std::exchange(o.request_, nullptr)), buffer_(std::exchange(o.buffer_, nullptr)),
        deferred_(std::move(o.deferred_)), label_(o.label_), abandoned_(o.abandoned_) {}
  future& operator=(future&& o) noexcept {
    if (this != &o) {
      release();
      worker_ = o.worker_;
      request_ = std::exchange(o.request_, nullptr);
      buffer_ = std::exchange(o.buffer_, nullptr);
      deferred_ = std::move(o.deferred_);
      label_ = o.label_;
      abandoned_ = o.abandoned_;
    }
    return *this;
  }
  future(const future&) = delete;
  future& operator=(const future&) = delete;

  // An operation still in flight is completed (a composed future's
  // callbacks run) before its buffers go away.
  ~future() {
    if (request_ != nullptr || buffer_ != nullptr || deferred_) release();  // inline: most futures end empty
  }

  // Whether it holds an operation or a value to wait for. An empty
  // future<void> (default-constructed or moved from) is done; waiting on an
  // empty future<T> is an error.
  bool valid() const noexcept {
    return std::is_void_v<T> || request_ != nullptr || buffer_ != nullptr || deferred_ != nullptr || abandoned_;
  }

  // Done already, without progressing (an operation UCX completed in place).
  bool done() const {
    if (deferred_) [[unlikely]] return deferred_->advance();
    return !request_ || request_done();
  }

  // Done? Progresses the worker once if not.
  bool ready() {
    if (deferred_) [[unlikely]] {
      if (deferred_->advance()) return true;
      if (worker_) worker_->progress();
      return deferred_->advance();
    }
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
  // written by such a late reply. A value other than an operation's
  // (a std::vector, a tuple from when_all) is moved out: returned once.
  T wait() {
    if (request_ == nullptr && !abandoned_ && !deferred_) [[likely]] return result();  // completed in place, or waited on
    return wait_slow();
  }

  // A future of f(value) (f() for a future<void>), run once this one is
  // done, on the thread that then tests or waits on the result (or at once,
  // if this one is done already). If f returns a future, the result is that
  // future's value. An error of this future, or one f throws, is the
  // result's, thrown by its wait(). Consumes this future (it becomes empty).
  template <class F>
  auto then(F&& f);

  // For the transport: an operation posted with `request` (nullptr, or a UCX
  // status pointer, as ucp_*_nbx returned it) and result buffer `buffer`.
  future(transport::worker& w, ucs_status_ptr_t request, detail::op_buffer* buffer, detail::op_label label)
    requires(detail::is_future_value<T>())
      : worker_(&w), buffer_(buffer), label_(label) {
    if (UCS_PTR_IS_ERR(request)) [[unlikely]] {
      release();
      transport::throw_status(UCS_PTR_STATUS(request), label.operation, label.peer);
    }
    request_ = request;
  }

 private:
  friend struct detail::future_access;

  // A composed future (`w`: the worker that progresses what it waits for).
  future(transport::worker* w, std::unique_ptr<detail::deferred<T>> d) noexcept : worker_(w), deferred_(std::move(d)) {}

  T result() const {
    if constexpr (!std::is_void_v<T>) {
      if constexpr (detail::is_future_value<T>()) {
        if (buffer_ != nullptr) [[likely]] {
          T value;
          std::memcpy(&value, buffer_->bytes, sizeof(T));
          return value;
        }
      }
      throw_empty();
    }
  }

  [[noreturn, gnu::cold, gnu::noinline]] static void throw_empty() {
    throw error(errc::invalid_argument,
                fmt::format("waited on an empty dsm::future<{}>: default-constructed, moved from, consumed by then(), "
                            "or its value taken by an earlier wait()",
                            detail::type_name<T>()));
  }

  std::string describe() const {
    if (deferred_) return deferred_->describe();
    if (*label_.operation == '\0') return "a ready value";
    return fmt::format("{} rank {}", label_.operation, label_.peer);
  }
  int awaited() const noexcept { return deferred_ ? deferred_->awaited() : label_.peer; }

  // Out of line: the progress loops and their error paths.
  [[gnu::noinline]] T wait_slow() {
    if (abandoned_)
      throw error(errc::invalid_argument, fmt::format("{}: waited on again after it timed out", describe()));
    if (deferred_) return wait_deferred();
    try {
      worker_->wait_until([this] { return request_done(); }, worker_->timeout(),
                          [this] { return describe(); }, label_.peer);
    } catch (...) {
      abandon();
      throw;
    }
    finish_request();
    return result();
  }

  T wait_deferred() {
    if (!deferred_->advance()) {
      if (worker_ == nullptr)
        throw error(errc::internal, fmt::format("{}: a composed future with no worker to progress", describe()));
      try {
        worker_->wait_until([this] { return deferred_->advance(); }, worker_->timeout(),
                            [this] { return deferred_->describe(); }, deferred_->awaited());
      } catch (...) {
        abandon();
        throw;
      }
    }
    const std::unique_ptr<detail::deferred<T>> d = std::move(deferred_);
    if constexpr (std::is_void_v<T>) {
      d->take();
    } else if constexpr (detail::is_future_value<T>()) {
      // Kept, so that a later wait() returns it again, as an operation's does.
      const T value = d->take();
      buffer_ = detail::op_buffer_pool::take();
      std::memcpy(buffer_->bytes, &value, sizeof(T));
      return value;
    } else {
      return d->take();
    }
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

  // What is in flight goes to the quarantine; this future is never waited
  // on again (a composed one keeps its description for the message).
  void abandon() noexcept {
    if (deferred_) {
      deferred_->abandon();
      abandoned_ = true;
    } else if (request_) {
      abandoned_ = true;
      worker_->quarantine({std::exchange(request_, nullptr), std::exchange(buffer_, nullptr),
                           [](void* b) noexcept { delete static_cast<detail::op_buffer*>(b); }});
    }
  }

  [[gnu::noinline]] void release() noexcept {
    if (request_ || (deferred_ && !abandoned_)) {
      try {
        (void)wait();
      } catch (const std::exception& e) {
        fmt::print(stderr, "dsm: an operation completed with an error nobody waited for: {}\n", e.what());
      }
    }
    deferred_.reset();
    if (buffer_) detail::op_buffer_pool::give_back(std::exchange(buffer_, nullptr));
  }

  transport::worker* worker_ = nullptr;
  void* request_ = nullptr;
  detail::op_buffer* buffer_ = nullptr;
  std::unique_ptr<detail::deferred<T>> deferred_;
  detail::op_label label_;
  bool abandoned_ = false;  // timed out: its request and buffer belong to the quarantine
};

namespace detail {
struct future_access {
  template <class T>
  static future<T> composed(transport::worker* w, std::unique_ptr<deferred<T>> d) noexcept {
    return future<T>(w, std::move(d));
  }
  template <class T>
  static future<T> holding(op_buffer* b) noexcept {
    future<T> f;
    f.buffer_ = b;
    return f;
  }
  template <class T>
  static transport::worker* worker(const future<T>& f) noexcept {
    return f.worker_;
  }
  template <class T>
  static std::string describe(const future<T>& f) {
    return f.describe();
  }
  template <class T>
  static int awaited(const future<T>& f) noexcept {
    return f.awaited();
  }
  template <class T>
  static void abandon(future<T>& f) noexcept {
    f.abandon();
  }
};

// A value, or an error, known now (for values an op_buffer cannot hold).
template <class T>
class finished final : public deferred<T> {
 public:
  explicit finished(std::exception_ptr e) : error_(std::move(e)) {}
  template <class... Args>
  explicit finished(std::in_place_t, Args&&... args) : value_(std::in_place, std::forward<Args>(args)...) {}
  bool advance() override { return true; }
  T take() override {
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<T>) return std::move(*value_);
  }
  std::string describe() const override { return "a ready value"; }
  int awaited() const noexcept override { return transport::no_peer; }
  void abandon() noexcept override {}

 private:
  std::exception_ptr error_;
  std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>> value_;
};

template <class T>
future<T> failed_future(std::exception_ptr e) {
  return future_access::composed<T>(nullptr, std::make_unique<finished<T>>(std::move(e)));
}

template <class T>
struct is_future : std::false_type {};
template <class T>
struct is_future<future<T>> : std::true_type {};

// What then(f) calls f with: the value, or nothing for a future<void>.
template <class T, class F>
concept continuation_of = (std::is_void_v<T> && std::invocable<F&>) || (!std::is_void_v<T> && std::invocable<F&, T>);

template <class T, class F>
struct callback_result {
  using type = std::invoke_result_t<F&, T>;
};
template <class F>
struct callback_result<void, F> {
  using type = std::invoke_result_t<F&>;
};
template <class R>
struct unwrapped {
  using type = std::remove_cvref_t<R>;
};
template <class R>
  requires is_future<std::remove_cvref_t<R>>::value
struct unwrapped<R> {
  using type = typename std::remove_cvref_t<R>::value_type;
};
// The value type of then(f)'s future.
template <class T, class F>
using then_value_t = typename unwrapped<typename callback_result<T, F>::type>::type;
}  // namespace detail

// A future that is done, holding `value` (no operation, no heap for a
// value of at most 64 trivially copyable bytes).
template <class V>
future<std::decay_t<V>> make_ready_future(V&& value) {
  using T = std::decay_t<V>;
  if constexpr (detail::is_future_value<T>()) {
    const T copy(std::forward<V>(value));
    detail::op_buffer* b = detail::op_buffer_pool::take();
    std::memcpy(b->bytes, &copy, sizeof(T));
    return detail::future_access::holding<T>(b);
  } else {
    return detail::future_access::composed<T>(nullptr,
                                               std::make_unique<detail::finished<T>>(std::in_place, std::forward<V>(value)));
  }
}
inline future<> make_ready_future() { return {}; }

namespace detail {
// f(source's value) as a future: the future f returned, or its value made
// ready; an error of either is the result's.
template <class S, class F>
future<then_value_t<S, F>> run_callback(future<S>& source, F& f) {
  using R = typename callback_result<S, F>::type;
  using V = then_value_t<S, F>;
  try {
    auto call = [&]() -> R {
      if constexpr (std::is_void_v<S>) {
        source.wait();
        return std::invoke(f);
      } else {
        return std::invoke(f, source.wait());
      }
    };
    if constexpr (is_future<std::remove_cvref_t<R>>::value) {
      static_assert(!std::is_lvalue_reference_v<R>, "then(f): f returns a reference to a future; return the future itself");
      return call();
    } else if constexpr (std::is_void_v<R>) {
      call();
      return future<>{};
    } else {
      return make_ready_future(call());
    }
  } catch (...) {
    return failed_future<V>(std::current_exception());
  }
}

// then(f) on a future not yet done.
template <class S, class F>
class continuation final : public deferred<then_value_t<S, F>> {
  using V = then_value_t<S, F>;

 public:
  continuation(future<S>&& source, F&& f) : source_(std::move(source)), f_(std::move(f)) {}
  bool advance() override {
    if (source_) {
      if (!source_->done()) return false;
      next_ = run_callback(*source_, f_);
      source_.reset();
    }
    return next_.done();
  }
  V take() override { return next_.wait(); }
  std::string describe() const override {
    return source_ ? "then() after " + future_access::describe(*source_) : future_access::describe(next_);
  }
  int awaited() const noexcept override {
    return source_ ? future_access::awaited(*source_) : future_access::awaited(next_);
  }
  void abandon() noexcept override {
    if (source_) future_access::abandon(*source_);
    else future_access::abandon(next_);
  }

 private:
  std::optional<future<S>> source_;  // until done; then the callback's result
  F f_;
  future<V> next_;
};
}  // namespace detail

template <class T>
template <class F>
auto future<T>::then(F&& f) {
  static_assert(detail::continuation_of<T, F>,
                "future<T>::then(f): f must be callable with the future's value (a T), or with no argument for a future<void>");
  using V = detail::then_value_t<T, F>;
  using C = std::decay_t<F>;
  if (!valid()) throw_empty();
  future<T> source = std::move(*this);
  if (source.done()) {
    C callback(std::forward<F>(f));
    return detail::run_callback(source, callback);
  }
  transport::worker* w = source.worker_;
  return detail::future_access::composed<V>(
      w, std::make_unique<detail::continuation<T, C>>(std::move(source), C(std::forward<F>(f))));
}

namespace detail {
template <class T>
using value_tuple_t = std::conditional_t<std::is_void_v<T>, std::tuple<>, std::tuple<T>>;
// when_all's value: the non-void values in order, or void if there are none.
template <class... Ts>
using all_values_t = std::conditional_t<(std::is_void_v<Ts> && ...), void,
                                        decltype(std::tuple_cat(std::declval<value_tuple_t<Ts>>()...))>;

template <class T>
value_tuple_t<T> value_tuple(future<T>& f) {
  if constexpr (std::is_void_v<T>) {
    f.wait();
    return {};
  } else {
    return value_tuple_t<T>(f.wait());
  }
}

// What a set of futures waits for: the first not done.
template <class Each>
void first_pending(Each&& each, std::string& what, int& rank) {
  bool found = false;
  each([&](const auto& f) {
    if (found || f.done()) return;
    found = true;
    what = future_access::describe(f);
    rank = future_access::awaited(f);
  });
}

template <class... Ts>
class all_of final : public deferred<all_values_t<Ts...>> {
  using R = all_values_t<Ts...>;

 public:
  explicit all_of(future<Ts>&&... fs) : futures_(std::move(fs)...) {}
  bool advance() override {
    return std::apply([](const auto&... f) { return (f.done() && ...); }, futures_);
  }
  R take() override {
    if constexpr (std::is_void_v<R>) std::apply([](auto&... f) { (f.wait(), ...); }, futures_);
    else return std::apply([](auto&... f) { return std::tuple_cat(value_tuple(f)...); }, futures_);
  }
  std::string describe() const override { return "when_all: " + pending().first; }
  int awaited() const noexcept override {
    try {
      return pending().second;
    } catch (...) {
      return transport::no_peer;
    }
  }
  void abandon() noexcept override {
    std::apply([](auto&... f) { (future_access::abandon(f), ...); }, futures_);
  }

 private:
  std::pair<std::string, int> pending() const {
    std::pair<std::string, int> p{"nothing", transport::no_peer};
    first_pending([this](auto&& visit) { std::apply([&](const auto&... f) { (visit(f), ...); }, futures_); }, p.first,
                  p.second);
    return p;
  }
  std::tuple<future<Ts>...> futures_;
};

template <class T>
using each_value_t = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

template <class T>
class each_of final : public deferred<each_value_t<T>> {
 public:
  explicit each_of(std::vector<future<T>>&& fs) : futures_(std::move(fs)) {}
  bool advance() override {
    while (done_ < futures_.size() && futures_[done_].done()) ++done_;  // in order: each tested once when done
    return done_ == futures_.size();
  }
  each_value_t<T> take() override {
    if constexpr (std::is_void_v<T>) {
      for (future<T>& f : futures_) f.wait();
    } else {
      std::vector<T> values;
      values.reserve(futures_.size());
      for (future<T>& f : futures_) values.push_back(f.wait());
      return values;
    }
  }
  std::string describe() const override {
    if (done_ >= futures_.size()) return "when_all: nothing";
    return fmt::format("when_all: future {} of {}: {}", done_, futures_.size(), future_access::describe(futures_[done_]));
  }
  int awaited() const noexcept override {
    return done_ < futures_.size() ? future_access::awaited(futures_[done_]) : transport::no_peer;
  }
  void abandon() noexcept override {
    for (future<T>& f : futures_) future_access::abandon(f);
  }

 private:
  std::vector<future<T>> futures_;
  std::size_t done_ = 0;
};

template <class Range>
transport::worker* any_worker(const Range& futures) {
  for (const auto& f : futures)
    if (transport::worker* w = future_access::worker(f)) return w;
  return nullptr;
}
}  // namespace detail

// A future done when all of `futures` are: its value is the tuple of their
// non-void values, in order (void if all are void); the first error among
// them is its error. Takes the futures (pass them with std::move).
template <class... Ts>
future<detail::all_values_t<Ts...>> when_all(future<Ts>... futures) {
  using R = detail::all_values_t<Ts...>;
  transport::worker* w = nullptr;
  ((w = w != nullptr ? w : detail::future_access::worker(futures)), ...);
  return detail::future_access::composed<R>(w, std::make_unique<detail::all_of<Ts...>>(std::move(futures)...));
}

// The same for any number of futures of one type: a vector of their values
// (void for future<void>s).
template <class T>
future<detail::each_value_t<T>> when_all(std::vector<future<T>> futures) {
  transport::worker* w = detail::any_worker(futures);
  return detail::future_access::composed<detail::each_value_t<T>>(w, std::make_unique<detail::each_of<T>>(std::move(futures)));
}

}  // namespace dsm
