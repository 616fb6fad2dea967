// The bytes of an RPC's arguments and result: cereal's serialisation
// (std::string, std::vector, std::map, std::tuple, std::optional, ... and
// any user type with a serialize()/save()/load() member or function) into
// a little-endian binary archive of dsm's own, which reads from a span and
// trusts nothing: a read past the end, a bool that is neither 0 nor 1, a
// container claiming more elements than the bytes left could hold, or
// bytes left over are errc::protocol, never an overrun or a huge
// allocation.
#pragma once

#include <dsm/detail/type_name.hpp>
#include <dsm/error.hpp>

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <fmt/format.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace dsm::detail {

static_assert(std::endian::native == std::endian::little,
              "dsm's archive is little-endian; a big-endian port needs byte swapping in detail/archive.hpp");

// Appends to a byte vector.
class output_archive : public cereal::OutputArchive<output_archive, cereal::AllowEmptyClassElision> {
 public:
  explicit output_archive(std::vector<std::byte>& out) : OutputArchive(this), out_(out) {}
  void saveBinary(const void* data, std::size_t bytes) {
    if (bytes == 0) return;
    const auto* p = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), p, p + bytes);
  }

 private:
  std::vector<std::byte>& out_;
};

// Reads a span of bytes that came from another process.
class input_archive : public cereal::InputArchive<input_archive, cereal::AllowEmptyClassElision> {
 public:
  explicit input_archive(std::span<const std::byte> in) : InputArchive(this), in_(in) {}
  void loadBinary(void* data, std::size_t bytes) {
    if (bytes == 0) return;  // an empty container's data() may be null
    if (bytes > in_.size() - at_)
      throw error(errc::protocol, fmt::format("{} bytes to read at byte {} of {}", bytes, at_, in_.size()));
    std::memcpy(data, in_.data() + at_, bytes);
    at_ += bytes;
  }
  std::size_t bytes_left() const noexcept { return in_.size() - at_; }
  // Every byte was read: a message with bytes to spare is malformed too.
  void finish() const {
    if (at_ != in_.size())
      throw error(errc::protocol, fmt::format("{} bytes left over after the last value", in_.size() - at_));
  }

 private:
  std::span<const std::byte> in_;
  std::size_t at_ = 0;
};

// A container of elements that take no bytes (empty structs) may claim
// more elements than bytes; this many, at most.
inline constexpr std::uint64_t max_weightless_elements = 1u << 16;

template <class T>
concept wire_arithmetic = std::is_arithmetic_v<T>;

template <wire_arithmetic T>
void CEREAL_SAVE_FUNCTION_NAME(output_archive& ar, const T& t) {
  static_assert(!std::is_same_v<T, long double>,
                "dsm: long double is laid out differently on x86-64 and arm64; send a double");
  ar.saveBinary(std::addressof(t), sizeof t);
}
template <wire_arithmetic T>
void CEREAL_LOAD_FUNCTION_NAME(input_archive& ar, T& t) {
  static_assert(!std::is_same_v<T, long double>,
                "dsm: long double is laid out differently on x86-64 and arm64; send a double");
  if constexpr (std::is_same_v<T, bool>) {
    unsigned char byte;
    ar.loadBinary(&byte, 1);
    if (byte > 1) throw error(errc::protocol, fmt::format("a bool of value {}", byte));
    t = byte != 0;
  } else {
    ar.loadBinary(std::addressof(t), sizeof t);
  }
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(output_archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(input_archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(output_archive& ar, const cereal::SizeTag<T>& t) {
  const auto n = static_cast<std::uint64_t>(t.size);
  ar.saveBinary(&n, sizeof n);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(input_archive& ar, cereal::SizeTag<T>& t) {
  std::uint64_t n;
  ar.loadBinary(&n, sizeof n);
  if (n > ar.bytes_left() && n > max_weightless_elements)
    throw error(errc::protocol, fmt::format("a container of {} elements in the {} bytes left", n, ar.bytes_left()));
  t.size = static_cast<std::remove_reference_t<T>>(n);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(output_archive& ar, const cereal::BinaryData<T>& bd) {
  ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(input_archive& ar, cereal::BinaryData<T>& bd) {
  ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace dsm::detail

CEREAL_REGISTER_ARCHIVE(dsm::detail::output_archive)
CEREAL_REGISTER_ARCHIVE(dsm::detail::input_archive)
CEREAL_SETUP_ARCHIVE_TRAITS(dsm::detail::input_archive, dsm::detail::output_archive)

namespace dsm {

// A type an RPC can carry as an argument or result: one cereal saves to
// and loads from dsm's archive (arithmetic types, std::string, std::vector,
// std::map, std::tuple, std::optional, ..., a user type with serialize()),
// default-constructible so that the receiver has something to load into.
// (Pointers are ruled out first: cereal's traits would stop compilation
// at its own assertion.)
template <class T>
concept serializable = !std::is_pointer_v<T> && !std::is_member_pointer_v<T> && std::is_default_constructible_v<T> &&
                       cereal::traits::is_output_serializable<T, detail::output_archive>::value &&
                       cereal::traits::is_input_serializable<T, detail::input_archive>::value;

namespace detail {

template <class... Ts>
void append_values(std::vector<std::byte>& out, const Ts&... values) {
  output_archive ar(out);
  (ar(values), ...);
}

// Loads values from all of `in`; errc::protocol (naming `what`) if the
// bytes are not exactly those values.
template <class... Ts>
void load_values(std::span<const std::byte> in, std::string_view what, Ts&... values) {
  try {
    input_archive ar(in);
    (ar(values), ...);
    ar.finish();
  } catch (const error& e) {
    throw error(errc::protocol, fmt::format("{}: {}", what, e.message()));
  } catch (const std::exception& e) {  // cereal's, or a user type's load
    throw error(errc::protocol, fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace detail
}  // namespace dsm
