// Joining the job: learn this process's rank, the number of ranks, and
// every rank's worker address. Three ways, chosen from the environment:
//   dsmrun   DSM_RENDEZVOUS names the launcher's socket (with DSM_TOKEN,
//            DSM_RANK, DSM_RANKS)
//   PMIx     PMIX_RANK is set (mpirun, srun)
//   alone    neither: a one-rank job
#pragma once

#include <dsm/detail/rendezvous.hpp>
#include <dsm/error.hpp>
#include <dsm/transport/clock.hpp>

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <dsm/config.hpp>
#if DSM_HAVE_PMIX
#include <dsm/runtime/pmix_bootstrap.hpp>
#endif

namespace dsm::detail {

struct membership {
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
  std::vector<std::vector<std::byte>> addresses;  // indexed by rank
  std::string method;
  int rendezvous_fd = -1;  // kept open for the job's life: the launcher sees us go
};

inline std::uint32_t env_number(const char* name, std::uint32_t limit) {
  const char* text = std::getenv(name);
  if (text == nullptr) throw error(errc::bootstrap, fmt::format("{} is not set; start the program with dsmrun", name));
  char* end = nullptr;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || v >= limit)
    throw error(errc::bootstrap, fmt::format("{}='{}' is not a number below {}", name, text, limit));
  return static_cast<std::uint32_t>(v);
}

inline membership join_through_dsmrun(const char* socket_path, std::span<const std::byte> address,
                                      std::chrono::duration<double> timeout) {
  namespace rv = rendezvous;
  membership m;
  m.method = "dsmrun";
  m.ranks = env_number(rv::env_ranks, rv::max_ranks) ;
  if (m.ranks == 0) throw error(errc::bootstrap, "DSM_RANKS=0");
  m.rank = env_number(rv::env_rank, m.ranks);
  const char* token = std::getenv(rv::env_token);
  if (token == nullptr) throw error(errc::bootstrap, "DSM_TOKEN is not set; start the program with dsmrun");

  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (std::strlen(socket_path) >= sizeof sa.sun_path)
    throw error(errc::bootstrap, fmt::format("rendezvous socket path too long: {}", socket_path));
  std::strcpy(sa.sun_path, socket_path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw error(errc::bootstrap, fmt::format("socket: {}", std::strerror(errno)));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int e = errno;
    ::close(fd);
    throw error(errc::bootstrap, fmt::format("connecting to dsmrun at {}: {}", socket_path, std::strerror(e)));
  }
  try {
    rv::channel ch{fd, transport::time_after(timeout), errc::bootstrap};
    std::vector<std::byte> hello;
    rv::append_u32(hello, rv::hello_magic);
    rv::append_u32(hello, rv::protocol_version);
    rv::append_u32(hello, m.rank);
    rv::append_blob(hello, rv::as_bytes(token));
    rv::append_blob(hello, address);
    ch.write_all(hello, "sending hello");
    m.addresses = rv::read_table(ch, m.ranks);
  } catch (const error& e) {
    ::close(fd);
    // The rank is known from DSM_RANK before the runtime is: name it, and
    // say which setting bounds start-up.
    if (e.category() == errc::timeout)
      throw error(errc::timeout,
                  fmt::format("waited {:g} s at start-up for every rank to join through dsmrun ({}; "
                              "DSM_START_TIMEOUT raises the bound)",
                              timeout.count(), e.message()),
                  static_cast<int>(m.rank));
    throw error(e.category(), e.message(), static_cast<int>(m.rank));
  } catch (...) {
    ::close(fd);
    throw;
  }
  m.rendezvous_fd = fd;
  return m;
}

// Undoes what joining set up (after the last message of the job).
inline void leave_job(membership& m) noexcept {
  if (m.rendezvous_fd >= 0) ::close(std::exchange(m.rendezvous_fd, -1));
#if DSM_HAVE_PMIX
  if (m.method == "pmix") pmix_leave();
#endif
}

inline membership join_job(std::span<const std::byte> address, std::chrono::duration<double> timeout) {
  if (const char* socket_path = std::getenv(rendezvous::env_socket))
    return join_through_dsmrun(socket_path, address, timeout);
  if (std::getenv("PMIX_RANK") != nullptr) {
#if DSM_HAVE_PMIX
    auto job = pmix_exchange(address);
    membership m;
    m.method = "pmix";
    m.rank = job.rank;
    m.ranks = job.ranks;
    m.addresses = std::move(job.addresses);
    return m;
#else
    throw error(errc::bootstrap, "PMIX_RANK is set but this build of dsm has no PMIx support (install libpmix-dev)");
#endif
  }
  membership m;
  m.method = "singleton";
  m.addresses.emplace_back(address.begin(), address.end());
  return m;
}

}  // namespace dsm::detail
