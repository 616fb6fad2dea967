// The caller's future of a call another rank answers (an RPC, a packed
// put): done when the reply is in; its value is decoded from the reply's
// bytes, or the error the other rank reported is thrown, with its errc.
#pragma once

#include <dsm/detail/archive.hpp>
#include <dsm/runtime/rpc_service.hpp>
#include <dsm/runtime/state.hpp>
#include <dsm/transport/future.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace dsm::detail {

template <class R>
class reply_result final : public deferred<R> {
 public:
  // `what`: the call, for messages ("rpc to rank 1 (f)").
  reply_result(runtime_state& rt, std::uint64_t id, int target, std::string what)
      : rt_(rt), id_(id), target_(target), what_(std::move(what)) {}
  ~reply_result() override {
    if (!reply_) rt_.rpc().forget(id_);
  }
  bool advance() override {
    if (!reply_) reply_ = rt_.rpc().take_reply(id_);
    return reply_.has_value();
  }
  R take() override {
    const auto& bytes = reply_->bytes;
    if (reply_->status != rpc_ok)
      throw error(static_cast<errc>(reply_->status - 1),
                  fmt::format("{}: {}", what_, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
    if constexpr (std::is_void_v<R>) {
      if (!bytes.empty())
        throw error(errc::protocol, fmt::format("{}: a reply of {} bytes where none was due", what_, bytes.size()));
    } else {
      R value{};
      load_values(bytes, "the result of " + what_, value);
      return value;
    }
  }
  std::string describe() const override { return what_; }
  int awaited() const noexcept override { return target_; }
  void abandon() noexcept override {
    try {
      rt_.rpc().forget(id_);
    } catch (...) {
    }
  }

 private:
  runtime_state& rt_;
  std::uint64_t id_;
  int target_;
  std::string what_;
  std::optional<rpc_reply> reply_;
};

// The future of call `id`, sent to `target`.
template <class R>
future<R> reply_future(runtime_state& rt, std::uint64_t id, int target, std::string what) {
  return future_access::composed<R>(&rt.worker(), std::make_unique<reply_result<R>>(rt, id, target, std::move(what)));
}

}  // namespace dsm::detail
