// Shared element types across ISAs: a type of fixed-width members is shared
// by every rank; one with a long double member (x87 80-bit on x86-64, IEEE
// binary128 on arm64, 16 bytes on both) is refused with a layout_mismatch
// naming the array (or allocation) and both ranks' layouts when the job
// mixes ISAs, and works when it does not.
#include "check.hpp"

#include <cstdint>
#include <string>

namespace {

struct particle {  // fixed-width members: the same bytes on every ISA
  double position[3];
  std::int32_t id;
  std::uint8_t kind;
  std::uint8_t spare[3];
};

struct precise {
  double rough;
  long double exact;
};

}  // namespace

int main(int argc, char** argv) {
  return dsm_test::run(argc, argv, [] {
    const int me = dsm::rank(), n = dsm::ranks();
    {
      dsm::shared_array<particle, dsm::direct> particles(static_cast<std::size_t>(n), "particles");
      particles[static_cast<std::size_t>(me)] = particle{{me + 0.5, -me * 2.0, 1e300}, me * 7, 3, {}};
      dsm::barrier();
      for (int r = 0; r < n; ++r) {
        const particle p = particles[static_cast<std::size_t>(r)];
        CHECK(p.position[0] == r + 0.5 && p.position[1] == -r * 2.0 && p.position[2] == 1e300);
        CHECK(p.id == r * 7 && p.kind == 3);
      }
      dsm::barrier();
    }
    if (dsm::mixed_isa()) {
      const std::string message =
          CHECK_ERROR(dsm::errc::layout_mismatch, dsm::shared_array<precise> refused(4, "precise values"));
      CHECK(message.find("'precise values'") != std::string::npos);
      CHECK(message.find("x86-64") != std::string::npos && message.find("arm64") != std::string::npos);
      CHECK(message.find("long double") != std::string::npos);
      if (me == 0) fmt::print("layout: refused as expected: {}\n", message);
      const std::string raw = CHECK_ERROR(dsm::errc::layout_mismatch, dsm::allocate_collective<precise>(2));
      CHECK(raw.find("allocate_collective<") != std::string::npos);
      const auto blocks = dsm::allocate_collective<particle>(2);  // the same layout everywhere: allocated
      CHECK(blocks.size() == static_cast<std::size_t>(n));
      dsm::barrier();
      dsm::deallocate(blocks[static_cast<std::size_t>(me)]);
    } else {
      dsm::shared_array<precise> values(static_cast<std::size_t>(n), "precise values");
      values.local()[0] = precise{1.5, static_cast<long double>(me) / 3};
      dsm::barrier();
      const precise v = values[static_cast<std::size_t>((me + 1) % n)];
      CHECK(v.exact == static_cast<long double>((me + 1) % n) / 3);
      dsm::barrier();
    }
    dsm::barrier();  // the job goes on after a refused allocation
  });
}
