// Every failure path of the runtime: stale pointers and out-of-bounds
// offsets are errors at the caller and leave the target intact; malformed
// active messages are rejected and the job goes on.
#include "check.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::uint64_t sum_local(dsm::global_ptr<std::uint64_t> p, std::size_t n) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += p.local()[i];
  return s;
}

// Issue 15.7: sizes beyond the machine are refused before anything is
// mapped, naming the object, the bytes asked and the bytes available.
void too_large_allocations(int me) {
  const auto allocations_before = dsm::detail::rt().stats().allocations;
  const auto contains = [](const std::string& text, const std::string& part) {
    const bool found = text.find(part) != std::string::npos;
    if (!found) fmt::print(stderr, "'{}' lacks '{}'\n", text, part);
    return found;
  };
  {
    const auto text = CHECK_ERROR(dsm::errc::out_of_memory,
                                  (dsm::shared_array<double, dsm::direct>(std::size_t{1'000'000'000'000}, "huge")));
    CHECK(contains(text, "shared_array<double, direct> 'huge'"));
    CHECK(contains(text, "bytes per rank asked"));
    CHECK(contains(text, "can map at most"));
  }
  {
    const auto text = CHECK_ERROR(dsm::errc::out_of_memory,
                                  (dsm::shared_array<double, dsm::single_writer>(std::size_t{1'000'000'000'000}, "huge cached")));
    CHECK(contains(text, "shared_array<double, single_writer> 'huge cached'"));
  }
  // Not collective: beyond physical memory on this rank alone.
  const std::uint64_t physical = dsm::detail::physical_memory_bytes();
  {
    const auto text = CHECK_ERROR(dsm::errc::out_of_memory, (void)dsm::allocate<double>(physical / 8 + 1024));
    CHECK(contains(text, fmt::format("allocate<double>({})", physical / 8 + 1024)));
    CHECK(contains(text, fmt::format("{} bytes asked on rank {}", (physical / 8 + 1024) * 8, me)));
    CHECK(contains(text, "available"));
    CHECK(contains(text, "free /dev/shm"));
    CHECK(contains(text, "available memory"));
  }
  // Under RLIMIT_AS, the room it leaves bounds an allocation (the soft
  // limit only, raised back afterwards).
  rlimit saved{};
  CHECK(::getrlimit(RLIMIT_AS, &saved) == 0);
  if (saved.rlim_cur == RLIM_INFINITY) {
    unsigned long used_pages = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "re")) {
      if (std::fscanf(f, "%lu", &used_pages) != 1) used_pages = 0;
      std::fclose(f);
    }
    rlimit tight = saved;
    tight.rlim_cur = used_pages * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{256} << 20);
    CHECK(::setrlimit(RLIMIT_AS, &tight) == 0);
    const auto text = CHECK_ERROR(dsm::errc::out_of_memory, (void)dsm::allocate<char>(std::size_t{1} << 30));
    CHECK(contains(text, "bounded by the address space RLIMIT_AS leaves"));
    CHECK(::setrlimit(RLIMIT_AS, &saved) == 0);
  }
  CHECK_EQ(dsm::detail::rt().stats().allocations, allocations_before);  // nothing was mapped
  // The job goes on: a small allocation still works.
  auto p = dsm::allocate<double>(16);
  CHECK(!p.is_null());
  dsm::deallocate(p);
  dsm::barrier();
}

