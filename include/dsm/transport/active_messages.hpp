// Active messages: a fixed-layout header (the same bytes on every ISA) and
// an optional payload, dispatched to a handler registered per message id.
// Nothing received is trusted: the header's length, magic and source rank
// are checked here (the claimed source must be the rank whose endpoint the
// message came through: UCX names it as the reply endpoint), the handler
// checks the rest and throws errc::protocol to reject. A rejected message is dropped, counted and reported on stderr;
// it never reaches the program's data.
#pragma once

#include <dsm/transport/endpoints.hpp>
#include <dsm/transport/status.hpp>
#include <dsm/transport/worker.hpp>

#include <fmt/format.h>
#include <ucp/api/ucp.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

namespace dsm::transport {

static_assert(std::endian::native == std::endian::little,
              "dsm's wire format is little-endian; a big-endian port needs byte swapping in message_header");

struct message_header {
  std::uint32_t magic;
  std::uint32_t source_rank;
  std::uint64_t word[3];  // meaning fixed per message id
};
static_assert(sizeof(message_header) == 32 && std::is_standard_layout_v<message_header> &&
              std::is_trivially_copyable_v<message_header>);

inline constexpr std::uint32_t message_magic = 0x314d5344;  // "DSM1"

// A received header, checked for what every message must have (its size,
// the magic, a source rank of the job); errc::protocol otherwise.
inline message_header parse_header(const void* header, std::size_t header_length, std::uint32_t ranks) {
  if (header_length != sizeof(message_header))
    throw error(errc::protocol, fmt::format("header of {} bytes, expected {}", header_length, sizeof(message_header)));
  message_header h;
  std::memcpy(&h, header, sizeof h);
  if (h.magic != message_magic) throw error(errc::protocol, fmt::format("bad magic {:#x}", h.magic));
  if (h.source_rank >= ranks)
    throw error(errc::protocol, fmt::format("source rank {} of a {}-rank job", h.source_rank, ranks));
  return h;
}

class active_messages {
 public:
  using handler = std::function<void(const message_header&, std::span<const std::byte> payload)>;

  // Handlers may be registered before the job is known (they must be, so
  // no message can find one missing); set_job comes before any traffic.
  explicit active_messages(worker& w) : worker_(w) {}
  void set_job(std::uint32_t rank, std::uint32_t ranks) noexcept {
    rank_ = rank;
    ranks_ = ranks;
  }
  // Once wired up: from then on a message's claimed source rank must match
  // the endpoint it arrived through.
  void set_endpoints(const endpoints* eps) noexcept { endpoints_ = eps; }
  active_messages(const active_messages&) = delete;
  active_messages& operator=(const active_messages&) = delete;

  void on(unsigned id, std::string name, handler h) {
    auto entry = std::make_unique<registration>(registration{this, id, std::move(name), std::move(h)});
    ucp_am_handler_param_t param{};
    param.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
    param.id = id;
    param.cb = &dispatch;
    param.arg = entry.get();
    const auto g = worker_.lock();
    check(ucp_worker_set_am_recv_handler(worker_.handle(), &param), "set_am_recv_handler");
    handlers_[id] = std::move(entry);
  }

  // Sends without blocking: header and payload are copied and freed when
  // UCX is done with them. Callable from inside a handler.
  void send(endpoints& eps, std::uint32_t to, unsigned id, message_header header,
            std::span<const std::byte> payload = {}) {
    header.magic = message_magic;
    header.source_rank = rank_;
    send_bytes(eps[to], static_cast<int>(to), id,
               {reinterpret_cast<const std::byte*>(&header), sizeof header}, payload);
  }

  // Any bytes as header: for tests that prove malformed messages are refused.
  void send_unchecked(endpoints& eps, std::uint32_t to, unsigned id, std::span<const std::byte> header,
                      std::span<const std::byte> payload) {
    send_bytes(eps[to], static_cast<int>(to), id, header, payload);
  }

  std::uint64_t rejected() const noexcept { return rejected_.load(std::memory_order_acquire); }
  std::uint64_t received() const noexcept { return received_.load(); }
  std::uint64_t sent() const noexcept { return sent_.load(); }
  // Sent messages UCX has not completed yet.
  std::uint64_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  std::string last_rejection() const {
    const std::lock_guard g{rejection_mutex_};
    return last_rejection_;
  }

 private:
  struct registration {
    active_messages* owner;
    unsigned id;
    std::string name;
    handler fn;
  };

  // One block holds what UCX reads until the send completes.
  struct outgoing {
    active_messages* owner;
    int peer;
    std::size_t header_bytes;
    std::unique_ptr<std::byte[]> bytes;
  };

