// Point-to-point synchronisation and remote completion (issue 16.1-2).
// Usage: signal_test CASE
//   handoff   a ring: each rank rput_signals a round's pattern to the next
//             and waits for its own; the data is complete whenever the
//             signal is seen (a signal overtaking its data is caught), with
//             an acknowledgement back before the next round
//   add       every rank adds to every rank's signal; each waits for the sum
//   remote    causality through a third rank (3+ ranks): rank 0 puts x to
//             rank 1 with remote completion, then tells rank 2 with a plain
//             put; rank 2 then gets x from rank 1 and must find it. Rank 1
//             serves its worker only now and then (run with
//             DSM_PROGRESS=poll), so over TCP a put completed only locally
//             is still queued there when rank 2's get arrives
//   array     the hand-off through shared_arrays of every policy that
//             takes writes: each rank writes a slice with the policy's own
//             writes, signals the next rank's flag, waits on its own (after
//             reading its flag and the slice it awaits, so stale copies are
//             cached), then checks every element; acknowledgements travel
//             back the same way. Then signal adds, and misuse
//   errors    misuse is a dsm::error: a peer's word, null, misaligned,
//             data and signal on different ranks, a wait that times out
#include "check.hpp"

#include <chrono>
#include <cstdint>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Every condition, at compile time.
static_assert(dsm::holds(3, dsm::cmp::eq, 3) && !dsm::holds(3, dsm::cmp::eq, 4));
static_assert(dsm::holds(3, dsm::cmp::ne, 4) && !dsm::holds(3, dsm::cmp::ne, 3));
static_assert(dsm::holds(4, dsm::cmp::gt, 3) && !dsm::holds(3, dsm::cmp::gt, 3));
static_assert(dsm::holds(3, dsm::cmp::ge, 3) && !dsm::holds(2, dsm::cmp::ge, 3));
static_assert(dsm::holds(2, dsm::cmp::lt, 3) && !dsm::holds(3, dsm::cmp::lt, 3));
static_assert(dsm::holds(3, dsm::cmp::le, 3) && !dsm::holds(4, dsm::cmp::le, 3));
static_assert(dsm::to_string(dsm::cmp::ge) == ">=" && dsm::to_string(dsm::cmp::ne) == "!=");

constexpr std::size_t data_elements = 4096;  // 32 KiB: past UCX's short messages over TCP
constexpr std::uint64_t rounds = 200;

std::uint64_t pattern(int from, std::uint64_t round, std::size_t i) {
  return (static_cast<std::uint64_t>(from) << 48) ^ (round << 20) ^ i;
}

void handoff(dsm::signal_op op) {
  const int me = dsm::rank(), n = dsm::ranks();
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  auto data = dsm::allocate_collective<std::uint64_t>(data_elements);
  auto signal = dsm::allocate_collective<std::uint64_t>(1);
  auto ack = dsm::allocate_collective<std::uint64_t>(1);
  std::vector<std::uint64_t> out(data_elements);
  std::uint64_t stale = 0;
  for (std::uint64_t round = 1; round <= rounds; ++round) {
    for (std::size_t i = 0; i < data_elements; ++i) out[i] = pattern(me, round, i);
    // The next rank has checked the previous round: its buffer is free.
    if (round > 1) dsm::wait_until(ack[me], dsm::cmp::ge, round - 1);
    const std::uint64_t before =
        dsm::rput_signal(out.data(), data_elements, data[next], signal[next], op == dsm::signal_op::set ? round : 1, op)
            .wait();
    CHECK_EQ(before, round - 1);  // set: the previous round's value; add: the count so far
    dsm::wait_until(signal[me], dsm::cmp::ge, round);
    const std::uint64_t* got = data[me].local();
    for (std::size_t i = 0; i < data_elements; ++i) stale += got[i] != pattern(prev, round, i);
    (void)dsm::atomic_fetch_add(ack[prev], std::uint64_t{1}).wait();
  }
  CHECK_EQ(stale, 0u);
  dsm::barrier();
  dsm::deallocate(data[me]);
  dsm::deallocate(signal[me]);
  dsm::deallocate(ack[me]);
}

