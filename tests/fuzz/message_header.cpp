// Fuzz target: the active-message header every received message starts
// with. Anything is either a header of the job or errc::protocol.
#include <dsm/transport/active_messages.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint32_t ranks = size > 0 ? data[0] % 9 : 1;
  try {
    const auto h = dsm::transport::parse_header(size > 0 ? data + 1 : data, size > 0 ? size - 1 : 0, ranks);
    if (h.magic != dsm::transport::message_magic || h.source_rank >= ranks) std::abort();  // accepted what it must refuse
  } catch (const dsm::error& e) {
    if (e.category() != dsm::errc::protocol) std::abort();
  }
  return 0;
}
