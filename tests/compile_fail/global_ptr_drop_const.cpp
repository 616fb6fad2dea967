// Must not compile: a pointer to const does not convert to a pointer to
// mutable (const_pointer_cast says so explicitly).
#include <dsm/global_ptr.hpp>

int main() {
  dsm::global_ptr<const int> c;
  dsm::global_ptr<int> m = c;
  return m.is_null() ? 0 : 1;
}
