// Non-contiguous one-sided transfers (OpenSHMEM's iput/iget, and indexed
// gather/scatter): the elements of one rank's memory at a stride from a
// global_ptr, or at a list of offsets from it, to or from a local array.
// One future per call; the operations it posts complete together (a flush
// of the peer's endpoint), so a put's future means the bytes are at the
// target. src, dst and offsets must stay valid until the future is done.
//
// How they travel: the elements form runs, adjacent remotely and locally,
// and each run is one put or get. A get whose elements lie densely in
// their span instead fetches the span once into a buffer and picks them
// out (bench/rma_noncontiguous measured where that wins). A put of runs
// to a rank reached over the network instead packs them into messages
// that the target copies out (its progress serves them; the future is
// their answers), where bench/rma_noncontiguous measured that faster; a
// put never writes a span (the gaps are other ranks').
#pragma once

#include <dsm/rma.hpp>
#include <dsm/runtime/reply_future.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace dsm {

namespace detail {

// Element i of a transfer is remote(i) elements from the global_ptr and
// local(i) elements from the local array.
struct strided_pattern {
  std::size_t count, remote_stride, local_stride;
  std::size_t remote(std::size_t i) const noexcept { return i * remote_stride; }
  std::size_t local(std::size_t i) const noexcept { return i * local_stride; }
};
struct indexed_pattern {
  std::span<const std::size_t> offsets;
  std::size_t count;
  std::size_t remote(std::size_t i) const noexcept { return offsets[i]; }
  std::size_t local(std::size_t i) const noexcept { return i; }
};

// How many elements from the global_ptr the pattern reaches (its highest
// remote element + 1), refusing strides whose span overflows.
template <class T>
std::size_t remote_extent(const strided_pattern& p, const char* operation) {
  if (p.remote_stride == 0 || p.local_stride == 0)
    throw error(errc::invalid_argument, fmt::format("{}: a stride of 0 (strides count elements of {}, from 1)", operation,
                                                    type_name<T>()));
  if (p.count == 0) return 0;
  if (p.count - 1 > (std::numeric_limits<std::size_t>::max() - 1) / p.remote_stride)
    throw error(errc::invalid_argument, fmt::format("{}: {} elements of {} at a stride of {} overflow a 64-bit size",
                                                    operation, p.count, type_name<T>(), p.remote_stride));
  return (p.count - 1) * p.remote_stride + 1;
}
template <class T>
std::size_t remote_extent(const indexed_pattern& p, const char* operation) {
  if (p.count == 0) return 0;
  const std::size_t highest = *std::max_element(p.offsets.begin(), p.offsets.end());
  if (highest == std::numeric_limits<std::size_t>::max())
    throw error(errc::invalid_argument, fmt::format("{}: offset {} overflows a 64-bit size", operation, highest));
  return highest + 1;
}

// Calls run(remote_first, local_first, elements) for each run of
// elements adjacent both remotely and locally, in order.
template <class Pattern, class Run>
std::size_t for_each_run(const Pattern& p, Run&& run) {
  std::size_t runs = 0;
  for (std::size_t i = 0; i < p.count;) {
    std::size_t j = i + 1;
    while (j < p.count && p.remote(j) == p.remote(j - 1) + 1 && p.local(j) == p.local(j - 1) + 1) ++j;
    run(p.remote(i), p.local(i), j - i);
    ++runs;
    i = j;
  }
  return runs;
}
template <class Pattern>
std::size_t count_runs(const Pattern& p) {
  if constexpr (std::is_same_v<Pattern, strided_pattern>)  // no walk: adjacent only if both strides are 1
    return p.remote_stride == 1 && p.local_stride == 1 ? std::size_t{p.count > 0} : p.count;
  else
    return for_each_run(p, [](std::size_t, std::size_t, std::size_t) {});
}

// A get fetches its whole span, instead of one get per run, when that is
// at most this many bytes per run and at most covering_limit_bytes in all
// (the buffer it needs). bench/rma_noncontiguous, 512 runs of 8 B: over
// shared memory a run costs 14 ns and fetching the span wins up to 256 B a
// run (2.7x faster), loses at 512 (1.13x slower); over TCP a run costs
// 8 us and the span wins up to 4 KiB a run (2.0x), ties or loses at 8 KiB.
inline constexpr std::uint64_t covering_bytes_per_run_shared_memory = 256;
inline constexpr std::uint64_t covering_bytes_per_run_network = 4096;
inline constexpr std::uint64_t covering_limit_bytes = std::uint64_t{16} << 20;

enum class get_strategy { automatic, runs, covering };

inline bool covers(std::uint64_t span_bytes, std::size_t runs, bool shared_memory) {
  const std::uint64_t per_run = shared_memory ? covering_bytes_per_run_shared_memory : covering_bytes_per_run_network;
  return runs > 1 && span_bytes <= covering_limit_bytes && span_bytes / runs <= per_run;
}

// The buffer a covering get lands in. Freed once its elements are picked
// out; a get that never completed (timed out, the job failing) leaves it
// to UCX, which may still write into it.
struct landing_buffer {
  std::byte* bytes;
  bool landed = false;
  explicit landing_buffer(std::uint64_t n) : bytes(new std::byte[n]) {}
  landing_buffer(landing_buffer&& o) noexcept : bytes(std::exchange(o.bytes, nullptr)), landed(o.landed) {}
  landing_buffer& operator=(landing_buffer&&) = delete;
  ~landing_buffer() {
    if (landed) delete[] bytes;
  }
};

// A put of runs to a rank reached over the network packs them into
// messages of at most packed_message_bytes, each copied out by the target
// and answered. bench/rma_noncontiguous and run_rma.sh, over TCP: from 2
// runs a packed put beat one put per run (2 runs of 8 B: 17 us against
// 37; 512 runs of 8 B: 23 us against 4.0 ms); timed by hand on larger
// elements (docs/guide/runtime.md), every message of at most 64 KiB won
// (8 runs of 8 KiB: 39 us against 176) and larger messages were erratic
// (96 and 160 KiB 2.6-2.7x slower than one put per run). Over shared memory a
// run's put costs less than a message's handling.
inline constexpr std::size_t packed_put_min_runs = 2;
inline constexpr std::size_t packed_message_bytes = std::size_t{64} << 10;

enum class put_strategy { automatic, runs, packed };

inline bool packs(std::size_t runs, std::uint64_t largest_run_bytes, bool shared_memory) {
  return !shared_memory && runs >= packed_put_min_runs && largest_run_bytes + packed_run_bytes <= packed_message_bytes;
}

// How many runs a pattern has, and the bytes of its longest.
template <class T, class Pattern>
std::pair<std::size_t, std::uint64_t> run_extent(const Pattern& p) {
  if constexpr (std::is_same_v<Pattern, strided_pattern>) {
    const bool one_run = p.remote_stride == 1 && p.local_stride == 1;
    return {count_runs(p), (one_run ? p.count : std::size_t{1}) * sizeof(T)};
  } else {
    std::size_t runs = 0, longest = 0;
    for_each_run(p, [&](std::size_t, std::size_t, std::size_t n) { ++runs, longest = std::max(longest, n); });
    return {runs, std::uint64_t{longest} * sizeof(T)};
  }
}

// Messages of runs (byte offset from the segment's start, bytes), then
// their bytes in order (detail/packed_runs.hpp), each at most
// packed_message_bytes unless one run alone is longer; done when every
// message is answered.
template <class T, class Pattern>
future<> put_packed(runtime_state& r, const T* src, global_ptr<T> dst, const Pattern& p, const char* operation) {
  const std::uint32_t target = dst.home_rank();
  std::vector<future<>> answers;
  std::vector<std::byte> table, data;
  const auto send = [&] {
    const std::uint64_t runs = table.size() / packed_run_bytes;
    table.insert(table.end(), data.begin(), data.end());
    const std::uint64_t id = r.rpc().expect_reply(target, true);
    try {
      r.post_packed_put(target, id, dst.segment(), dst.generation(), runs, table);
    } catch (...) {
      r.rpc().forget(id);
      throw;
    }
    answers.push_back(reply_future<void>(r, id, static_cast<int>(target),
                                         fmt::format("{} to rank {} ({} runs packed)", operation, target, runs)));
    table.clear();
    data.clear();
  };
  for_each_run(p, [&](std::size_t remote, std::size_t local, std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (!table.empty() && table.size() + data.size() + packed_run_bytes + bytes > packed_message_bytes) send();
    const packed_run run{dst.byte_offset() + remote * sizeof(T), bytes};
    const auto* run_at = reinterpret_cast<const std::byte*>(&run);
    table.insert(table.end(), run_at, run_at + packed_run_bytes);
    const auto* from = reinterpret_cast<const std::byte*>(src + local);
    data.insert(data.end(), from, from + bytes);
  });
  if (!table.empty()) send();
  if (answers.size() == 1) return std::move(answers.front());
  return when_all(std::move(answers));
}

template <class T, class Pattern>
future<> put_pattern(const T* src, global_ptr<T> dst, const Pattern& p, const char* operation,
                     put_strategy strategy = put_strategy::automatic) {
  const std::size_t extent = remote_extent<T>(p, operation);
  const std::uint64_t span_bytes = element_bytes<T>(extent, operation);
  if (p.count == 0) return {};
  return one_sided_span(
      direction::put, dst, span_bytes, std::uint64_t{p.count} * sizeof(T), operation,
      [&](std::byte* at) {
        for_each_run(p, [&](std::size_t remote, std::size_t local, std::size_t n) {
          std::memmove(at + remote * sizeof(T), src + local, n * sizeof(T));
        });
        return future<>{};
      },
      [&](runtime_state& r, const transport::remote_address& to) -> future<> {
        if (strategy == put_strategy::packed) return put_packed(r, src, dst, p, operation);
        if (strategy == put_strategy::automatic) {
          const auto [runs, longest] = run_extent<T>(p);
          if (packs(runs, longest, r.shares_memory_with(static_cast<std::uint32_t>(to.rank))))
            return put_packed(r, src, dst, p, operation);
        }
        return transport::post_then_flush(r.worker(), r.endpoints(), to.rank, operation,
                                          [&](ucp_ep_h ep, ucp_request_param_t& param, auto&& issued) {
                                            for_each_run(p, [&](std::size_t remote, std::size_t local, std::size_t n) {
                                              issued(ucp_put_nbx(ep, src + local, n * sizeof(T),
                                                                 to.address + remote * sizeof(T), to.rkey, &param));
                                            });
                                          });
      });
}

template <class T, class Pattern>
future<> get_pattern(global_ptr<T> src, std::remove_const_t<T>* out, const Pattern& p, const char* operation,
                     get_strategy strategy = get_strategy::automatic) {
  using value_type = std::remove_const_t<T>;
  const std::size_t extent = remote_extent<value_type>(p, operation);
  const std::uint64_t span_bytes = element_bytes<value_type>(extent, operation);
  if (p.count == 0) return {};
  return one_sided_span(
      direction::get, src, span_bytes, std::uint64_t{p.count} * sizeof(T), operation,
      [&](const std::byte* at) {
        for_each_run(p, [&](std::size_t remote, std::size_t local, std::size_t n) {
          std::memmove(out + local, at + remote * sizeof(T), n * sizeof(T));
        });
        return future<>{};
      },
      [&](runtime_state& r, const transport::remote_address& from) -> future<> {
        const bool whole_span = strategy == get_strategy::covering ||
                                (strategy == get_strategy::automatic &&
                                 covers(span_bytes, count_runs(p), r.shares_memory_with(from.rank)));
        if (!whole_span)
          return transport::post_then_flush(r.worker(), r.endpoints(), from.rank, operation,
                                            [&](ucp_ep_h ep, ucp_request_param_t& param, auto&& issued) {
                                              for_each_run(p, [&](std::size_t remote, std::size_t local, std::size_t n) {
                                                issued(ucp_get_nbx(ep, out + local, n * sizeof(T),
                                                                   from.address + remote * sizeof(T), from.rkey, &param));
                                              });
                                            });
        landing_buffer landing{span_bytes};
        future<> fetched = transport::get(r.worker(), r.endpoints(), landing.bytes, span_bytes, from);
        return std::move(fetched).then([landing = std::move(landing), out, p]() mutable {
          for_each_run(p, [&](std::size_t remote, std::size_t local, std::size_t n) {
            std::memcpy(out + local, landing.bytes + remote * sizeof(T), n * sizeof(T));
          });
          landing.landed = true;
        });
      });
}

}  // namespace detail