void add() {
  const int me = dsm::rank(), n = dsm::ranks();
  auto signal = dsm::allocate_collective<std::uint64_t>(1);
  auto data = dsm::allocate_collective<std::uint64_t>(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    const std::uint64_t mine = 1000 + static_cast<std::uint64_t>(me);
    // Each rank's slot of every rank's data, then one added to the count.
    (void)dsm::rput_signal(&mine, 1, data[r] + me, signal[r], 1, dsm::signal_op::add).wait();
  }
  dsm::wait_until(signal[me], dsm::cmp::eq, static_cast<std::uint64_t>(n));
  for (int r = 0; r < n; ++r) CHECK_EQ(data[me].local()[r], 1000u + static_cast<std::uint64_t>(r));
  CHECK(dsm::test(signal[me], dsm::cmp::eq, static_cast<std::uint64_t>(n)));
  CHECK(!dsm::test(signal[me], dsm::cmp::gt, static_cast<std::uint64_t>(n)));
  dsm::barrier();
  dsm::deallocate(signal[me]);
  dsm::deallocate(data[me]);
}

void remote() {
  const int me = dsm::rank();
  auto x = dsm::allocate_collective<std::uint64_t>(data_elements);
  auto flag = dsm::allocate_collective<std::uint64_t>(1);
  std::vector<std::uint64_t> out(data_elements), in(data_elements);
  std::uint64_t stale = 0;
  for (std::uint64_t round = 1; round <= rounds; ++round) {
    if (me == 0) {
      for (std::size_t i = 0; i < data_elements; ++i) out[i] = pattern(0, round, i);
      dsm::rput(out.data(), data_elements, x[1], dsm::remote_cx).wait();  // at rank 1 now
      dsm::rput(round, flag[2]).wait();  // only locally complete: rank 2 may see it at once
      dsm::wait_until(flag[0], dsm::cmp::ge, round);  // rank 2 has checked
    } else if (me == 2) {
      dsm::wait_until(flag[2], dsm::cmp::ge, round);
      dsm::rget(x[1], data_elements, in.data()).wait();
      for (std::size_t i = 0; i < data_elements; ++i) stale += in[i] != pattern(0, round, i);
      dsm::rput(round, flag[0], dsm::remote_cx).wait();
    } else if (me == 1) {
      while (!dsm::test(flag[1], dsm::cmp::ge, round)) std::this_thread::sleep_for(2ms);
    }
    if (me == 0) dsm::rput(round, flag[1], dsm::remote_cx).wait();  // rank 1 may move on
  }
  CHECK_EQ(stale, 0u);
  // The single-value form, to this rank itself and to a peer.
  const auto peer = static_cast<std::size_t>((me + 1) % dsm::ranks());
  dsm::rput(std::uint64_t{77}, x[peer] + 1, dsm::remote_cx).wait();
  dsm::barrier();
  CHECK_EQ(x[static_cast<std::size_t>(me)].local()[1], 77u);
  dsm::barrier();
  dsm::deallocate(x[static_cast<std::size_t>(me)]);
  dsm::deallocate(flag[static_cast<std::size_t>(me)]);
}

// The slice a rank writes in each round of array_handoff: its own under
// producer_consumer (only a home writes), the next rank's elsewhere (so
// caching policies move units and ownership between ranks).
constexpr std::size_t slice_elements = 256;
constexpr std::uint64_t array_rounds = 60;

