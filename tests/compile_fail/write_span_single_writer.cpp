// Must not compile: single_writer hands out no writable spans (a recall may
// take a unit while the span is written); the static_assert says what to
// use instead.
#include <dsm/dsm.hpp>

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  dsm::shared_array<double, dsm::single_writer> a(100);
  return a.write_span(0, 10).empty() ? 0 : 1;
}
