// The raw-UCP side of the transfer benchmarks: the calls dsm makes, on the
// same worker, endpoint and rkey, without dsm around them.
#pragma once

#include <dsm/dsm.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace dsm_bench {

struct raw_ucp {
  dsm::transport::worker& worker;
  ucp_ep_h ep;
  dsm::transport::remote_address at;

  void check(ucs_status_ptr_t req) const {
    if (UCS_PTR_IS_ERR(req)) dsm::transport::throw_status(UCS_PTR_STATUS(req), "raw bench op", at.rank);
  }
  void wait(ucs_status_ptr_t req) {
    if (req == nullptr) return;
    check(req);
    for (;;) {
      const auto g = worker.lock();
      if (ucp_request_check_status(req) != UCS_INPROGRESS) break;
      ucp_worker_progress(worker.handle());
    }
    const auto g = worker.lock();
    ucp_request_free(req);
  }
  // Lets the request complete on its own (a later flush waits for it).
  void release(ucs_status_ptr_t req) {
    if (req == nullptr) return;
    check(req);
    const auto g = worker.lock();
    ucp_request_free(req);
  }
  ucs_status_ptr_t put(const void* src, std::size_t n, std::uint64_t offset = 0) {
    ucp_request_param_t p{};
    const auto g = worker.lock();
    return ucp_put_nbx(ep, src, n, at.address + offset, at.rkey, &p);
  }
  ucs_status_ptr_t get(void* dst, std::size_t n, std::uint64_t offset = 0) {
    ucp_request_param_t p{};
    const auto g = worker.lock();
    return ucp_get_nbx(ep, dst, n, at.address + offset, at.rkey, &p);
  }
  void flush() {
    ucp_request_param_t p{};
    ucs_status_ptr_t req;
    {
      const auto g = worker.lock();
      req = ucp_ep_flush_nbx(ep, &p);
    }
    wait(req);
  }
};

// UCX_TLS with '+' for ',' so that it stays one CSV field.
inline std::string transport_name() {
  const char* tls = std::getenv("UCX_TLS");
  std::string name = tls ? tls : "auto";
  std::replace(name.begin(), name.end(), ',', '+');
  return name;
}

}  // namespace dsm_bench
