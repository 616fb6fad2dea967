// The collectives over trivially copyable values, on a team or, without
// one, on every rank: broadcast, reduce, allreduce, scan, exscan, gather(v),
// scatter(v), allgather(v), alltoall(v), each blocking or (`_async`)
// returning a dsm::collective_future. Every member calls the same
// collectives in the same order with the same arguments (counts, roots,
// types, operators): a member in another one is errc::collective_mismatch
// on every member. Reductions combine in one fixed tree over the ranks in
// order (collective_algorithms.hpp): every member gets the same bits, run
// after run, and Op need only be associative.
#pragma once

#include <dsm/detail/type_name.hpp>
#include <dsm/error.hpp>
#include <dsm/operators.hpp>
#include <dsm/runtime/collective_algorithms.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/team.hpp>

#include <fmt/format.h>

#include <concepts>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace dsm {

// A collective in flight: wait() drives it to its end (bounded by
// DSM_TIMEOUT per message) and returns its result; ready() advances it as
// far as what has arrived allows. Until it is done the runtime also
// advances it during every wait of this rank. Buffers it was given must
// live until then. Destroyed unfinished, it is waited for.
template <class R = void>
class collective_future {
  using value_type = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  struct state final : detail::runtime_state::pending_collective {
    value_type value{};
  };

