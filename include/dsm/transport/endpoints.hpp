// One endpoint per rank (this rank included, through UCX's self transport),
// and the set of peers written since the last flush, so that a fence
// flushes only those.
#pragma once

#include <dsm/transport/status.hpp>
#include <dsm/transport/worker.hpp>

#include <fmt/format.h>
#include <ucp/api/ucp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dsm::transport {

class endpoints {
 public:
  endpoints(worker& w, std::span<const std::vector<std::byte>> addresses) : worker_(w) {
    eps_.reserve(addresses.size());
    written_.assign(addresses.size(), 0);
    const auto g = w.lock();
    for (std::size_t r = 0; r < addresses.size(); ++r) {
      ucp_ep_params_t params{};
      params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
      params.address = reinterpret_cast<const ucp_address_t*>(addresses[r].data());
      ucp_ep_h ep = nullptr;
      if (const ucs_status_t s = ucp_ep_create(w.handle(), &params, &ep); s != UCS_OK) {
        close_all();
        throw_status(s, "ep_create", static_cast<int>(r));
      }
      eps_.push_back(ep);
    }
  }
  endpoints(const endpoints&) = delete;
  endpoints& operator=(const endpoints&) = delete;
  ~endpoints() { close_all(); }

  std::size_t size() const noexcept { return eps_.size(); }
  ucp_ep_h operator[](std::size_t rank) const noexcept { return eps_[rank]; }

  void mark_written(std::size_t rank) noexcept {
    if (!written_[rank]) {
      written_[rank] = 1;
      written_list_.push_back(static_cast<std::uint32_t>(rank));
    }
  }
  std::size_t peers_written() const noexcept { return written_list_.size(); }

  // Completes, at the targets, every operation posted to the peers written
  // since the last flush.
  void flush_written() {
    if (written_list_.empty()) return;
    std::vector<void*>& requests = flush_requests_;  // reused: a fence allocates nothing
    requests.clear();
    {
      const auto g = worker_.lock();
      ucp_request_param_t param{};
      for (std::uint32_t r : written_list_) {
        ucs_status_ptr_t req = ucp_ep_flush_nbx(eps_[r], &param);
        if (UCS_PTR_IS_ERR(req)) throw_status(UCS_PTR_STATUS(req), "ep_flush", static_cast<int>(r));
        if (req) requests.push_back(req);
      }
    }
    wait_all(requests, "flush of written peers");
    for (std::uint32_t r : written_list_) written_[r] = 0;
    written_list_.clear();
  }

  // Closes every endpoint without waiting for peers (all traffic has been
  // flushed and every rank has passed the final barrier by then).
  void close_all() noexcept {
    std::vector<void*> requests;
    {
      const auto g = worker_.lock();
      ucp_request_param_t param{};
      param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      param.flags = UCP_EP_CLOSE_FLAG_FORCE;
      for (ucp_ep_h ep : eps_) {
        ucs_status_ptr_t req = ucp_ep_close_nbx(ep, &param);
        if (req && !UCS_PTR_IS_ERR(req)) requests.push_back(req);
      }
      eps_.clear();
    }
    try {
      wait_all(requests, "endpoint close");
    } catch (const std::exception& e) {
      fmt::print(stderr, "dsm: closing endpoints: {}\n", e.what());
    }
  }

 private:
  void wait_all(std::vector<void*>& requests, const char* what) {
    std::size_t done = 0;
    worker_.wait_until(
        [&] {
          const auto g = worker_.lock();
          while (done < requests.size() && ucp_request_check_status(requests[done]) != UCS_INPROGRESS) ++done;
          return done == requests.size();
        },
        worker_.timeout(), [&] { return fmt::format("{} ({} of {} done)", what, done, requests.size()); });
    const auto g = worker_.lock();
    ucs_status_t first_error = UCS_OK;
    for (void* r : requests) {
      if (const ucs_status_t s = ucp_request_check_status(r); s != UCS_OK && first_error == UCS_OK) first_error = s;
      ucp_request_free(r);
    }
    if (first_error != UCS_OK) throw_status(first_error, what);
  }

  worker& worker_;
  std::vector<ucp_ep_h> eps_;
  std::vector<std::uint8_t> written_;
  std::vector<std::uint32_t> written_list_;
  std::vector<void*> flush_requests_;
};

}  // namespace dsm::transport
