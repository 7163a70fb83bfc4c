// Residual addition and scaling.
#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

template <typename T>
void addInPlace(T* y, const T* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

template <typename T>
void scaleInPlace(T* x, size_t n, T s) {
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

template void addInPlace<float>(float*, const float*, size_t);
template void addInPlace<double>(double*, const double*, size_t);
template void scaleInPlace<float>(float*, size_t, float);
template void scaleInPlace<double>(double*, size_t, double);

}  // namespace moescope::engine::cpu
