// Regression tests for lost writes and for messages that must never be
// trusted (argv[1] picks the case; each names the ranks and progress mode
// it needs in tests/ranks/meson.build):
//
//   home-writes      single_writer keeps the home's local() writes when the
//                    unit comes back by write-back (at a barrier or an
//                    unlock, also after the owner's earlier unlocks) or by
//                    recall
//   stray-ack        a recalled unit from a rank never recalled completes
//                    nothing; nor does a diff acknowledgement for another
//                    unit
//   queued-request   a malformed request queued behind a transaction is
//                    refused alone; the honest request behind it is served
//   forged-rkey      a key reply from a rank that was not asked, or claiming
//                    to come from another rank, is refused; the real one is
//                    used
//   timed-out-get    a get that timed out never lands in a later result
//   unwinding        destructors run no collective while an exception unwinds
#include "check.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

auto& rt() { return dsm::detail::rt(); }

namespace wire = dsm::coherence::wire;  // the engine's message kinds and interval stamp

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A collective that is not a barrier: orders the steps of a case without
// dropping any cached copy.
void step() { (void)dsm::allreduce(0); }

// The start of a stall: every rank past a step, and then a broadcast from
// rank 0 in which the others only receive, so a rank about to stall has
// nothing it sent waiting in its queue (over TCP, for its next progress).
void stall_point() {
  step();
  (void)dsm::broadcast(0, 0);
}
// How long the stalled rank sleeps; how long the acting ranks wait after
// stall_point() so that it is surely asleep; how long a forger waits, so
// that what it forges arrives while the honest exchange is in flight.
using namespace std::chrono_literals;
constexpr auto stall_time = 2000ms, settle_time = 500ms, forge_time = 900ms;

// Waits (progressing) until `rejected` grew by `count`; returns the last text.
std::string await_rejections(std::uint64_t before, std::uint64_t count) {
  rt().worker().wait_until([&] { return rt().messages().rejected() >= before + count; }, 30s,
                           [&] { return fmt::format("{} rejection(s)", count); });
  return rt().messages().last_rejection();
}

// An array of one 64 B unit (8 elements) per rank, homed in rank order.
template <class Policy>
struct unit_per_rank : dsm::shared_array<std::uint64_t, Policy> {
  explicit unit_per_rank(const char* name)
      : dsm::shared_array<std::uint64_t, Policy>(8 * static_cast<std::size_t>(dsm::ranks()), dsm::block,
                                                 dsm::unit_size{64}, name) {}
};

// A barrier (the arrays' interval is 1 after it), then the rejection count
// the case's expectations start from.
std::uint64_t first_interval() {
  dsm::barrier();
  return rt().messages().rejected();
}

// The honest exchange (`ended`, measured by the rank that waited for it)
// ended only after the stalled rank woke (`woke`, measured by that rank);
// the other ranks pass 0.
void check_after_wake(double ended, double woke, const char* exchange) {
  const double ended_at = dsm::allreduce(ended, dsm::max{}), woke_at = dsm::allreduce(woke, dsm::max{});
  dsm_test::report(ended_at >= woke_at, exchange, __FILE__, __LINE__,
                   fmt::format("ended {:.3f} s before the stalled rank woke", woke_at - ended_at));
}

// Sleeps without calling into dsm: with DSM_PROGRESS=poll nothing of this
// rank is served meanwhile.
void stall(std::chrono::duration<double> d) { std::this_thread::sleep_for(d); }
// The same, for a rank that only waits a moment before it acts.
void pause(std::chrono::duration<double> d) { std::this_thread::sleep_for(d); }

