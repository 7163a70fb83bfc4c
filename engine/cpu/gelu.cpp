// GELU with the tanh approximation (torch.nn.functional.gelu(x, approximate="tanh")).
#include <cmath>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

namespace {
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;  // sqrt(2/π)
constexpr double kGeluCoef = 0.044715;
}  // namespace

template <typename T>
void geluForward(T* y, const T* x, size_t n) {
  const T s = static_cast<T>(kSqrt2OverPi);
  const T a = static_cast<T>(kGeluCoef);
  for (size_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T u = s * (v + a * v * v * v);
    y[i] = T(0.5) * v * (T(1) + std::tanh(u));
  }
}

template <typename T>
void geluBackward(T* dx, const T* x, const T* dy, size_t n) {
  const T s = static_cast<T>(kSqrt2OverPi);
  const T a = static_cast<T>(kGeluCoef);
  for (size_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T u = s * (v + a * v * v * v);
    const T th = std::tanh(u);
    const T sech2 = T(1) - th * th;
    const T grad = T(0.5) * (T(1) + th) + T(0.5) * v * sech2 * s * (T(1) + T(3) * a * v * v);
    dx[i] += grad * dy[i];
  }
}

template void geluForward<float>(float*, const float*, size_t);
template void geluForward<double>(double*, const double*, size_t);
template void geluBackward<float>(float*, const float*, const float*, size_t);
template void geluBackward<double>(double*, const double*, const double*, size_t);

}  // namespace moescope::engine::cpu
