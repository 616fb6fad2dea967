// What an RPC names on the wire: the function a rank runs for it. Every
// instantiation of dsm::rpc's invoker registers itself here before main
// (a static member's initializer), so a rank knows every function any
// rank of the same program can ask of it, and runs nothing else.
//
// An invoker is named by a hash of its type's spelling, which is the same
// in every build of the program (an x86-64 and an arm64 binary alike),
// and by its offset in the executable, which is the same on every rank
// that runs the same binary. Two lambdas of one function with the same
// signature are spelt alike; between ranks of one binary the offset tells
// them apart, between different binaries they cannot be named.
#pragma once

#include <dsm/error.hpp>

#include <fmt/format.h>
#include <link.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsm::detail {

constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char ch : text) h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001b3ull;
  return h;
}

// The running executable: where it is loaded, where its code is, and
// which build it is (its GNU build id, or a hash of its bytes without one).
class program_image {
 public:
  static const program_image& self() {
    static const program_image image;
    return image;
  }
  std::uint64_t identity() const noexcept { return identity_; }
  // An address's offset in the executable, if it is in its code.
  bool holds_code(std::uintptr_t address) const noexcept {
    for (const auto& [begin, end] : code_)
      if (address >= begin && address < end) return true;
    return false;
  }
  std::uintptr_t offset_of(std::uintptr_t address) const noexcept { return address - base_; }
  std::uintptr_t address_at(std::uintptr_t offset) const noexcept { return base_ + offset; }

 private:
  program_image() {
    dl_iterate_phdr(&visit, this);
    if (identity_ == 0) identity_ = hash_of_file("/proc/self/exe");
  }

  // The first object is the executable itself.
  static int visit(dl_phdr_info* info, std::size_t, void* self) {
    auto& image = *static_cast<program_image*>(self);
    image.base_ = info->dlpi_addr;
    for (int k = 0; k < info->dlpi_phnum; ++k) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[k];
      const std::uintptr_t at = info->dlpi_addr + ph.p_vaddr;
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) image.code_.push_back({at, at + ph.p_memsz});
      if (ph.p_type == PT_NOTE && image.identity_ == 0)
        image.identity_ = build_id({reinterpret_cast<const std::byte*>(at), static_cast<std::size_t>(ph.p_memsz)});
    }
    return 1;  // the executable only
  }

  // NT_GNU_BUILD_ID's bytes, hashed; 0 if the notes have none.
  static std::uint64_t build_id(std::span<const std::byte> notes) {
    constexpr std::uint32_t nt_gnu_build_id = 3;
    const auto align4 = [](std::size_t n) { return (n + 3) & ~std::size_t{3}; };
    std::size_t at = 0;
    while (notes.size() - at >= 12) {
      std::uint32_t name_bytes, desc_bytes, type;
      std::memcpy(&name_bytes, notes.data() + at, 4);
      std::memcpy(&desc_bytes, notes.data() + at + 4, 4);
      std::memcpy(&type, notes.data() + at + 8, 4);
      const std::size_t name_at = at + 12, desc_at = name_at + align4(name_bytes);
      if (desc_at > notes.size() || desc_bytes > notes.size() - desc_at) break;
      if (type == nt_gnu_build_id && name_bytes == 4 && std::memcmp(notes.data() + name_at, "GNU", 4) == 0)
        return fnv1a({reinterpret_cast<const char*>(notes.data() + desc_at), desc_bytes}) | 1;
      at = desc_at + align4(desc_bytes);
    }
    return 0;
  }

  static std::uint64_t hash_of_file(const char* path) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    if (std::FILE* f = std::fopen(path, "rb")) {
      char chunk[1 << 16];
      for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;)
        for (std::size_t k = 0; k < n; ++k) h = (h ^ static_cast<unsigned char>(chunk[k])) * 0x100000001b3ull;
      std::fclose(f);
    }
    return h | 1;
  }

  std::uintptr_t base_ = 0;
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> code_;
  std::uint64_t identity_ = 0;
};

// What a rank runs for an RPC, as the request arrived.
struct rpc_request {
  std::uint32_t source;                // the calling rank
  bool same_program;                   // the caller runs this rank's binary
  std::span<const std::byte> arguments;
};
// Loads the arguments, runs the function, returns the result's bytes;
// throws a dsm::error for the caller to receive.
using rpc_invoke = std::vector<std::byte> (*)(const rpc_request&);

struct rpc_entry {
  std::uint64_t key;       // fnv1a of the invoker's type (the function's and its arguments')
  std::string_view name;   // the function's type, for messages
  rpc_invoke invoke;
  std::uint64_t offset;    // of invoke in the executable
};

class rpc_registry {
 public:
  static rpc_registry& instance() {
    static rpc_registry registry;
    return registry;
  }

  // Before main, from each invoker's static member.
  const rpc_entry* add(std::string_view invoker, std::string_view function, rpc_invoke invoke) {
    const auto address = reinterpret_cast<std::uintptr_t>(invoke);
    auto* e = new rpc_entry{fnv1a(invoker), function, invoke, program_image::self().offset_of(address)};
    entries_.emplace(e->key, e);  // never freed: entries live as long as the program's code
    return e;
  }

  // Whether two invokers of this program share `key` (two lambdas spelt alike).
  bool ambiguous(std::uint64_t key) const { return entries_.count(key) > 1; }

  // The entry a request names: by key alone when it is unambiguous (an
  // invoker in a shared library has no fixed offset), by its offset too
  // otherwise (only a caller running this binary can say).
  const rpc_entry& find(std::uint64_t key, std::uint64_t offset, bool same_program) const {
    const auto [first, last] = entries_.equal_range(key);
    if (first == last)
      throw error(errc::protocol, fmt::format("no RPC function with key {:#x} in this program", key));
    if (std::next(first) == last) return *first->second;
    if (!same_program)
      throw error(errc::invalid_argument,
                  fmt::format("the RPC function '{}' is spelt alike by {} functions of this program, and the caller "
                              "runs another binary: give it a distinct name (a named function object, or dsm::fn<&f>)",
                              first->second->name, std::distance(first, last)));
    for (auto it = first; it != last; ++it)
      if (it->second->offset == offset) return *it->second;
    throw error(errc::protocol,
                fmt::format("no RPC function '{}' at offset {:#x} in this program", first->second->name, offset));
  }

 private:
  rpc_registry() = default;
  std::multimap<std::uint64_t, const rpc_entry*> entries_;
};

}  // namespace dsm::detail
