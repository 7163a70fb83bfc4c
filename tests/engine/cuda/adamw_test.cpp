#include "engine/cuda/adamw.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

TEST(CudaAdamW, StepMatchesTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const size_t n = 100003;
  auto p = randomFloats(n, 21);
  const auto g = randomFloats(n, 22);
  auto m = randomFloats(n, 23, -0.1f, 0.1f);
  auto v = randomFloats(n, 24, 0.0f, 0.01f);
  AdamWParams hp;
  hp.lr = 1e-3;
  hp.weightDecay = 0.1;
  const int step = 3;
  const float scale = 0.5f;
  DeviceBuffer<float> dP(n), dG(n), dM(n), dV(n), dScale(1);
  DeviceBuffer<Bf16> dPb(n);
  dP.upload(p);
  dG.upload(g);
  dM.upload(m);
  dV.upload(v);
  dScale.upload({scale});
  dPb.poison();
  adamwStep(dP.get(), dPb.get(), dG.get(), dM.get(), dV.get(), n, hp, step, dScale.get(), nullptr);
  cpu::adamwStep(p.data(), g.data(), m.data(), v.data(), n, hp, step, scale);
  const auto gotP = dP.download();
  expectClose(gotP, p, {1e-6, 1e-5}, "param");
  expectClose(dM.download(), m, {1e-7, 1e-5}, "m");
  expectClose(dV.download(), v, {1e-9, 1e-5}, "v");
  const auto gotPb = downloadAsFloat(dPb);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(gotPb[i], bf16BitsToFloat(floatToBf16Bits(gotP[i]))) << i;
}

TEST(CudaAdamW, NoScaleAndNoBf16Copy) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const size_t n = 1000;
  auto p = randomFloats(n, 25);
  const auto g = randomFloats(n, 26);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  AdamWParams hp;
  DeviceBuffer<float> dP(n), dG(n), dM(n), dV(n);
  dP.upload(p);
  dG.upload(g);
  dM.upload(m);
  dV.upload(v);
  adamwStep(dP.get(), nullptr, dG.get(), dM.get(), dV.get(), n, hp, 1, nullptr, nullptr);
  cpu::adamwStep(p.data(), g.data(), m.data(), v.data(), n, hp, 1, 1.0);
  expectClose(dP.download(), p, {1e-6, 1e-5}, "param");
}

}  // namespace
}  // namespace moescope::engine::cuda::test