void malformed_messages(int me, int n) {
  using dsm::transport::message_header;
  auto& rt = dsm::detail::rt();
  const int victim = 0, sender = n - 1;
  const std::uint64_t before = rt.messages().rejected();
  constexpr int expected = 11;
  dsm::barrier();  // `before` is read everywhere before anything is sent
  // Every rank is now at the same collective; the next one is current.
  const std::uint64_t current = rt.next_collective();
  if (me == sender) {
    auto send = [&](unsigned id, message_header h, std::size_t header_bytes = sizeof(message_header),
                    std::vector<std::byte> payload = {}) {
      rt.messages().send_unchecked(rt.endpoints(), victim, id, {reinterpret_cast<const std::byte*>(&h), header_bytes},
                                   payload);
    };
    const auto ok = [&](std::uint64_t a, std::uint64_t b, std::uint64_t c) {
      return message_header{dsm::transport::message_magic, static_cast<std::uint32_t>(me), {a, b, c}};
    };
    send(dsm::detail::msg_collective, ok(0, 0, 0), 16);                              // truncated header
    send(dsm::detail::msg_collective, {0xdeadbeef, 0, {0, 0, 0}});                   // bad magic
    send(dsm::detail::msg_collective, {dsm::transport::message_magic, static_cast<std::uint32_t>(n), {0, 0, 0}});  // no such rank
    send(dsm::detail::msg_collective, ok(1ull << 40, 0, 0));                         // far-future collective
    send(dsm::detail::msg_collective, ok(current, 64, 0));                           // impossible round
    send(dsm::detail::msg_rkey_reply, ok(999999, 0, 0), sizeof(message_header), std::vector<std::byte>(64));  // unsolicited
    send(dsm::detail::msg_segment_freed, ok(1, 0, 0));                               // generation 0
    send(dsm::detail::msg_free_ack, ok(3, 1, 0));                                    // no free pending
    send(dsm::detail::msg_rkey_request, ok(1, 1, 1), sizeof(message_header), std::vector<std::byte>(8));  // payload where none belongs
    send(dsm::detail::msg_leaving, ok(7, 0, 0));                                     // no such way of leaving
    send(dsm::detail::msg_leaving, ok(dsm::detail::leaving_failed, 0, 0), sizeof(message_header),
         std::vector<std::byte>(dsm::detail::rendezvous::max_notice_text_bytes + 1));  // a reason past the limit
    rt.endpoints().mark_written(static_cast<std::size_t>(victim));
  }
  if (me == victim) {
    rt.worker().wait_until([&] { return rt.messages().rejected() - before >= expected; }, std::chrono::seconds(30),
                           [] { return std::string("the malformed messages to arrive"); });
    CHECK_EQ(rt.messages().rejected() - before, std::uint64_t(expected));
    CHECK(rt.messages().last_rejection().find("leaving notice of kind 1 with 4097 bytes") != std::string::npos);
    CHECK_EQ(rt.next_collective(), current);  // none of it was taken for a collective
    CHECK(!rt.job_failed());                   // nor as a peer's leaving
  }
  // The job is unharmed.
  dsm::barrier();
  CHECK_EQ(dsm::allreduce(1), n);
}

