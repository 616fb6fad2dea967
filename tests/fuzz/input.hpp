// Reading a fuzzer's input as a sequence of fields: what is not there reads
// as zero, so every input means something.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace dsm_fuzz {

class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : bytes_(reinterpret_cast<const std::byte*>(data), size) {}

  template <class T>
  T take() {
    T v{};
    const std::size_t n = std::min(sizeof v, bytes_.size());
    std::memcpy(&v, bytes_.data(), n);
    bytes_ = bytes_.subspan(n);
    return v;
  }
  std::span<const std::byte> take_bytes(std::size_t n) {
    const auto out = bytes_.first(std::min(n, bytes_.size()));
    bytes_ = bytes_.subspan(out.size());
    return out;
  }
  std::span<const std::byte> rest() const noexcept { return bytes_; }

 private:
  std::span<const std::byte> bytes_;
};

}  // namespace dsm_fuzz
