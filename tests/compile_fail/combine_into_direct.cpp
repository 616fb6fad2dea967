// Must not compile: only a reduction array is combined into.
#include <dsm/dsm.hpp>

#include <vector>

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  dsm::shared_array<double, dsm::direct> a(100);
  const std::vector<double> v(10, 1.0);
  a.combine(0, v);
  return 0;
}
