#include "engine/cuda/residual.h"

#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaResidual : public ::testing::Test {};
TYPED_TEST_SUITE(CudaResidual, StorageTypes, StorageTypeNames);

// out = x + z (+ bias broadcast over rows), against the same sum in double.
template <typename T>
void checkResidual(int n, int C, bool withBias) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " C=" << C << " bias=" << withBias);
  const size_t total = size_t(n) * C;
  const auto x = roundTo<T>(randomFloats(total, 51));
  const auto z = roundTo<T>(randomFloats(total, 52));
  const auto bias = roundTo<T>(randomFloats(C, 53));
  DeviceBuffer<T> dX(total), dZ(total), dBias(C), dOut(total);
  uploadAs(dX, x);
  uploadAs(dZ, z);
  uploadAs(dBias, bias);
  dOut.poison();
  residualAdd(dOut.get(), dX.get(), dZ.get(), withBias ? dBias.get() : nullptr, n, C, nullptr);
  std::vector<double> ref(total);
  for (size_t i = 0; i < total; ++i)
    ref[i] = double(x[i]) + double(z[i]) + (withBias ? double(bias[i % C]) : 0.0);
  expectClose(downloadAsFloat(dOut), ref, toleranceFor<T>({1e-6, 1e-6}, {1e-2, 8e-3}), "out");
}

TYPED_TEST(CudaResidual, MatchesTheSum) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkResidual<TypeParam>(7, 300, true);  // C not a multiple of 8: element by element
  checkResidual<TypeParam>(9, 40, true);   // vectors of eight, the bias repeating every 5 of them
  checkResidual<TypeParam>(33, 2048, false);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
