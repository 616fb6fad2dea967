// Fuzz target: what an RPC brings. Arguments and results of the types
// programs send (strings, vectors, maps, optionals, variants, tuples, bool,
// a user type) decode from any bytes into a value or errc::protocol,
// never an overrun, a huge allocation or another exception; what decodes
// encodes to bytes that decode to the same value. Replies are matched to the calls made
// and nothing else; a packed put's runs take its data exactly.
#include "input.hpp"

#include <dsm/detail/archive.hpp>
#include <dsm/detail/packed_runs.hpp>
#include <dsm/runtime/rpc_service.hpp>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

namespace {

struct record {
  std::int32_t id = 0;
  std::vector<double> values;
  std::map<std::string, std::int64_t> tags;
  std::optional<std::string> note;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, values, tags, note);
  }
};

template <class... Ts>
void decode(std::span<const std::byte> wire) {
  std::tuple<Ts...> values;
  try {
    std::apply([&](auto&... v) { dsm::detail::load_values(wire, "fuzz", v...); }, values);
  } catch (const dsm::error& e) {
    if (e.category() != dsm::errc::protocol) std::abort();
    return;
  }
  // Decoded: encoding it gives bytes (no more than came: a map drops a
  // repeated key) that decode to what encodes the same again.
  const auto encode = [](const std::tuple<Ts...>& t) {
    std::vector<std::byte> out;
    std::apply([&](const auto&... v) { dsm::detail::append_values(out, v...); }, t);
    return out;
  };
  const std::vector<std::byte> again = encode(values);
  if (again.size() > wire.size()) std::abort();
  std::tuple<Ts...> reread;
  std::apply([&](auto&... v) { dsm::detail::load_values(again, "fuzz", v...); }, reread);
  if (encode(reread) != again) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  dsm_fuzz::input in(data, size);
  const auto which = in.take<std::uint8_t>();
  const auto wire = in.rest();
  switch (which % 8) {
    case 0: decode<std::string, std::int32_t>(wire); break;
    case 1: decode<std::vector<double>, std::vector<std::string>>(wire); break;
    case 2: decode<std::map<std::string, std::int64_t>>(wire); break;
    case 3: decode<std::optional<std::uint16_t>, bool, std::variant<std::int8_t, std::string, double>>(wire); break;
    case 4: decode<record>(wire); break;
    case 5: decode<std::vector<std::tuple<bool, std::uint8_t>>>(wire); break;
    case 6: {
      // Replies: accepted only for a call made, from the rank called, once,
      // with a known status; everything else is errc::protocol.
      dsm::detail::rpc_service calls;
      const std::uint64_t ids[2] = {calls.expect_reply(1), calls.expect_reply(2)};
      std::optional<std::uint64_t> answered[2];
      dsm_fuzz::input r(reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size());
      for (int k = 0; k < 4; ++k) {
        const std::uint32_t source = r.take<std::uint8_t>() % 4u;
        const std::uint64_t id = r.take<std::uint8_t>() % 4u;
        const auto status = r.take<std::uint8_t>() % 24u;
        const auto bytes = r.take_bytes(r.take<std::uint8_t>());
        const int call = id == ids[0] ? 0 : id == ids[1] ? 1 : -1;
        const bool acceptable = call >= 0 && source == std::uint32_t(call + 1) && !answered[call] &&
                                status <= dsm::detail::rpc_last_status;
        try {
          calls.deposit_reply(source, id, status, bytes);
          if (!acceptable) std::abort();
          answered[call] = status;
        } catch (const dsm::error& e) {
          if (acceptable || e.category() != dsm::errc::protocol) std::abort();
        }
      }
      for (int c = 0; c < 2; ++c) {
        const auto reply = calls.take_reply(ids[c]);
        if (reply.has_value() != answered[c].has_value() || (reply && reply->status != *answered[c])) std::abort();
      }
      break;
    }
    case 7: {
      // A packed put's table: decoded runs are non-empty and take the
      // data exactly.
      dsm_fuzz::input r(reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size());
      const std::uint64_t runs = r.take<std::uint8_t>();
      std::span<const std::byte> data;
      try {
        std::uint64_t total = 0;
        for (const auto& run : dsm::detail::decode_packed_runs(r.rest(), runs, data)) {
          if (run.bytes == 0) std::abort();
          total += run.bytes;
        }
        if (total != data.size() || data.size() + runs * dsm::detail::packed_run_bytes != r.rest().size()) std::abort();
      } catch (const dsm::error& e) {
        if (e.category() != dsm::errc::protocol) std::abort();
      }
      break;
    }
  }
  return 0;
}
