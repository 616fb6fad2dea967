// dsm::error: the one exception type of the library. Every failure, from a
// bad argument to a dead peer, is reported as one, naming the rank it was
// raised on and the object and cause in its message.
#pragma once

#include <dsm/detail/calling_rank.hpp>

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace dsm {

enum class errc {
  invalid_argument,     // a bad value handed to an API (null range, bad enum, ...)
  out_of_range,         // an index or offset outside its object
  mixed_objects,        // arithmetic or comparison across units or segments
  stale_pointer,        // a global_ptr into freed (or reallocated) memory
  read_only_violation,  // a write to a published read_only object
  contract_violation,   // an access a policy's contract forbids (a plain write to a reduction array)
  data_race,            // two ranks wrote the same bytes in one interval
  layout_mismatch,      // a type laid out differently on two ranks
  transport,            // UCX reported a failure
  bootstrap,            // launching or joining the job failed
  out_of_memory,        // an allocation larger than what this machine can hold now
  peer_failure,         // another rank died or stopped answering
  timeout,              // a wait exceeded DSM_TIMEOUT
  protocol,             // a malformed or unexpected message was rejected
  collective_mismatch,  // ranks entered different collectives at the same point
  internal,             // a broken invariant inside dsm
  rpc_exception,        // the function an RPC ran threw something other than a dsm::error
};

constexpr std::string_view to_string(errc c) noexcept {
  switch (c) {
    case errc::invalid_argument: return "invalid argument";
    case errc::out_of_range: return "out of range";
    case errc::mixed_objects: return "mixed objects";
    case errc::stale_pointer: return "stale pointer";
    case errc::read_only_violation: return "read-only violation";
    case errc::contract_violation: return "contract violation";
    case errc::data_race: return "data race";
    case errc::layout_mismatch: return "layout mismatch";
    case errc::transport: return "transport";
    case errc::bootstrap: return "bootstrap";
    case errc::out_of_memory: return "out of memory";
    case errc::peer_failure: return "peer failure";
    case errc::timeout: return "timeout";
    case errc::protocol: return "protocol";
    case errc::collective_mismatch: return "collective mismatch";
    case errc::internal: return "internal";
    case errc::rpc_exception: return "rpc exception";
  }
  return "unknown";
}

class error : public std::runtime_error {
 public:
  // `rank` defaults to the calling process's rank (detail::no_rank before
  // the runtime has bootstrapped).
  error(errc category, std::string message, int rank = detail::calling_rank())
      : std::runtime_error(compose(category, rank, message)),
        category_(category),
        rank_(rank),
        message_(std::move(message)) {}

  errc category() const noexcept { return category_; }
  int rank() const noexcept { return rank_; }
  // The cause alone, without the "dsm: rank N: category:" prefix of what().
  const std::string& message() const noexcept { return message_; }

 private:
  static std::string compose(errc category, int rank, std::string_view message) {
    if (rank == detail::no_rank) return fmt::format("dsm: {}: {}", to_string(category), message);
    return fmt::format("dsm: rank {}: {}: {}", rank, to_string(category), message);
  }

  errc category_;
  int rank_;
  std::string message_;
};

}  // namespace dsm