// n elements: src[i * src_stride] to dst[i * dst_stride] (OpenSHMEM's
// iput). Strides count elements, from 1.
template <global_element T>
future<> rput_strided(const T* src, std::size_t src_stride, global_ptr<T> dst, std::size_t dst_stride, std::size_t n) {
  return detail::put_pattern(src, dst, detail::strided_pattern{n, dst_stride, src_stride}, "rput_strided");
}

// n elements: src[i * src_stride] to dst[i * dst_stride] (iget).
template <class T>
  requires global_element<std::remove_const_t<T>>
future<> rget_strided(global_ptr<T> src, std::size_t src_stride, std::remove_const_t<T>* dst, std::size_t dst_stride,
                      std::size_t n) {
  return detail::get_pattern(src, dst, detail::strided_pattern{n, src_stride, dst_stride}, "rget_strided");
}

// src[i] to dst[offsets[i]], for each i of offsets (a scatter). Offsets
// count elements from dst, in any order; a repeated offset gets one of
// its values, which one unspecified.
template <global_element T>
future<> rput_indexed(const T* src, global_ptr<T> dst, std::span<const std::size_t> offsets) {
  return detail::put_pattern(src, dst, detail::indexed_pattern{offsets, offsets.size()}, "rput_indexed");
}

// src[offsets[i]] to dst[i], for each i of offsets (a gather).
template <class T>
  requires global_element<std::remove_const_t<T>>
future<> rget_indexed(global_ptr<T> src, std::span<const std::size_t> offsets, std::remove_const_t<T>* dst) {
  return detail::get_pattern(src, dst, detail::indexed_pattern{offsets, offsets.size()}, "rget_indexed");
}

}  // namespace dsm
