// Put and get through dsm against raw UCP on the same worker, endpoint and
// rkey, in one run: latency (one operation to remote completion) and
// bandwidth (a window of operations, then completion), 8 B to 4 MiB.
// Run on 2 ranks: rank 0 measures against rank 1's memory; CSV on stdout:
//
//   transport,progress,op,metric,bytes,dsm,raw,ratio
//
// put latency is half a ping-pong round trip, as ucx_perftest measures it:
// rank 0 puts to rank 1, which waits for the data and puts back. get
// latency is one blocking get. Latency in microseconds (ratio = dsm / raw: 1.00 is parity, lower is
// better), bandwidth in GB/s (ratio = dsm / raw: higher is better).
//
//   dsmrun --transport shm -n 2 build/bench/rma [--max-bytes N] [--reps N] [--scale F]
#include "raw_ucp.hpp"
#include "timing.hpp"

#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
  std::size_t max_bytes = std::size_t{4} << 20;
  int reps = 5;          // medians over this many timed runs
  double scale = 1.0;    // multiplies the iteration counts
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    if (a == "--max-bytes") o.max_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--reps") o.reps = std::atoi(argv[i + 1]);
    else if (a == "--scale") o.scale = std::strtod(argv[i + 1], nullptr);
    else throw dsm::error(dsm::errc::invalid_argument, fmt::format("rma bench: unknown option {}", a));
  }
  if (o.max_bytes < 8 || o.reps < 1 || !(o.scale > 0)) throw dsm::error(dsm::errc::invalid_argument, "rma bench: bad option value");
  return o;
}

template <class F>
double median_seconds(int reps, F&& run) {
  return dsm_bench::median_ns(reps, run) * 1e-9;
}

using dsm_bench::raw_ucp;
using dsm_bench::transport_name;