// Issue 12.1: rank 1 takes unit 0 (elements 0..127, homed on rank 0) by
// writing a[1]; then the home writes local()[0]; with 3+ ranks rank 2 then
// writes a[2] (a recall: ownership moves on) and reads the unit it was
// granted. Every element had one writer: all of them survive the barrier.
void home_writes() {
  const int me = dsm::rank(), p = dsm::ranks();
  const std::size_t per_rank = 128;  // 1 KiB of int64: one unit per rank
  for (int round = 0; round < 3; ++round) {
    dsm::shared_array<std::int64_t, dsm::single_writer> a(per_rank * static_cast<std::size_t>(p), dsm::block, "homed");
    if (me == 1) a[1] = 111;
    step();
    if (me == 0) a.local()[0] = 42;
    step();
    if (p >= 3) {
      if (me == 2) {
        a[2] = 222;
        CHECK_EQ(a[0].get(), 42);  // the recall brought rank 1's bytes only
        CHECK_EQ(a[1].get(), 111);
      }
      step();
      if (me == 0) CHECK_EQ(a.local()[0], 42);  // before any barrier
      if (me == 0) a.local()[3] = 333;          // while rank 2 owns the unit
      step();
    }
    if (round == 1) {
      // The same through a lock instead of collectives: the owner's
      // changes go home at its unlock, and only they.
      dsm::lock l;
      if (me == 1) {
        std::scoped_lock g(l);
        a[4] = 444;
      }
      step();
      if (me == 0) a.local()[5] = 555;
      step();
      if (me == 0) {
        std::scoped_lock g(l);
        CHECK_EQ(a[4].get(), 444);
      }
      step();
      // Rank 1 keeps the unit after its unlocks. The home then writes an
      // element rank 1 had changed (after it, under the lock): rank 1's
      // next unlock sends only what changed since its last one.
      if (me == 1) {
        std::scoped_lock g(l);
        a[6] = 666;
      }
      step();
      if (me == 0) {
        std::scoped_lock g(l);
        a.local()[6] = 606;
      }
      step();
      if (me == 1) {
        std::scoped_lock g(l);
        a[7] = 777;
      }
      step();
    }
    dsm::barrier();
    CHECK_EQ(a[0].get(), 42);
    CHECK_EQ(a[1].get(), 111);
    if (p >= 3) {
      CHECK_EQ(a[2].get(), 222);
      CHECK_EQ(a[3].get(), 333);
    }
    if (round == 1) {
      CHECK_EQ(a[4].get(), 444);
      CHECK_EQ(a[5].get(), 555);
      CHECK_EQ(a[6].get(), 606);
      CHECK_EQ(a[7].get(), 777);
    }
    if (me == 0) CHECK_EQ(a.local()[0], 42);
    std::size_t others = 0;
    for (std::size_t i = 8; i < a.size(); ++i) others += a[i] != 0;
    CHECK_EQ(others, 0u);
    const auto sent = dsm::allreduce(a.policy_state().stats().write_back_bytes);
    CHECK(sent <= 6 * sizeof(std::int64_t));  // what the owners changed, not whole units
    dsm::barrier();
  }
}

// Issue 12.4, recalls: rank 1 owns unit 0 and stalls; the home (rank 0)
// writes the unit, which recalls rank 1; rank 2 meanwhile sends a recalled
// unit it was never asked for. The home's write must wait for rank 1.
void stray_recalled() {
  const int me = dsm::rank();
  unit_per_rank<dsm::single_writer> a("recalled");
  const std::uint64_t before = first_interval();
  if (me == 1) a[1] = 7;  // rank 1 owns unit 0
  stall_point();
  double written = 0, woke = 0;
  if (me == 0) {
    pause(settle_time);
    a[0] = 5;  // recalls rank 1, then waits for its changes
    written = now_seconds();
    const auto text = await_rejections(before, 1);
    CHECK(text.find("unexpected recalled unit for unit 0 from rank 2") != std::string::npos);
  } else if (me == 1) {
    stall(stall_time);
    woke = now_seconds();
  } else if (me == 2) {
    pause(forge_time);
    rt().send_to_object(0, a.layout().object_id, 0, wire::stamp(wire::recalled, 1));
  }
  check_after_wake(written, woke, "the write was granted only after rank 1 gave the unit up");
  dsm::barrier();
  CHECK_EQ(a[0].get(), 5u);
  CHECK_EQ(a[1].get(), 7u);
}

