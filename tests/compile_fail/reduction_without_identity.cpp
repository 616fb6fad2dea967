// Must not compile: a reduction operator needs an identity (the value each
// contribution starts from); the static_assert says how to declare one.
#include <dsm/dsm.hpp>

struct product_without_identity {
  template <class T>
  T operator()(const T& a, const T& b) const { return a * b; }
};

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  dsm::shared_array<double, dsm::reduction<product_without_identity>> a(100);
  return a.size() == 100 ? 0 : 1;
}