  void send_bytes(ucp_ep_h ep, int peer, unsigned id, std::span<const std::byte> header,
                  std::span<const std::byte> payload) {
    auto* out = new outgoing{this, peer, header.size(), std::make_unique<std::byte[]>(header.size() + payload.size())};
    std::memcpy(out->bytes.get(), header.data(), header.size());
    if (!payload.empty()) std::memcpy(out->bytes.get() + header.size(), payload.data(), payload.size());
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
    // Eager: the receiver gets the whole message in its callback. Reply:
    // it learns the endpoint the message came through.
    param.flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY;
    param.cb.send = &sent_callback;
    param.user_data = out;
    ucs_status_ptr_t req;
    {
      const auto g = worker_.lock();
      req = ucp_am_send_nbx(ep, id, out->bytes.get(), header.size(), out->bytes.get() + header.size(),
                            payload.size(), &param);
    }
    ++sent_;
    if (req == nullptr) {
      delete out;
    } else if (UCS_PTR_IS_ERR(req)) {
      delete out;
      throw_status(UCS_PTR_STATUS(req), fmt::format("active message {}", id), peer);
    }
  }

  static void sent_callback(void* request, ucs_status_t status, void* user_data) {
    auto* out = static_cast<outgoing*>(user_data);
    if (status != UCS_OK)
      fmt::print(stderr, "dsm: an active message to rank {} failed: {}\n", out->peer, ucs_status_string(status));
    delete out;
    ucp_request_free(request);
  }

  static ucs_status_t dispatch(void* arg, const void* header, std::size_t header_length, void* data,
                               std::size_t length, const ucp_am_recv_param_t* param) {
    auto* reg = static_cast<registration*>(arg);
    active_messages& self = *reg->owner;
    ++self.received_;
    std::uint32_t source = ~0u;
    try {
      const message_header h = parse_header(header, header_length, self.ranks_);
      if (self.endpoints_ != nullptr) {
        const bool has_ep = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) != 0;
        if (!has_ep || param->reply_ep != (*self.endpoints_)[h.source_rank]) {
          const auto sender = has_ep ? self.rank_of(param->reply_ep) : std::nullopt;
          if (sender) source = *sender;
          throw error(errc::protocol, fmt::format("a message claiming to come from rank {} arrived through {}",
                                                  h.source_rank,
                                                  sender ? fmt::format("rank {}'s endpoint", *sender)
                                                         : std::string("no endpoint of this job")));
        }
      }
      source = h.source_rank;
      if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)
        throw error(errc::protocol, "rendezvous data where dsm sends only eager messages");
      reg->fn(h, {static_cast<const std::byte*>(data), length});
    } catch (const std::exception& e) {
      self.reject(*reg, source, e);
    }
    return UCS_OK;
  }

  void reject(const registration& reg, std::uint32_t source, const std::exception& e) { reject(reg.name, source, e); }

  // Which rank's endpoint `ep` is, if any (for naming a sender that lied).
  std::optional<std::uint32_t> rank_of(ucp_ep_h ep) const {
    for (std::uint32_t r = 0; r < endpoints_->size(); ++r)
      if ((*endpoints_)[r] == ep) return r;
    return std::nullopt;
  }

 public:
  // For a message a handler kept to handle later (and found malformed then):
  // counted and reported like one refused on arrival.
  // The text is stored before the count rises: whoever sees the count
  // (acquire) finds the text of that rejection or a later one.
  void reject(std::string_view kind, std::uint32_t source, const std::exception& e) {
    const std::string from = source == ~0u ? std::string("an unknown sender") : fmt::format("rank {}", source);
    const auto* de = dynamic_cast<const error*>(&e);
    std::string text = fmt::format("rejected a malformed '{}' message from {}: {}", kind, from,
                                   de ? std::string_view(de->message()) : std::string_view(e.what()));
    fmt::print(stderr, "dsm: rank {}: {}\n", rank_, text);
    {
      const std::lock_guard g{rejection_mutex_};
      last_rejection_ = std::move(text);
    }
    rejected_.fetch_add(1, std::memory_order_release);
  }


 private:
  worker& worker_;
  const endpoints* endpoints_ = nullptr;
  std::uint32_t rank_ = 0;
  std::uint32_t ranks_ = 0;
  std::map<unsigned, std::unique_ptr<registration>> handlers_;
  std::atomic<std::uint64_t> rejected_{0}, received_{0}, sent_{0}, in_flight_{0};
  mutable std::mutex rejection_mutex_;
  std::string last_rejection_;
};

}  // namespace dsm::transport
