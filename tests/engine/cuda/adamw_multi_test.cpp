#include "engine/cuda/adamw_multi.h"

#include "engine/cpu/ops.h"
#include "engine/cuda/adamw.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

// Every tensor's state in one flat buffer each, as the stage keeps them.
struct State {
  explicit State(size_t total) : p(total), g(total), m(total), v(total), pb(total) {}
  DeviceBuffer<float> p, g, m, v;
  DeviceBuffer<Bf16> pb;
};

void fill(State& s, size_t total, uint32_t seed) {
  s.p.upload(randomFloats(total, seed));
  s.g.upload(randomFloats(total, seed + 1));
  s.m.upload(randomFloats(total, seed + 2, -0.1f, 0.1f));
  s.v.upload(randomFloats(total, seed + 3, 0.0f, 0.01f));
  s.pb.poison();
}

// Two updates of tensors of awkward sizes (empty, one element, a chunk and one more, many chunks), half
// with weight decay, some with a bf16 copy, through one multi-tensor launch each and through adamwStep
// per tensor: the same bits. The tensors start 256-byte aligned (whole chunks in 16-byte accesses) but
// for the last two, one element off (whole chunks element by element). And one tensor against the CPU
// reference.
TEST(CudaAdamWMultiTensor, EqualsAdamWStepPerTensorBitForBit) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const std::vector<size_t> sizes = {0, 1, 7, 4096, 4097, 100003, 64, 12289, 8193, 4096};
  std::vector<size_t> offsets;
  size_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t shift = i + 2 >= sizes.size() ? 1 : 0;
    offsets.push_back(total + shift);
    total += (sizes[i] + shift + 63) / 64 * 64;
  }
  State multi(total), single(total);
  fill(multi, total, 31);
  fill(single, total, 31);
  DeviceBuffer<float> scale(1);
  scale.upload({0.7f});
  std::vector<AdamWTensor> tensors;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t o = offsets[i];
    tensors.push_back(AdamWTensor{multi.p.get() + o, i % 3 == 0 ? nullptr : multi.pb.get() + o,
                                  multi.g.get() + o, multi.m.get() + o, multi.v.get() + o, sizes[i],
                                  i % 2 == 1});
  }
  const AdamWMultiTensor adamw(tensors);
  EXPECT_EQ(adamw.tensors(), sizes.size());
  AdamWParams hp;
  hp.lr = 1e-3;
  hp.weightDecay = 0.1;
  for (int step = 1; step <= 2; ++step) {
    adamw.step(hp, step, scale.get(), nullptr);
    for (size_t i = 0; i < sizes.size(); ++i) {
      AdamWParams one = hp;
      one.weightDecay = i % 2 == 1 ? hp.weightDecay : 0.0;
      const size_t o = offsets[i];
      adamwStep(single.p.get() + o, i % 3 == 0 ? nullptr : single.pb.get() + o, single.g.get() + o,
                single.m.get() + o, single.v.get() + o, sizes[i], one, step, scale.get(), nullptr);
    }
  }
  const auto mp = multi.p.download(), sp = single.p.download(), mm = multi.m.download(),
             sm = single.m.download(), mv = multi.v.download(), sv = single.v.download();
  const auto mb = downloadAsFloat(multi.pb), sb = downloadAsFloat(single.pb);
  for (size_t i = 0; i < sizes.size(); ++i) {
    for (size_t k = offsets[i]; k < offsets[i] + sizes[i]; ++k) {
      ASSERT_EQ(mp[k], sp[k]) << "param of tensor " << i << " at " << k - offsets[i];
      ASSERT_EQ(mm[k], sm[k]) << "m of tensor " << i;
      ASSERT_EQ(mv[k], sv[k]) << "v of tensor " << i;
      if (i % 3 != 0) {
        ASSERT_FALSE(std::isnan(mb[k]))
            << "bf16 copy of tensor " << i << " not written at " << k - offsets[i];
        ASSERT_EQ(mb[k], sb[k]) << "bf16 copy of tensor " << i;
      }
    }
  }
  // The CPU reference for tensor 3 (4096 elements, weight decay), over the same two steps.
  auto p = randomFloats(total, 31), g = randomFloats(total, 32), m = randomFloats(total, 33, -0.1f, 0.1f),
       v = randomFloats(total, 34, 0.0f, 0.01f);
  const size_t o = offsets[3];
  for (int step = 1; step <= 2; ++step)
    cpu::adamwStep(p.data() + o, g.data() + o, m.data() + o, v.data() + o, sizes[3], hp, step, 0.7);
  const std::vector<float> got(mp.begin() + static_cast<long>(o),
                               mp.begin() + static_cast<long>(o + sizes[3]));
  const std::vector<float> ref(p.begin() + static_cast<long>(o), p.begin() + static_cast<long>(o + sizes[3]));
  expectClose(got, ref, {1e-6, 1e-5}, "param against the CPU reference");
}

TEST(CudaAdamWMultiTensor, NoTensorsIsNoLaunch) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const AdamWMultiTensor adamw({});
  adamw.step(AdamWParams{}, 1, nullptr, nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(adamw.elements(), 0u);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
