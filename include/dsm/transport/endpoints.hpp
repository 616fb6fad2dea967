// One endpoint per rank (this rank included, through UCX's self transport),
// and the set of peers written since the last flush, so that a fence
// flushes only those. Endpoints run with UCX's peer error handling: a peer
// that dies (its connection reset, its process gone at a keepalive round)
// is reported to on_peer_error, on the thread progressing the worker.
#pragma once

#include <dsm/transport/clock.hpp>
#include <dsm/transport/status.hpp>
#include <dsm/transport/worker.hpp>

#include <fmt/format.h>
#include <ucp/api/ucp.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace dsm::transport {

class endpoints {
 public:
  using peer_error_handler = std::function<void(std::size_t rank, ucs_status_t status)>;

  // `self`: this rank's own index, whose endpoint needs no error handling
  // (UCX's self transport offers none: requiring it would route a rank's
  // operations on its own memory through shared memory).
  endpoints(worker& w, std::span<const std::vector<std::byte>> addresses, std::size_t self,
            peer_error_handler on_peer_error = {})
      : worker_(w), on_peer_error_(std::move(on_peer_error)), contexts_(addresses.size()) {
    eps_.reserve(addresses.size());
    written_.assign(addresses.size(), 0);
    const auto g = w.lock();
    for (std::size_t r = 0; r < addresses.size(); ++r) {
      contexts_[r] = {this, r};
      ucp_ep_params_t params{};
      params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
      params.address = reinterpret_cast<const ucp_address_t*>(addresses[r].data());
      if (r != self) {
        params.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
        params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
        params.err_handler.cb = &endpoints::peer_failed;
        params.err_handler.arg = &contexts_[r];
      }
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
  // flushed and every rank has passed the final barrier by then, or the
  // job has failed). Bounded by a second: a failed peer cannot hold it.
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
    const deadline until{std::chrono::seconds(1)};
    for (bool pending = !requests.empty(); pending && !until.passed();) {
      worker_.progress();
      const auto g = worker_.lock();
      pending = std::any_of(requests.begin(), requests.end(),
                            [](void* r) { return ucp_request_check_status(r) == UCS_INPROGRESS; });
    }
    const auto g = worker_.lock();
    for (void* r : requests)
      if (ucp_request_check_status(r) != UCS_INPROGRESS) ucp_request_free(r);  // else UCX still owns it
  }

 private:
  struct peer_context {
    endpoints* self;
    std::size_t rank;
  };
  static void peer_failed(void* arg, ucp_ep_h, ucs_status_t status) {
    const auto* c = static_cast<const peer_context*>(arg);
    if (c->self->on_peer_error_) c->self->on_peer_error_(c->rank, status);
  }

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
  peer_error_handler on_peer_error_;
  std::vector<peer_context> contexts_;  // sized once: UCX holds their addresses
  std::vector<ucp_ep_h> eps_;
  std::vector<std::uint8_t> written_;
  std::vector<std::uint32_t> written_list_;
  std::vector<void*> flush_requests_;
};

}  // namespace dsm::transport