// Issue 12.4, diff acknowledgements: rank 1 releases a lock after writing
// a unit of rank 2 (which stalls), so its unlock waits for rank 2 to apply
// the diff; meanwhile rank 0 acknowledges a diff of its own unit that rank
// 1 never sent. The unlock must not end before rank 2 woke.
void stray_diff_ack() {
  const int me = dsm::rank();
  unit_per_rank<dsm::write_shared> a("diffed");
  dsm::lock l;
  const std::uint64_t before = first_interval();
  if (me == 1) {
    l.lock();
    a[16] = 9;  // unit 2, homed on rank 2: copied now, twinned, changed
  }
  stall_point();
  double released = 0, woke = 0;
  if (me == 1) {
    pause(settle_time);
    l.unlock();  // sends the diff and waits for its acknowledgement
    released = now_seconds();
    const auto text = await_rejections(before, 1);
    CHECK(text.find("diff acknowledgement for unit 0 from rank 0") != std::string::npos);
  } else if (me == 2) {
    stall(stall_time);
    woke = now_seconds();
  } else if (me == 0) {
    pause(forge_time);
    const std::vector<std::byte> clean(sizeof(wire::applied_report));  // no conflict
    rt().send_to_object(1, a.layout().object_id, 0, wire::stamp(wire::applied, 1), clean);
  }
  check_after_wake(released, woke, "the unlock waited for rank 2's acknowledgement");
  dsm::barrier();
  CHECK_EQ(a[16].get(), 9u);
}

// Issue 12.6: rank 1 owns unit 0 and stalls; rank 2's write waits for the
// recall; rank 3 sends a malformed write request (with a payload) and then
// an honest one, both queued behind the transaction. Only the malformed one
// is lost.
void queued_request() {
  const int me = dsm::rank();
  unit_per_rank<dsm::single_writer> a("queued");
  const std::uint64_t before = first_interval();
  if (me == 1) a[1] = 11;
  stall_point();
  if (me == 1) stall(stall_time);
  if (me == 2) {
    pause(settle_time);
    a[2] = 22;
  }
  if (me == 3) {
    pause(forge_time);
    const std::vector<std::byte> junk(8);
    rt().send_to_object(0, a.layout().object_id, 0, wire::stamp(wire::write, 1), junk);
    a[3] = 33;  // served, not dropped with the malformed one
  }
  if (me == 0) {
    const auto text = await_rejections(before, 1);
    CHECK(text.find("from rank 3") != std::string::npos);
    CHECK(text.find("with a payload") != std::string::npos);
  }
  dsm::barrier();
  CHECK_EQ(a[1].get(), 11u);
  CHECK_EQ(a[2].get(), 22u);
  CHECK_EQ(a[3].get(), 33u);
}

// Issue 12.5: rank 0 asks rank 1 (stalled) for the key of a segment; rank 2
// answers first, under its own name, claiming to be rank 1, and claiming to
// be rank 0 itself, with a 1 TiB segment. All are refused; the real key
// arrives and works.
void forged_rkey() {
  using dsm::transport::message_header;
  const int me = dsm::rank();
  dsm::global_ptr<std::uint64_t> p;
  if (me == 1) {
    p = dsm::allocate<std::uint64_t>(16);
    for (std::size_t i = 0; i < 16; ++i) p.local()[i] = 1000 + i;
  }
  p = dsm::broadcast(p, 1);
  const std::uint64_t request = dsm::broadcast(rt().next_request_id(), 0);
  const std::uint64_t before = rt().messages().rejected();
  stall_point();
  if (me == 1) stall(stall_time);
  if (me == 2) {
    pause(forge_time);
    std::vector<std::byte> reply(8 + sizeof(dsm::detail::segment_record) + 32);
    const dsm::detail::segment_record rec{0x100000, std::uint64_t{1} << 40, p.segment(), p.generation(), {}};
    std::memcpy(reply.data() + 8, &rec, sizeof rec);
    for (const std::uint32_t claimed : {2u, 1u, 0u}) {  // its own name, the rank asked, the receiver's
      const message_header h{dsm::transport::message_magic, claimed, {request, 0, 0}};
      rt().messages().send_unchecked(rt().endpoints(), 0, dsm::detail::msg_rkey_reply,
                                     {reinterpret_cast<const std::byte*>(&h), sizeof h}, reply);
    }
  }
  if (me == 0) {
    pause(settle_time);
    CHECK_EQ(dsm::rget(p + 3).wait(), 1003u);
    const auto text = await_rejections(before, 3);
    CHECK(rt().messages().rejected() - before == 3);
    CHECK(text.find("from rank 2: a message claiming to come from rank 0 arrived through rank 2's endpoint") !=
          std::string::npos);
  }
  dsm::barrier();
  if (me == 1) dsm::deallocate(p);
}

