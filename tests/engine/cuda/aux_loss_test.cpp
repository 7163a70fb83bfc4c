#include "engine/cuda/aux_loss.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

TEST(CudaAuxLoss, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  for (const int E : {16, 40}) {  // one chunk of 32 experts, and two
    SCOPED_TRACE(testing::Message() << "E=" << E);
    const int n = 3000, K = 2;
    const auto logits = randomFloats(size_t(n) * E, 121, -2, 2);
    std::vector<float> p(logits.size());
    cpu::softmaxForward(p.data(), logits.data(), n, E);
    std::vector<int32_t> choice(size_t(n) * K);
    cpu::routerTopK(choice.data(), p.data(), n, E, K);
    const auto dp0 = randomFloats(p.size(), 122);
    DeviceBuffer<float> dP(p.size()), dF(E), dMean(E), dAux(1), dDp(p.size());
    DeviceBuffer<int32_t> dChoice(choice.size());
    dP.upload(p);
    dChoice.upload(choice);
    dDp.upload(dp0);
    dF.poison();
    dMean.poison();
    dAux.poison();
    auxLossForward(dF.get(), dMean.get(), dAux.get(), dP.get(), dChoice.get(), n, E, K, nullptr);
    const float daux = 0.37f;
    auxLossBackward(dDp.get(), dF.get(), daux, n, E, nullptr);

    const std::vector<double> pd(p.begin(), p.end());
    std::vector<double> f(E), mean(E, 0.0), dp(dp0.begin(), dp0.end());
    const double aux = cpu::auxLossForward(f.data(), pd.data(), choice.data(), n, E, K);
    for (int i = 0; i < n; ++i)
      for (int e = 0; e < E; ++e) mean[e] += pd[size_t(i) * E + e] / n;
    cpu::auxLossBackward(dp.data(), f.data(), double(daux), n, E);
    expectClose(dF.download(), f, {1e-7, 1e-6}, "f");
    expectClose(dMean.download(), mean, {1e-6, 1e-5}, "P");
    expectClose(dAux.download(), std::vector<double>{aux}, {1e-6, 1e-5}, "aux");
    expectClose(dDp.download(), dp, {1e-6, 1e-5}, "dp");
  }
}

}  // namespace
}  // namespace moescope::engine::cuda::test