 public:
  collective_future(collective_future&&) noexcept = default;
  collective_future& operator=(collective_future&&) = delete;
  ~collective_future() {
    if (!s_) return;
    const detail::rank_entry entry;
    auto& rt = detail::rt();
    if (rt.job_failed() || std::uncaught_exceptions() > 0) {
      rt.forget(*s_);
      return;
    }
    try {
      rt.finish(*s_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dsm: rank %d: a collective nobody waited for failed: %s\n", dsm::rank(), e.what());
    }
  }

  bool ready() {
    const detail::rank_entry entry;
    detail::rt().worker().progress();
    detail::rt().advance(*s_);
    return s_->finished;
  }
  R wait() {
    const detail::rank_entry entry;
    detail::rt().finish(*s_);
    if constexpr (!std::is_void_v<R>) {
      R out = std::move(s_->value);
      s_.reset();
      return out;
    } else {
      s_.reset();
    }
  }

  // Starts make(&result)'s task.
  template <class Make>
  static collective_future start(Make&& make) {
    const detail::rank_entry entry;  // the call begun is the one adopted
    auto s = std::make_unique<state>();
    s->task = make(&s->value);
    detail::rt().adopt(*s);
    return collective_future(std::move(s));
  }

 private:
  explicit collective_future(std::unique_ptr<state> s) noexcept : s_(std::move(s)) {}
  std::unique_ptr<state> s_;
};

template <class Op, class T>
concept combining_operator = std::default_initializable<Op> && std::copy_constructible<Op> &&
                             requires(const Op op, const T a, const T b) {
                               { op(a, b) } -> std::convertible_to<T>;
                             };

namespace detail {
inline collective_call begin_on(const team& t, collective_kind kind, std::string signature) {
  return rt().begin(t.state(), kind, std::move(signature));
}
inline std::uint32_t root_of(const team& t, int root, const char* operation) {
  if (root < 0 || root >= t.size())
    throw error(errc::invalid_argument, fmt::format("{} from rank {} of {} ({} ranks)", operation, root, t.name(), t.size()));
  return static_cast<std::uint32_t>(root);
}
template <class T>
std::string elements(std::size_t n) {
  return fmt::format("{} x {}", n, type_name<T>());
}
}  // namespace detail

// ---- barrier --------------------------------------------------------------

inline collective_future<> barrier_async(const team& t) {
  return collective_future<>::start([&](auto*) {
    return detail::barrier_task(detail::begin_on(t, detail::collective_kind::synchronize, "barrier"));
  });
}

// ---- broadcast --------------------------------------------------------------

// The root's values into every member's `values` (the same count on all).
template <collective_value T>
collective_future<> broadcast_async(const team& t, std::span<T> values, int root) {
  const auto r = detail::root_of(t, root, "broadcast");
  return collective_future<>::start([&, r](auto*) {
    return [](detail::collective_call c, std::uint32_t r, std::span<T> values) -> detail::collective_task {
      using stored = std::conditional_t<std::is_same_v<T, bool>, unsigned char, T>;  // not vector<bool>'s bits
      std::vector<stored> data(values.begin(), values.end());
      co_await detail::collective_step(detail::broadcast_task<stored>(c, r, &data));
      if (data.size() != values.size())
        detail::throw_wrong_size(c, r, data.size() * sizeof(T), values.size_bytes());
      std::copy(data.begin(), data.end(), values.begin());
    }(detail::begin_on(t, detail::collective_kind::broadcast,
                       fmt::format("broadcast of {} from rank {}", detail::elements<T>(values.size()), r)),
      r, values);
  });
}
template <collective_value T>
void broadcast(const team& t, std::span<T> values, int root) {
  broadcast_async(t, values, root).wait();
}
template <collective_value T>
T broadcast(const team& t, T value, int root) {
  broadcast(t, std::span<T>(&value, 1), root);
  return value;
}
// The root's vector, resized on every member to the root's size.
template <collective_value T>
void broadcast(const team& t, std::vector<T>& values, int root) {
  const auto r = detail::root_of(t, root, "broadcast");
  detail::rt().run(detail::broadcast_task<T>(
      detail::begin_on(t, detail::collective_kind::broadcast,
                       fmt::format("broadcast of a vector<{}> from rank {}", detail::type_name<T>(), r)),
      r, &values));
}
template <collective_value T>
void broadcast(std::span<T> values, int root) { broadcast(world(), values, root); }
template <collective_value T>
T broadcast(T value, int root) { return broadcast(world(), value, root); }
template <collective_value T>
void broadcast(std::vector<T>& values, int root) { broadcast(world(), values, root); }

// ---- reductions ---------------------------------------------------------------

// The blocking forms of an in-place collective NAME whose NAME_async(team,
// span, op) is defined: on a span or one value, on a team or the world.
#define DSM_DETAIL_IN_PLACE_FORMS(NAME, OPERATOR)                                   \
  template <collective_value T, OPERATOR<T> Op = sum>                               \
  void NAME(const team& t, std::span<T> values, Op op = {}) {                       \
    NAME##_async(t, values, op).wait();                                             \
  }                                                                                 \
  template <collective_value T, OPERATOR<T> Op = sum>                               \
  T NAME(const team& t, T value, Op op = {}) {                                      \
    NAME(t, std::span<T>(&value, 1), op);                                           \
    return value;                                                                   \
  }                                                                                 \
  template <collective_value T, OPERATOR<T> Op = sum>                               \
  void NAME(std::span<T> values, Op op = {}) {                                      \
    NAME(world(), values, op);                                                      \
  }                                                                                 \
  template <collective_value T, OPERATOR<T> Op = sum>                               \
  T NAME(T value, Op op = {}) {                                                     \
    return NAME(world(), value, op);                                                \
  }

// values[i] becomes the combination of every member's values[i].
template <collective_value T, combining_operator<T> Op = sum>
collective_future<> allreduce_async(const team& t, std::span<T> values, Op op = {}) {
  return collective_future<>::start([&](auto*) {
    return detail::allreduce_task(
        detail::begin_on(t, detail::collective_kind::allreduce,
                         fmt::format("allreduce<{}> of {}", detail::type_name<Op>(), detail::elements<T>(values.size()))),
        values, op);
  });
}
DSM_DETAIL_IN_PLACE_FORMS(allreduce, combining_operator)

// The combination of every member's values, into the root's `values`
// (the others' are left as they were): the same bits allreduce gives.
template <collective_value T, combining_operator<T> Op = sum>
collective_future<> reduce_async(const team& t, std::span<T> values, int root, Op op = {}) {
  const auto r = detail::root_of(t, root, "reduce");
  return collective_future<>::start([&, r](auto*) {
    return detail::reduce_task(
        detail::begin_on(t, detail::collective_kind::reduce,
                         fmt::format("reduce<{}> of {} to rank {}", detail::type_name<Op>(),
                                     detail::elements<T>(values.size()), r)),
        r, values, op);
  });
}
template <collective_value T, combining_operator<T> Op = sum>
void reduce(const team& t, std::span<T> values, int root, Op op = {}) { reduce_async(t, values, root, op).wait(); }
template <collective_value T, combining_operator<T> Op = sum>
T reduce(const team& t, T value, int root, Op op = {}) {
  reduce(t, std::span<T>(&value, 1), root, op);
  return value;
}
template <collective_value T, combining_operator<T> Op = sum>
void reduce(std::span<T> values, int root, Op op = {}) { reduce(world(), values, root, op); }
template <collective_value T, combining_operator<T> Op = sum>
T reduce(T value, int root, Op op = {}) { return reduce(world(), value, root, op); }

// Inclusive prefix: member r's values[i] becomes members 0..r's combined.
template <collective_value T, combining_operator<T> Op = sum>
collective_future<> scan_async(const team& t, std::span<T> values, Op op = {}) {
  return collective_future<>::start([&](auto*) {
    return detail::scan_task(detail::begin_on(t, detail::collective_kind::scan,
                                              fmt::format("scan<{}> of {}", detail::type_name<Op>(),
                                                          detail::elements<T>(values.size()))),
                             values, op, std::span<T>());
  });
}
DSM_DETAIL_IN_PLACE_FORMS(scan, combining_operator)

// Exclusive prefix: member r's values[i] becomes members 0..r-1's
// combined; member 0's becomes Op's identity.
template <collective_value T, reduction_operator<T> Op = sum>
collective_future<> exscan_async(const team& t, std::span<T> values, Op op = {}) {
  return collective_future<>::start([&](auto*) {
    return [](detail::collective_call c, std::span<T> values, Op op) -> detail::collective_task {
      std::vector<T> inclusive(values.begin(), values.end());
      std::fill(values.begin(), values.end(), Op::template identity<T>());
      co_await detail::collective_step(detail::scan_task(c, std::span<T>(inclusive), op, values));
    }(detail::begin_on(t, detail::collective_kind::scan,
                       fmt::format("exscan<{}> of {}", detail::type_name<Op>(), detail::elements<T>(values.size()))),
      values, op);
  });
}
DSM_DETAIL_IN_PLACE_FORMS(exscan, reduction_operator)
#undef DSM_DETAIL_IN_PLACE_FORMS

// ---- gathering and spreading ------------------------------------------------

// Every member's elements, member by member (allgatherv: counts may differ).
template <collective_value T>
collective_future<std::vector<std::vector<T>>> allgatherv_async(const team& t, std::span<const T> mine) {
  return collective_future<std::vector<std::vector<T>>>::start([&](std::vector<std::vector<T>>* out) {
    return detail::allgather_task<T>(
        detail::begin_on(t, detail::collective_kind::allgather, fmt::format("allgatherv<{}>", detail::type_name<T>())),
        {mine.begin(), mine.end()}, out);
  });
}
template <collective_value T>
std::vector<std::vector<T>> allgatherv(const team& t, std::span<const T> mine) { return allgatherv_async(t, mine).wait(); }
template <collective_value T>
std::vector<std::vector<T>> allgatherv(std::span<const T> mine) { return allgatherv(world(), mine); }

namespace detail {
template <class T>
std::vector<T> concatenated(std::vector<std::vector<T>>&& parts) {
  std::vector<T> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
}  // namespace detail

// Every member's `mine` (the same count on all), concatenated in member order.
template <collective_value T>
std::vector<T> allgather(const team& t, std::span<const T> mine) {
  if constexpr (std::is_same_v<T, bool>) {  // vector<bool> packs bits: gathered as bytes
    const std::vector<unsigned char> bytes(mine.begin(), mine.end());
    const auto all = allgather(t, std::span<const unsigned char>(bytes));
    return std::vector<bool>(all.begin(), all.end());
  } else {
    std::vector<std::vector<T>> all;
    detail::rt().run(detail::allgather_task<T>(
        detail::begin_on(t, detail::collective_kind::allgather, fmt::format("allgather of {}", detail::elements<T>(mine.size()))),
        {mine.begin(), mine.end()}, &all));
    return detail::concatenated(std::move(all));
  }
}
template <collective_value T>
std::vector<T> allgather(const team& t, const T& mine) { return allgather(t, std::span<const T>(&mine, 1)); }
template <collective_value T>
std::vector<T> allgather(std::span<const T> mine) { return allgather(world(), mine); }
// Every rank's value, in rank order.
template <collective_value T>
std::vector<T> allgather(const T& mine) { return allgather(world(), mine); }

// The root gets every member's elements, member by member; the others an
// empty result.
template <collective_value T>
collective_future<std::vector<std::vector<T>>> gatherv_async(const team& t, std::span<const T> mine, int root) {
  const auto r = detail::root_of(t, root, "gatherv");
  return collective_future<std::vector<std::vector<T>>>::start([&, r](std::vector<std::vector<T>>* out) {
    return detail::gather_task<T>(detail::begin_on(t, detail::collective_kind::gather,
                                                   fmt::format("gatherv<{}> to rank {}", detail::type_name<T>(), r)),
                                  r, {mine.begin(), mine.end()}, out);
  });
}
template <collective_value T>
std::vector<std::vector<T>> gatherv(const team& t, std::span<const T> mine, int root) {
  return gatherv_async(t, mine, root).wait();
}
template <collective_value T>
std::vector<std::vector<T>> gatherv(std::span<const T> mine, int root) { return gatherv(world(), mine, root); }

// The root gets every member's `mine` (the same count on all),
// concatenated in member order; the others an empty vector.
template <collective_value T>
std::vector<T> gather(const team& t, std::span<const T> mine, int root) {
  const auto r = detail::root_of(t, root, "gather");
  std::vector<std::vector<T>> all;
  detail::rt().run(detail::gather_task<T>(
      detail::begin_on(t, detail::collective_kind::gather,
                       fmt::format("gather of {} to rank {}", detail::elements<T>(mine.size()), r)),
      r, {mine.begin(), mine.end()}, &all));
  return detail::concatenated(std::move(all));
}
template <collective_value T>
std::vector<T> gather(const team& t, const T& mine, int root) { return gather(t, std::span<const T>(&mine, 1), root); }
template <collective_value T>
std::vector<T> gather(std::span<const T> mine, int root) { return gather(world(), mine, root); }
template <collective_value T>
std::vector<T> gather(const T& mine, int root) { return gather(world(), mine, root); }

// The root's parts[r] to member r (the root passes one part per member;
// the others' parts are not read).
template <collective_value T>
collective_future<std::vector<T>> scatterv_async(const team& t, std::span<const std::vector<T>> parts, int root) {
  const auto r = detail::root_of(t, root, "scatterv");
  if (t.rank() == static_cast<int>(r) && parts.size() != static_cast<std::size_t>(t.size()))
    throw error(errc::invalid_argument, fmt::format("scatterv on {}: {} parts for {} members", t.name(), parts.size(), t.size()));
  return collective_future<std::vector<T>>::start([&, r](std::vector<T>* out) {
    return detail::scatter_task<T>(detail::begin_on(t, detail::collective_kind::scatter,
                                                    fmt::format("scatterv<{}> from rank {}", detail::type_name<T>(), r)),
                                   r, t.rank() == static_cast<int>(r) ? std::vector<std::vector<T>>(parts.begin(), parts.end())
                                                                      : std::vector<std::vector<T>>(),
                                   out);
  });
}
template <collective_value T>
std::vector<T> scatterv(const team& t, std::span<const std::vector<T>> parts, int root) {
  return scatterv_async(t, parts, root).wait();
}
template <collective_value T>
std::vector<T> scatterv(std::span<const std::vector<T>> parts, int root) { return scatterv(world(), parts, root); }

// The root's `all` in size() equal parts, part r to member r.
template <collective_value T>
std::vector<T> scatter(const team& t, std::span<const T> all, int root) {
  const auto r = detail::root_of(t, root, "scatter");
  std::vector<std::vector<T>> parts;
  if (t.rank() == static_cast<int>(r)) {
    const auto n = static_cast<std::size_t>(t.size());
    if (all.size() % n != 0)
      throw error(errc::invalid_argument,
                  fmt::format("scatter on {}: {} elements do not split into {} equal parts", t.name(), all.size(), n));
    for (std::size_t k = 0; k < n; ++k) parts.emplace_back(all.begin() + k * (all.size() / n), all.begin() + (k + 1) * (all.size() / n));
  }
  std::vector<T> mine;
  detail::rt().run(detail::scatter_task<T>(
      detail::begin_on(t, detail::collective_kind::scatter, fmt::format("scatter<{}> from rank {}", detail::type_name<T>(), r)),
      r, std::move(parts), &mine));
  return mine;
}
template <collective_value T>
std::vector<T> scatter(std::span<const T> all, int root) { return scatter(world(), all, root); }

// to_each[r] to member r; returns what each member sent this one.
template <collective_value T>
collective_future<std::vector<std::vector<T>>> alltoallv_async(const team& t, std::span<const std::vector<T>> to_each) {
  if (to_each.size() != static_cast<std::size_t>(t.size()))
    throw error(errc::invalid_argument, fmt::format("alltoallv on {}: {} parts for {} members", t.name(), to_each.size(), t.size()));
  return collective_future<std::vector<std::vector<T>>>::start([&](std::vector<std::vector<T>>* out) {
    return detail::alltoall_task<T>(
        detail::begin_on(t, detail::collective_kind::exchange, fmt::format("alltoallv<{}>", detail::type_name<T>())),
        {to_each.begin(), to_each.end()}, out);
  });
}
template <collective_value T>
std::vector<std::vector<T>> alltoallv(const team& t, std::span<const std::vector<T>> to_each) {
  return alltoallv_async(t, to_each).wait();
}
template <collective_value T>
std::vector<std::vector<T>> alltoallv(std::span<const std::vector<T>> to_each) { return alltoallv(world(), to_each); }

// `send` in size() equal blocks, block r to member r; returns the blocks
// received, member by member.
template <collective_value T>
std::vector<T> alltoall(const team& t, std::span<const T> send) {
  const auto n = static_cast<std::size_t>(t.size());
  if (send.size() % n != 0)
    throw error(errc::invalid_argument,
                fmt::format("alltoall on {}: {} elements do not split into {} equal blocks", t.name(), send.size(), n));
  const std::size_t k = send.size() / n;
  std::vector<std::vector<T>> to_each, from;
  for (std::size_t r = 0; r < n; ++r) to_each.emplace_back(send.begin() + r * k, send.begin() + (r + 1) * k);
  detail::rt().run(detail::alltoall_task<T>(
      detail::begin_on(t, detail::collective_kind::exchange, fmt::format("alltoall of {} per member", detail::elements<T>(k))),
      std::move(to_each), &from));
  return detail::concatenated(std::move(from));
}
template <collective_value T>
std::vector<T> alltoall(std::span<const T> send) { return alltoall(world(), send); }

// ---- the non-blocking forms on every rank --------------------------------------

inline collective_future<> barrier_async() { return barrier_async(world()); }
template <collective_value T>
collective_future<> broadcast_async(std::span<T> values, int root) { return broadcast_async(world(), values, root); }
template <collective_value T, combining_operator<T> Op = sum>
collective_future<> allreduce_async(std::span<T> values, Op op = {}) { return allreduce_async(world(), values, op); }
template <collective_value T, combining_operator<T> Op = sum>
collective_future<> reduce_async(std::span<T> values, int root, Op op = {}) { return reduce_async(world(), values, root, op); }
template <collective_value T, combining_operator<T> Op = sum>
collective_future<> scan_async(std::span<T> values, Op op = {}) { return scan_async(world(), values, op); }
template <collective_value T, reduction_operator<T> Op = sum>
collective_future<> exscan_async(std::span<T> values, Op op = {}) { return exscan_async(world(), values, op); }
template <collective_value T>
collective_future<std::vector<std::vector<T>>> allgatherv_async(std::span<const T> mine) { return allgatherv_async(world(), mine); }
template <collective_value T>
collective_future<std::vector<std::vector<T>>> gatherv_async(std::span<const T> mine, int root) {
  return gatherv_async(world(), mine, root);
}
template <collective_value T>
collective_future<std::vector<T>> scatterv_async(std::span<const std::vector<T>> parts, int root) {
  return scatterv_async(world(), parts, root);
}
template <collective_value T>
collective_future<std::vector<std::vector<T>>> alltoallv_async(std::span<const std::vector<T>> to_each) {
  return alltoallv_async(world(), to_each);
}

}  // namespace dsm