// Issue 12.2 (tcp: a get needs the target's worker). Rank 1 stops itself;
// rank 0's get times out, a second get is posted, then rank 1 continues and
// answers both: the late reply must not land in the second's result.
void timed_out_get() {
  const int me = dsm::rank();
  dsm::global_ptr<std::uint64_t> p;
  if (me == 1) {
    p = dsm::allocate<std::uint64_t>(16);
    for (std::size_t i = 0; i < 16; ++i) p.local()[i] = 1000 + i;
  }
  p = dsm::broadcast(p, 1);
  const auto pids = dsm::allgather(static_cast<std::int64_t>(::getpid()));
  if (me == 0) CHECK_EQ(dsm::rget(p).wait(), 1000u);  // key fetched
  stall_point();
  if (me == 1) ::raise(SIGSTOP);  // until rank 0 sends SIGCONT
  if (me == 0) {
    pause(settle_time);
    auto& w = rt().worker();
    const auto normal = w.timeout();
    w.set_timeout(1s);
    {
      auto late = dsm::rget(p + 1);
      CHECK_ERROR(dsm::errc::timeout, (void)late.wait());
      CHECK_ERROR(dsm::errc::invalid_argument, (void)late.wait());  // never waited twice
      // A timeout fails the job (later waits fail at once); this case
      // knows rank 1 will answer again and goes on.
      CHECK(w.job_failed());
      CHECK_ERROR(dsm::errc::timeout, dsm::rget(p + 1).wait());
      w.clear_failure();
    }  // nor by its destructor, which hands nothing back to the pool
    CHECK(w.quarantined() >= 1);
    w.set_timeout(normal);
    auto next = dsm::rget(p + 2);
    ::kill(static_cast<pid_t>(pids[1]), SIGCONT);
    CHECK_EQ(next.wait(), 1002u);
    for (std::size_t i = 3; i < 16; ++i) CHECK_EQ(dsm::rget(p + static_cast<std::ptrdiff_t>(i)).wait(), 1000u + i);
    w.wait_until([&] { return w.quarantined() == 0; }, 30s, [] { return std::string("the quarantined get"); });
  }
  dsm::barrier();
  if (me == 1) dsm::deallocate(p);
}

// Issue 12.3: an array and a lock destroyed by an exception take no
// collective step (which would pair with another rank's barrier).
void unwinding() {
  std::uint64_t inside = 0;
  try {
    dsm::shared_array<int, dsm::single_writer> a(100, "unwound");
    dsm::lock l;
    if (!a.local().empty()) a.local()[0] = 1;  // no miss: a peer's array may be gone already
    inside = rt().next_collective();
    throw std::runtime_error("a failure on this rank");
  } catch (const std::runtime_error& e) {
    CHECK_EQ(std::string_view(e.what()), std::string_view("a failure on this rank"));
  }
  CHECK_EQ(rt().next_collective(), inside);
  dsm::barrier();  // the job goes on
  dsm::shared_array<int, dsm::single_writer> b(100, "after");
  b[static_cast<std::size_t>(dsm::rank())] = 1;
  dsm::barrier();
  int sum = 0;
  for (std::size_t i = 0; i < 100; ++i) sum += b[i];
  CHECK_EQ(sum, dsm::ranks());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view which = argc > 1 ? argv[1] : "";
  return dsm_test::run(argc, argv, [&] {
    const int p = dsm::ranks();
    if (which == "home-writes" && p >= 2) home_writes();
    else if (which == "stray-ack" && p >= 3) {
      stray_recalled();
      stray_diff_ack();
    } else if (which == "queued-request" && p >= 4) queued_request();
    else if (which == "forged-rkey" && p >= 3) forged_rkey();
    else if (which == "timed-out-get" && p == 2) timed_out_get();
    else if (which == "unwinding") unwinding();
    else CHECK(!"expected a case and the ranks it needs (see the comment at the top)");
  });
}