// The default thread model (issue 16.6): another thread's call is a clear
// error, naming the rule, and leaves the rank's own thread working.
void second_thread_refused(int me, dsm::global_ptr<std::uint64_t> target) {
  dsm::shared_array<int, dsm::direct> a(8, "threaded");
  std::thread other([&] {
    const auto msg = CHECK_ERROR(dsm::errc::contract_violation, dsm::barrier());
    CHECK(msg.find("a thread other than the one that constructed dsm::runtime") != std::string::npos);
    CHECK_ERROR(dsm::errc::contract_violation, dsm::rput(std::uint64_t{7}, target).wait());
    CHECK_ERROR(dsm::errc::contract_violation, (void)dsm::rank());
    CHECK_ERROR(dsm::errc::contract_violation, a[0] = 1);
    CHECK_ERROR(dsm::errc::contract_violation, (void)dsm::allreduce(1));
  });
  other.join();
  a[static_cast<std::size_t>(me) % a.size()] = me;
  dsm::barrier();
  CHECK_EQ(dsm::allreduce(1), dsm::ranks());
}

}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();
    const int home = 0, user = n - 1;
    constexpr std::size_t elems = 16;

    // Out of bounds: refused at the caller, the target's bytes untouched.
    dsm::global_ptr<std::uint64_t> a;
    if (me == home) {
      a = dsm::allocate<std::uint64_t>(elems);
      for (std::size_t i = 0; i < elems; ++i) a.local()[i] = 7;
    }
    a = dsm::broadcast(a, home);
    dsm::barrier();
    if (me == user) {
      const std::uint64_t v = 1;
      const auto msg = CHECK_ERROR(dsm::errc::out_of_range, dsm::rput(v, a + elems).wait());
      CHECK(msg.find("outside the segment of 128 bytes") != std::string::npos);
      std::vector<std::uint64_t> two(2, 9);
      CHECK_ERROR(dsm::errc::out_of_range, dsm::rput(two.data(), 2, a + (elems - 1)).wait());
      CHECK_ERROR(dsm::errc::out_of_range, dsm::rget(a + (elems - 1), 2, two.data()).wait());
      CHECK_ERROR(dsm::errc::out_of_range, dsm::atomic_fetch_add(a + elems, std::uint64_t{1}).wait());
      CHECK_ERROR(dsm::errc::invalid_argument, dsm::rput(v, dsm::global_ptr<std::uint64_t>{}).wait());
      CHECK_EQ(dsm::rget(a + (elems - 1)).wait(), std::uint64_t(7));  // in bounds still works
      if (!a.is_local()) CHECK_ERROR(dsm::errc::invalid_argument, (void)a.local());
      if (!a.is_local()) CHECK_ERROR(dsm::errc::invalid_argument, dsm::deallocate(a));
    }
    dsm::barrier();
    if (me == home) CHECK_EQ(sum_local(a, elems), std::uint64_t(7 * elems));

    // Stale: after the home frees `a` and reuses its slot for `b`, every use
    // of `a` is an error, and `b` is never touched through it.
    dsm::barrier();
    dsm::global_ptr<std::uint64_t> b;
    if (me == home) {
      dsm::deallocate(a);
      CHECK_ERROR(dsm::errc::stale_pointer, dsm::deallocate(a));
      CHECK_ERROR(dsm::errc::stale_pointer, (void)a.local());
      b = dsm::allocate<std::uint64_t>(elems);
      CHECK_EQ(b.segment(), a.segment());  // the slot came back...
      CHECK(b.generation() != a.generation());  // ...with a new generation
      for (std::size_t i = 0; i < elems; ++i) b.local()[i] = 5;
    }
    b = dsm::broadcast(b, home);
    dsm::barrier();
    if (me == user) {
      const auto msg = CHECK_ERROR(dsm::errc::stale_pointer, dsm::rput(std::uint64_t{1}, a).wait());
      CHECK(msg.find("freed") != std::string::npos);
      CHECK_ERROR(dsm::errc::stale_pointer, dsm::rget(a + 3).wait());
      CHECK_ERROR(dsm::errc::stale_pointer, dsm::atomic_fetch_add(a, std::uint64_t{1}).wait());
      CHECK_EQ(dsm::rget(b + 3).wait(), std::uint64_t(5));
    }
    dsm::barrier();
    if (me == home) CHECK_EQ(sum_local(b, elems), std::uint64_t(5 * elems));

    // Element counts whose byte size overflows are refused up front.
    CHECK_ERROR(dsm::errc::invalid_argument, (void)dsm::allocate<std::uint64_t>(SIZE_MAX / 4));
    {
      std::uint64_t sink = 0;
      CHECK_ERROR(dsm::errc::invalid_argument, dsm::rget(b, SIZE_MAX / 4, &sink).wait());
      CHECK_ERROR(dsm::errc::invalid_argument, dsm::rput(&sink, SIZE_MAX / 4, b).wait());
    }

    too_large_allocations(me);
    second_thread_refused(me, b);

    // (Collective allocations of different sizes: collectives_test
    // mismatch-allocation; the job fails, so it cannot be checked here.)

    malformed_messages(me, n);
  });
}
