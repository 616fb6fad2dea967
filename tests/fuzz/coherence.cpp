// Fuzz target: every coherence message kind, delivered to live caching
// arrays (single_writer and write_shared) of a one-rank job, as the
// runtime's object handler would. A message is handled or refused with
// errc::protocol; nothing crashes, leaks or grows without bound: every 64
// inputs a barrier runs (replaying the messages stashed for the next
// interval and resetting the directories), which may itself refuse what
// forged messages left open (errc::internal naming the unit), never crash.
#include "input.hpp"

#include <dsm/dsm.hpp>

#include <cstdlib>
#include <memory>

namespace {

struct job {
  dsm::runtime rt;
  dsm::shared_array<std::uint64_t, dsm::single_writer> owned{1024, dsm::block, dsm::unit_size{64}, "owned"};
  dsm::shared_array<std::uint64_t, dsm::write_shared> diffed{1024, dsm::block, dsm::unit_size{256}, "diffed"};
  std::uint64_t barriers = 0, inputs = 0;
};

job& the_job() {
  static auto* j = new job;  // never destroyed: libFuzzer exits without unwinding
  return *j;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("UCX_TLS", "self", 1);
  ::setenv("UCX_MEM_EVENTS", "n", 1);
  ::setenv("DSM_PROGRESS", "poll", 1);
  ::setenv("DSM_TIMEOUT", "5", 1);
  the_job().owned[3] = 3;
  the_job().diffed[5] = 5;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  job& j = the_job();
  dsm_fuzz::input in(data, size);
  const auto which = in.take<std::uint8_t>();
  const std::uint64_t object = which & 1 ? j.owned.layout().object_id : j.diffed.layout().object_id;
  const std::uint64_t kind = in.take<std::uint8_t>() % 12;  // the 8 kinds, and some beyond
  const std::uint64_t unit = in.take<std::uint16_t>() % 40;  // some units past the end
  const auto epoch_shift = in.take<std::uint8_t>() % 4;     // this interval, the next, an old one, far off
  const std::uint64_t epoch = epoch_shift == 0 ? j.barriers
                              : epoch_shift == 1 ? j.barriers + 1
                              : epoch_shift == 2 ? j.barriers - 1
                                                 : in.take<std::uint32_t>();
  const dsm::transport::message_header h{dsm::transport::message_magic, 0, {object, unit, kind | (epoch << 8)}};
  try {
    dsm::detail::rt().deliver_to_object(h, in.rest());
  } catch (const dsm::error& e) {
    if (e.category() != dsm::errc::protocol) std::abort();
  }
  if (++j.inputs % 64 == 0) {
    try {
      dsm::barrier();
      ++j.barriers;
    } catch (const dsm::error&) {
      // Forged messages may leave a transaction open at the barrier: an
      // error naming it, never a crash.
    }
  }
  return 0;
}
