// Must not compile: a reduction<min> array is combined into with combine(v);
// += would read as a sum. The static_assert says what to use instead.
#include <dsm/dsm.hpp>

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  dsm::shared_array<double, dsm::reduction<dsm::min>> a(100);
  a[3] += 1.0;
  return 0;
}
