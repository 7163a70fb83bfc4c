#include "engine/cuda/moe_slicing.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

// A routing group with drops: n tokens, E experts, top-K, capacity 300 (of 375 on average).
struct Routing {
  int n = 1500, E = 8, K = 2, C = 64;
  std::vector<float> p;
  std::vector<int32_t> choice;
  std::vector<uint8_t> keep;
  std::vector<int32_t> order, offsets, slotOf;  // CPU reference layout
  Routing() {
    p = randomFloats(size_t(n) * E, 81, 0, 1);
    choice.resize(size_t(n) * K);
    cpu::routerTopK(choice.data(), p.data(), n, E, K);
    keep.resize(choice.size());
    cpu::routerCapacity(keep.data(), nullptr, choice.data(), n, E, K, 300);
    order.resize(choice.size());
    std::vector<int32_t> counts(E);
    const int a = cpu::dispatchOrder(order.data(), counts.data(), choice.data(), keep.data(), n, E, K);
    order.resize(a);
    offsets.assign(E + 1, 0);
    for (int e = 0; e < E; ++e) offsets[e + 1] = offsets[e] + counts[e];
    slotOf.resize(choice.size());
    cpu::dispatchSlots(slotOf.data(), order.data(), a, n * K);
  }
};

TEST(CudaMoeSlicing, ExpertOrderMatchesTheCpuDispatchOrder) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const Routing r;
  ASSERT_LT(r.order.size(), r.choice.size());  // some assignments were dropped
  DeviceBuffer<int32_t> dChoice(r.choice.size()), dOrder(r.choice.size()), dOffsets(r.E + 1),
      dSlot(r.choice.size());
  DeviceBuffer<uint8_t> dKeep(r.keep.size());
  dChoice.upload(r.choice);
  dKeep.upload(r.keep);
  dOrder.poison();
  dOffsets.poison();
  dSlot.poison();
  buildExpertOrder(dOrder.get(), dOffsets.get(), dSlot.get(), dChoice.get(), dKeep.get(), r.n, r.E, r.K,
                   nullptr);
  auto order = dOrder.download();
  order.resize(r.order.size());
  EXPECT_EQ(order, r.order);
  EXPECT_EQ(dOffsets.download(), r.offsets);
  EXPECT_EQ(dSlot.download(), r.slotOf);
}

template <typename T>
class CudaMoeSlicing : public ::testing::Test {};
TYPED_TEST_SUITE(CudaMoeSlicing, StorageTypes, StorageTypeNames);

// A rank holding experts 2..5: gather their rows, combine weighted outputs, and both backward passes,
// against the CPU's per-expert expertRows / gatherRows / scatterAddWeighted.
TYPED_TEST(CudaMoeSlicing, SliceOfExpertsMatchesTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  using T = TypeParam;
  const Routing r;
  const int n = r.n, E = r.E, K = r.K, C = r.C, e0 = 2, e1 = 6;
  const int j0 = r.offsets[e0], m = r.offsets[e1] - r.offsets[e0];
  const auto x = roundTo<T>(randomFloats(size_t(n) * C, 82));
  const auto src = roundTo<T>(randomFloats(size_t(m) * C, 83));
  const auto y0 = roundTo<T>(randomFloats(size_t(n) * C, 84));
  const auto dy = roundTo<T>(randomFloats(size_t(n) * C, 85));
  const auto dx0 = roundTo<T>(randomFloats(size_t(n) * C, 86));
  const auto dsrc0 = roundTo<T>(randomFloats(size_t(m) * C, 87));
  const auto dp0 = randomFloats(size_t(n) * E, 88);
  const auto dout = roundTo<T>(randomFloats(size_t(m) * C, 89));  // gradient of the gathered rows

  DeviceBuffer<int32_t> dChoice(r.choice.size()), dOrder(r.order.size()), dSlot(r.slotOf.size());
  DeviceBuffer<float> dP(r.p.size()), dDp(dp0.size());
  DeviceBuffer<T> dX(x.size()), dOut(src.size()), dSrc(src.size()), dY(y0.size()), dDy(dy.size()),
      dDx(dx0.size()), dDsrc(src.size()), dDout(dout.size());
  dChoice.upload(r.choice);
  dOrder.upload(r.order);
  dSlot.upload(r.slotOf);
  dP.upload(r.p);
  dDp.upload(dp0);
  uploadAs(dX, x);
  uploadAs(dSrc, src);
  uploadAs(dY, y0);
  uploadAs(dDy, dy);
  uploadAs(dDx, dx0);
  uploadAs(dDsrc, dsrc0);
  uploadAs(dDout, dout);
  dOut.poison();
  gatherAssignments(dOut.get(), dX.get(), dOrder.get(), j0, m, K, C, nullptr);
  gatherAssignmentsBackward(dDx.get(), dDout.get(), dSlot.get(), j0, m, n, K, C, nullptr);
  combineAssignments(dY.get(), dSrc.get(), dP.get(), dChoice.get(), dSlot.get(), j0, m, n, E, K, C, nullptr);
  combineAssignmentsBackward(dDsrc.get(), dDp.get(), dDy.get(), dSrc.get(), dP.get(), dChoice.get(),
                             dOrder.get(), j0, m, E, K, C, nullptr);

  // CPU: per expert, in slot order (slots of expert e are its tokens in token order)
  std::vector<float> out(src.size()), y = y0, dx = dx0, dsrc = dsrc0, dp = dp0;
  std::vector<int32_t> rows(n);
  for (int e = e0; e < e1; ++e) {
    const int me = cpu::expertRows(rows.data(), r.choice.data(), r.keep.data(), n, K, e);
    ASSERT_EQ(me, r.offsets[e + 1] - r.offsets[e]);
    const size_t off = size_t(r.offsets[e] - j0) * C;
    cpu::gatherRows(out.data() + off, x.data(), rows.data(), me, C);
    cpu::scatterAddWeighted(y.data(), src.data() + off, r.p.data(), rows.data(), me, C, E, e);
    cpu::scatterAddWeightedBackward(dsrc.data() + off, dp.data(), dy.data(), src.data() + off, r.p.data(),
                                    rows.data(), me, C, E, e);
  }
  for (int e = e0; e < e1; ++e) {
    const int me = cpu::expertRows(rows.data(), r.choice.data(), r.keep.data(), n, K, e);
    const size_t off = size_t(r.offsets[e] - j0) * C;
    cpu::gatherRowsBackward(dx.data(), dout.data() + off, rows.data(), me, C);
  }
  expectClose(downloadAsFloat(dOut), out, {0, 0}, "gathered rows");
  expectClose(downloadAsFloat(dY), y, toleranceFor<T>({1e-6, 1e-5}, {1e-2, 1e-2}), "combined y");
  expectClose(downloadAsFloat(dDsrc), dsrc, toleranceFor<T>({1e-6, 1e-5}, {1e-2, 1e-2}), "dsrc");
  expectClose(dDp.download(), dp, {1e-4, 1e-4}, "dp");
  expectClose(downloadAsFloat(dDx), dx, toleranceFor<T>({1e-6, 1e-5}, {2e-2, 1e-2}), "dx");
}