// Spins on a word of this rank's memory until a peer has written `value`.
void await_value(const volatile std::uint64_t& word, std::uint64_t value, dsm::transport::worker& w) {
  while (std::atomic_ref<const std::uint64_t>(const_cast<const std::uint64_t&>(word)).load(std::memory_order_acquire) != value)
    w.progress();
}

}  // namespace

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  const options opt = parse(argc, argv);
  if (dsm::ranks() != 2) {
    if (dsm::rank() == 0) fmt::print(stderr, "rma bench: run on 2 ranks (dsmrun -n 2 ...)\n");
    return 2;
  }
  const auto blocks = dsm::allocate_collective<std::uint8_t>(opt.max_bytes * 2 + 64);
  const int me = dsm::rank(), peer = 1 - me;
  auto& state = dsm::detail::rt();
  // The last 8 bytes of each transfer are its sequence number: the
  // receiver knows the whole transfer landed when they change.
  const auto target = blocks[static_cast<std::size_t>(peer)];
  raw_ucp raw{state.worker(), state.endpoints()[static_cast<std::size_t>(peer)],
              state.with_remote(static_cast<std::uint32_t>(peer), target.segment(), target.generation(), 0,
                                opt.max_bytes, "bench", [](const dsm::transport::remote_address& a) { return a; })};
  std::uint8_t* mine = blocks[static_cast<std::size_t>(me)].local();
  std::vector<std::uint8_t> buffer(opt.max_bytes, 0x5a);
  const std::string tls = transport_name(), progress(dsm::transport::to_string(rt.progress()));
  if (me == 0) fmt::print("transport,progress,op,metric,bytes,dsm,raw,ratio\n");
  auto row = [&](const char* op, const char* metric, std::size_t bytes, double d, double r, double ratio) {
    if (me != 0) return;
    fmt::print("{},{},{},{},{},{:.4f},{:.4f},{:.3f}\n", tls, progress, op, metric, bytes, d, r, ratio);
    std::fflush(stdout);
  };
  std::uint64_t sequence = 0;
  for (std::size_t bytes = 8; bytes <= opt.max_bytes; bytes *= 4) {
    // Fewer iterations for larger transfers: each size takes similar time.
    const int lat_iters = std::max(4, static_cast<int>(opt.scale * std::min(2000.0, 4e6 / static_cast<double>(bytes))));
    const int window = std::max(4, static_cast<int>(opt.scale * std::min(256.0, 64e6 / static_cast<double>(bytes))));
    const std::size_t tail = bytes - sizeof(std::uint64_t);
    auto& tail_word = *reinterpret_cast<volatile std::uint64_t*>(mine + tail);

    // Ping-pong through dsm, then through raw UCP; both ranks take part.
    auto ping_pong = [&](auto&& put_and_complete) {
      return median_seconds(opt.reps, [&] {
        for (int i = 0; i < lat_iters; ++i) {
          const std::uint64_t seq = ++sequence;
          std::memcpy(buffer.data() + tail, &seq, sizeof seq);
          if (me == 0) {
            put_and_complete(bytes);
            await_value(tail_word, seq, state.worker());
          } else {
            await_value(tail_word, seq, state.worker());
            put_and_complete(bytes);
          }
        }
      }) / 2;
    };
    dsm::barrier();
    const double put_dsm = ping_pong([&](std::size_t n) { dsm::rput(buffer.data(), n, target).wait(); });
    dsm::barrier();
    const double put_raw = ping_pong([&](std::size_t n) { raw.wait(raw.put(buffer.data(), n)); });
    dsm::barrier();
    row("put", "latency_us", bytes, put_dsm / lat_iters * 1e6, put_raw / lat_iters * 1e6, put_dsm / put_raw);

    if (me == 0) {
      const double get_dsm = median_seconds(opt.reps, [&] {
        for (int i = 0; i < lat_iters; ++i) dsm::rget(target, bytes, buffer.data()).wait();
      });
      const double get_raw = median_seconds(opt.reps, [&] {
        for (int i = 0; i < lat_iters; ++i) raw.wait(raw.get(buffer.data(), bytes));
      });
      row("get", "latency_us", bytes, get_dsm / lat_iters * 1e6, get_raw / lat_iters * 1e6, get_dsm / get_raw);

      std::vector<dsm::future<>> pending;
      pending.reserve(static_cast<std::size_t>(window));
      std::vector<ucs_status_ptr_t> reqs;
      reqs.reserve(static_cast<std::size_t>(window));
      const double moved = static_cast<double>(bytes) * window;
      const double bw_put_dsm = median_seconds(opt.reps, [&] {
        for (int i = 0; i < window; ++i) pending.push_back(dsm::rput(buffer.data(), bytes, target));
        for (auto& f : pending) f.wait();
        pending.clear();
        dsm::fence();
      });
      const double bw_put_raw = median_seconds(opt.reps, [&] {
        for (int i = 0; i < window; ++i) reqs.push_back(raw.put(buffer.data(), bytes));
        for (auto* r : reqs) raw.wait(r);
        reqs.clear();
        raw.flush();
      });
      row("put", "bandwidth_GBps", bytes, moved / bw_put_dsm / 1e9, moved / bw_put_raw / 1e9, bw_put_raw / bw_put_dsm);

      const double bw_get_dsm = median_seconds(opt.reps, [&] {
        for (int i = 0; i < window; ++i) pending.push_back(dsm::rget(target, bytes, buffer.data()));
        for (auto& f : pending) f.wait();
        pending.clear();
      });
      const double bw_get_raw = median_seconds(opt.reps, [&] {
        for (int i = 0; i < window; ++i) reqs.push_back(raw.get(buffer.data(), bytes));
        for (auto* r : reqs) raw.wait(r);
        reqs.clear();
      });
      row("get", "bandwidth_GBps", bytes, moved / bw_get_dsm / 1e9, moved / bw_get_raw / 1e9, bw_get_raw / bw_get_dsm);
    }
    dsm::barrier();
  }
  return 0;
}
