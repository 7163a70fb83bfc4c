#include "engine/cuda/gelu.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaGelu : public ::testing::Test {};
TYPED_TEST_SUITE(CudaGelu, StorageTypes, StorageTypeNames);

template <typename T>
void checkGelu(size_t n) {
  SCOPED_TRACE(testing::Message() << "n=" << n);
  const auto x = roundTo<T>(randomFloats(n, 1, -5, 5));
  const auto dy = roundTo<T>(randomFloats(n, 2));
  const auto dx0 = roundTo<T>(randomFloats(n, 3));
  DeviceBuffer<T> dX(n), dY(n), dDy(n), dDx(n);
  uploadAs(dX, x);
  uploadAs(dDy, dy);
  uploadAs(dDx, dx0);
  dY.poison();
  geluForward(dY.get(), dX.get(), n, nullptr);
  geluBackward(dDx.get(), dX.get(), dDy.get(), n, nullptr);

  const std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end());
  std::vector<double> y(n), dx(dx0.begin(), dx0.end());
  cpu::geluForward(y.data(), xd.data(), n);
  cpu::geluBackward(dx.data(), xd.data(), dyd.data(), n);
  const Tolerance t = toleranceFor<T>({1e-6, 1e-5}, {1e-2, 1e-2});
  expectClose(downloadAsFloat(dY), y, t, "y");
  expectClose(downloadAsFloat(dDx), dx, t, "dx");
}

TYPED_TEST(CudaGelu, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkGelu<TypeParam>(10007);  // element by element
  checkGelu<TypeParam>(8192);   // in vectors of eight
}

}  // namespace
}  // namespace moescope::engine::cuda::test