template <class Policy>
void array_handoff() {
  const int me = dsm::rank(), n = dsm::ranks();
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  const auto slice_of = [&](int writer) {
    return static_cast<std::size_t>(std::is_same_v<Policy, dsm::producer_consumer> ? writer : (writer + 1) % n) *
           slice_elements;
  };
  const auto un = static_cast<std::size_t>(n);
  dsm::shared_array<std::uint64_t, Policy> data(un * slice_elements, "data");
  dsm::shared_array<std::uint64_t, Policy> flags(un, "flags"), acks(un, "acks");  // element k homed on rank k
  std::uint64_t stale = 0, seen = 0;
  for (std::uint64_t round = 1; round <= array_rounds; ++round) {
    if (round > 1) acks.wait_until(static_cast<std::size_t>(me), dsm::cmp::ge, round - 1);
    for (std::size_t k = 0; k < slice_elements; ++k) data[slice_of(me) + k] = pattern(me, round, k);
    flags.signal(static_cast<std::size_t>(next), round);
    // Cached copies of the flag and of the awaited slice, possibly older
    // than this round: the wait must see past the first, the acquire
    // after it must drop the second.
    seen += static_cast<std::uint64_t>(flags[static_cast<std::size_t>(me)]);
    seen += static_cast<std::uint64_t>(data[slice_of(prev)]);
    flags.wait_until(static_cast<std::size_t>(me), dsm::cmp::ge, round);
    for (std::size_t k = 0; k < slice_elements; ++k)
      stale += static_cast<std::uint64_t>(data[slice_of(prev) + k]) != pattern(prev, round, k);
    acks.signal(static_cast<std::size_t>(prev), round);
  }
  CHECK_EQ(stale, 0u);
  (void)seen;
  dsm::barrier();

  // Adds: every rank writes its element, then adds one to rank 0's count.
  dsm::shared_array<std::uint64_t, Policy> values(un, "values"), count(1, "count");
  values[static_cast<std::size_t>(me)] = 1000 + static_cast<std::uint64_t>(me);
  count.signal(0, 1, dsm::signal_op::add);
  if (me == 0) {
    CHECK(!count.test(0, dsm::cmp::gt, static_cast<std::uint64_t>(n)));
    count.wait_until(0, dsm::cmp::eq, static_cast<std::uint64_t>(n));
    CHECK(count.test(0, dsm::cmp::eq, static_cast<std::uint64_t>(n)));
    for (int r = 0; r < n; ++r) CHECK_EQ(static_cast<std::uint64_t>(values[static_cast<std::size_t>(r)]), 1000u + static_cast<std::uint64_t>(r));
  }
  dsm::barrier();

  // Misuse: an index past the end; a wait nobody answers times out naming
  // the array, the element and the value (and fails the job: cleared for
  // the next policy).
  CHECK_ERROR(dsm::errc::out_of_range, flags.wait_until(un, dsm::cmp::eq, 0));
  CHECK_ERROR(dsm::errc::out_of_range, flags.signal(un, 1));
  auto& w = dsm::detail::rt().worker();
  const auto normal = w.timeout();
  w.set_timeout(1s);
  const auto text = CHECK_ERROR(dsm::errc::timeout, flags.wait_until(static_cast<std::size_t>(next), dsm::cmp::gt, array_rounds));
  CHECK(text.find("'flags'[" + std::to_string(next) + "] > " + std::to_string(array_rounds)) != std::string::npos);
  w.set_timeout(normal);
  w.clear_failure();
  dsm::barrier();
}

void errors() {
  const int me = dsm::rank(), n = dsm::ranks();
  auto words = dsm::allocate_collective<std::uint64_t>(2);
  auto small = dsm::allocate_collective<std::uint32_t>(4);
  const auto mine = words[static_cast<std::size_t>(me)];
  const auto other = words[static_cast<std::size_t>((me + 1) % n)];
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::wait_until(dsm::global_ptr<std::uint64_t>{}, dsm::cmp::eq, 0));
  const std::uint64_t v = 5;
  CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::rput_signal(&v, 1, mine, dsm::global_ptr<std::uint64_t>{}, 1));
  if (n > 1) {
    const auto text = CHECK_ERROR(dsm::errc::invalid_argument, dsm::wait_until(other, dsm::cmp::eq, 0));
    CHECK(text.find("waits on its own memory") != std::string::npos);
    CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::rput_signal(&v, 1, mine, other + 1, 1));
  }
  // A word 4 bytes into a 64-bit one: not aligned for an atomic.
  auto odd_address = dsm::detail::address_of(small[static_cast<std::size_t>(me)] + 1);
  const auto odd = dsm::detail::make_global_ptr<std::uint64_t>(odd_address);
  CHECK_ERROR(dsm::errc::invalid_argument, dsm::wait_until(odd, dsm::cmp::eq, 0));
  CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::rput_signal(&v, 1, mine, odd, 1));
  // Nobody signals: the wait times out, naming the word, the condition
  // and the value, and fails the job; this case goes on after it.
  auto& w = dsm::detail::rt().worker();
  const auto normal = w.timeout();
  w.set_timeout(1s);
  const auto text = CHECK_ERROR(dsm::errc::timeout, dsm::wait_until(mine, dsm::cmp::ge, 1));
  CHECK(text.find(">= 1): the value at rank") != std::string::npos && text.find(" is 0") != std::string::npos);
  w.set_timeout(normal);
  w.clear_failure();
  dsm::barrier();
  dsm::deallocate(mine);
  dsm::deallocate(small[static_cast<std::size_t>(me)]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view which = argc > 1 ? argv[1] : "";
  return dsm_test::run(argc, argv, [&] {
    if (which == "handoff") {
      handoff(dsm::signal_op::set);
      handoff(dsm::signal_op::add);
    } else if (which == "add") {
      add();
    } else if (which == "remote" && dsm::ranks() >= 3) {
      remote();
    } else if (which == "array") {
      array_handoff<dsm::direct>();
      array_handoff<dsm::single_writer>();
      array_handoff<dsm::write_shared>();
      array_handoff<dsm::migratory>();
      array_handoff<dsm::producer_consumer>();
    } else if (which == "errors") {
      errors();
    } else {
      CHECK(!"expected handoff, add, array, errors, or remote on 3 or more ranks");
    }
  });
}