// The PPMoE stage's per-expert scatter and gather backward, one expert's slots per call (row by row),
// against the CPU's scatterAddWeighted and gatherRowsBackward of that expert.
TYPED_TEST(CudaMoeSlicing, OneExpertsRowsMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  using T = TypeParam;
  const Routing r;
  const int n = r.n, E = r.E, K = r.K, C = r.C, a = r.offsets[E];
  const auto src = roundTo<T>(randomFloats(size_t(a) * C, 91));
  const auto dout = roundTo<T>(randomFloats(size_t(a) * C, 92));
  const auto y0 = roundTo<T>(randomFloats(size_t(n) * C, 93));
  const auto dx0 = roundTo<T>(randomFloats(size_t(n) * C, 94));
  DeviceBuffer<int32_t> dChoice(r.choice.size()), dOrder(r.order.size());
  DeviceBuffer<float> dP(r.p.size());
  DeviceBuffer<T> dSrc(src.size()), dDout(dout.size()), dY(y0.size()), dDx(dx0.size());
  dChoice.upload(r.choice);
  dOrder.upload(r.order);
  dP.upload(r.p);
  uploadAs(dSrc, src);
  uploadAs(dDout, dout);
  uploadAs(dY, y0);
  uploadAs(dDx, dx0);
  std::vector<float> y = y0, dx = dx0;
  std::vector<int32_t> rows(n);
  for (int e = 0; e < E; ++e) {
    const int j0 = r.offsets[e], m = r.offsets[e + 1] - j0;
    scatterExpertRows(dY.get(), dSrc.get() + size_t(j0) * C, dP.get(), dChoice.get(), dOrder.get(), j0, m, E,
                      K, C, nullptr);
    gatherExpertRowsBackward(dDx.get(), dDout.get() + size_t(j0) * C, dOrder.get(), j0, m, K, C, nullptr);
    ASSERT_EQ(cpu::expertRows(rows.data(), r.choice.data(), r.keep.data(), n, K, e), m);
    cpu::scatterAddWeighted(y.data(), src.data() + size_t(j0) * C, r.p.data(), rows.data(), m, C, E, e);
    cpu::gatherRowsBackward(dx.data(), dout.data() + size_t(j0) * C, rows.data(), m, C);
  }
  expectClose(downloadAsFloat(dY), y, toleranceFor<T>({1e-6, 1e-5}, {2e-2, 1e-2}), "scattered y");
  expectClose(downloadAsFloat(dDx), dx, toleranceFor<T>({1e-6, 1e-5}, {2e-2, 1e-2}), "dx");
}

}  // namespace
}  // namespace moescope::engine::cuda::test
