// Every UCX status that is not success becomes a dsm::error naming the
// operation, the peer and ucs_status_string.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>
#include <ucs/type/status.h>

#include <string_view>

namespace dsm::transport {

inline constexpr int no_peer = -1;

[[noreturn]] inline void throw_status(ucs_status_t status, std::string_view operation, int peer = no_peer) {
  const errc category = status == UCS_ERR_TIMED_OUT ? errc::timeout
                        : (status == UCS_ERR_UNREACHABLE || status == UCS_ERR_CONNECTION_RESET ||
                           status == UCS_ERR_ENDPOINT_TIMEOUT)
                            ? errc::peer_failure
                            : errc::transport;
  if (peer == no_peer)
    throw error(category, fmt::format("UCX {} failed: {}", operation, ucs_status_string(status)));
  throw error(category, fmt::format("UCX {} to rank {} failed: {}", operation, peer, ucs_status_string(status)));
}

inline void check(ucs_status_t status, std::string_view operation, int peer = no_peer) {
  if (status != UCS_OK) throw_status(status, operation, peer);
}

}  // namespace dsm::transport
