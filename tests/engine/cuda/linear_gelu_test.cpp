#include "engine/cuda/linear_gelu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaLinearGelu : public ::testing::Test {};
TYPED_TEST_SUITE(CudaLinearGelu, StorageTypes, StorageTypeNames);

struct FfnCase {
  int n, C, F;
  float biasLo = -1, biasHi = 1;  // the first layer's bias: moves the pre-activations
  float wScale = 0.2f;            // weights uniform in [-wScale, wScale]
};

struct FfnResult {
  std::vector<float> pre, h, dpre, db;               // from the GPU
  std::vector<double> refPre, refH, refDpre, refDb;  // CPU reference (tanh GELU, MODEL.md)
  std::vector<double> erfH, erfDpre;                 // the same with the error-function GELU
  std::vector<double> dact, db0;                     // dy W2 (reference), db before the call
  std::vector<double> dbAbs;                         // Σ_rows |dpre| per column (reference)
  bool forwardFused = false, backwardFused = false;
  std::vector<std::string> refusals;  // why cuBLASLt ran no epilogue, where it did not
};

double geluErf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
double geluErfGrad(double x) {
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}

// pre = x W1ᵀ + b1, h = gelu(pre) (linearGeluForward); dpre = gelu'(pre) ⊙ (dy W2), db1 += Σ_rows dpre
// (linearBackwardDgelu), each against the CPU reference.
template <typename T>
FfnResult runFfn(CublasLt& lt, const FfnCase& c, uint32_t seed) {
  const auto x = roundTo<T>(randomFloats(size_t(c.n) * c.C, seed));
  const auto w1 = roundTo<T>(randomFloats(size_t(c.F) * c.C, seed + 1, -c.wScale, c.wScale));
  const auto b1 = roundTo<T>(randomFloats(c.F, seed + 2, c.biasLo, c.biasHi));
  const auto w2 = roundTo<T>(randomFloats(size_t(c.C) * c.F, seed + 3, -c.wScale, c.wScale));
  const auto dy = roundTo<T>(randomFloats(size_t(c.n) * c.C, seed + 4));
  const auto db0 = randomFloats(c.F, seed + 5);
  DeviceBuffer<T> dX(x.size()), dW1(w1.size()), dB1(b1.size()), dW2(w2.size()), dDy(dy.size()),
      dPre(size_t(c.n) * c.F), dH(size_t(c.n) * c.F), dDpre(size_t(c.n) * c.F);
  DeviceBuffer<float> dDb(c.F);
  uploadAs(dX, x);
  uploadAs(dW1, w1);
  uploadAs(dB1, b1);
  uploadAs(dW2, w2);
  uploadAs(dDy, dy);
  dDb.upload(db0);
  dPre.poison();
  dH.poison();
  dDpre.poison();
  FfnResult r;
  r.forwardFused =
      linearGeluForward(lt, dH.get(), dPre.get(), dX.get(), dW1.get(), dB1.get(), c.n, c.C, c.F, nullptr);
  r.backwardFused = linearBackwardDgelu(lt, dDpre.get(), dDb.get(), dDy.get(), dW2.get(), dPre.get(), c.n,
                                        c.F, c.C, nullptr);
  r.pre = downloadAsFloat(dPre);
  r.h = downloadAsFloat(dH);
  r.dpre = downloadAsFloat(dDpre);
  r.db = dDb.download();
  r.refusals = lt.epilogueRefusals();
  r.db0.assign(db0.begin(), db0.end());

  const std::vector<double> xd(x.begin(), x.end()), w1d(w1.begin(), w1.end()), b1d(b1.begin(), b1.end()),
      w2d(w2.begin(), w2.end()), dyd(dy.begin(), dy.end());
  const size_t nf = size_t(c.n) * c.F;
  r.refPre.assign(nf, 0.0);
  cpu::linearForward(r.refPre.data(), xd.data(), w1d.data(), b1d.data(), c.n, c.C, c.F);
  // The epilogue applies GELU to the product before rounding it to T; the separate kernel to pre as
  // stored. The backward pass reads pre as stored either way, as the engine's does.
  const std::vector<double> preT(r.pre.begin(), r.pre.end());
  const std::vector<double>& geluIn = r.forwardFused ? r.refPre : preT;
  r.refH.assign(nf, 0.0);
  cpu::geluForward(r.refH.data(), geluIn.data(), nf);
  std::vector<double> dact(nf, 0.0);
  cpu::linearBackward(dact.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr), dyd.data(),
                      static_cast<const double*>(nullptr), w2d.data(), c.n, c.F, c.C);
  r.refDpre.assign(nf, 0.0);
  cpu::geluBackward(r.refDpre.data(), preT.data(), dact.data(), nf);
  r.refDb.assign(db0.begin(), db0.end());
  r.dbAbs.assign(c.F, 0.0);
  for (size_t i = 0; i < nf; ++i) {
    r.refDb[i % c.F] += r.refDpre[i];
    r.dbAbs[i % c.F] += std::abs(r.refDpre[i]);
  }
  r.erfH.resize(nf);
  r.erfDpre.resize(nf);
  for (size_t i = 0; i < nf; ++i) {
    r.erfH[i] = geluErf(geluIn[i]);
    r.erfDpre[i] = geluErfGrad(preT[i]) * dact[i];
  }
  r.dact = std::move(dact);
  return r;
}

// db's bound: fp32 sums (the bias-gradient kernel, or the fp32 epilogue) to 1e-3. The bf16 epilogue writes
// the bias gradient in D's type (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER: "the same type as the
// output elements"), so its sum is rounded to bf16 once before it is added: up to one bf16 ulp of the
// sum, 2^-8 of it relative. On an H200 its sums also differed from the reference's by up to 0.03 over
// 300 rows of terms near 1 (where they nearly cancel): the sum is of the terms as rounded to bf16,
// each off by up to 2^-9 of itself, so the bound adds 2^-8 of Σ|dpre| (the rounding, and as much again
// for the order of the sum). The bias-gradient kernel (separate kernels: F not a multiple of 8) sums
// dpre as stored in bf16 too, so bf16 gets that term either way. A bias gradient of the wrong rows or none is
// off by the sum itself.
template <typename T>
void expectBiasGradient(const FfnResult& r) {
  const bool bf16 = !std::is_same_v<T, float>;
  const bool bf16Sum = bf16 && r.backwardFused;
  int reported = 0;
  for (size_t i = 0; i < r.db.size(); ++i) {
    const double sum = r.refDb[i] - r.db0[i];
    const double bound = 1e-3 + 1e-3 * std::abs(r.refDb[i]) +
                         (bf16Sum ? std::ldexp(std::abs(sum), -8) : 0.0) +
                         (bf16 ? std::ldexp(r.dbAbs[i], -8) : 0.0);
    if (std::abs(r.db[i] - r.refDb[i]) > bound && reported++ < 10)
      ADD_FAILURE() << "db[" << i << "]: got " << r.db[i] << ", reference " << r.refDb[i] << " (bound "
                    << bound << ")";
  }
}

TYPED_TEST(CudaLinearGelu, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  using T = TypeParam;
  CublasLt lt;
  for (const FfnCase c :
       {FfnCase{64, 128, 256}, FfnCase{300, 256, 1024}, FfnCase{37, 24, 40}, FfnCase{33, 16, 100}}) {
    SCOPED_TRACE(testing::Message() << "n=" << c.n << " C=" << c.C << " F=" << c.F);
    const FfnResult r = runFfn<T>(lt, c, 301);
    std::printf("%s n=%d C=%d F=%d: forward %s, backward %s\n", precisionName<T>(), c.n, c.C, c.F,
                r.forwardFused ? "epilogue" : "separate kernels",
                r.backwardFused ? "epilogue" : "separate kernels");
    for (const std::string& why : r.refusals) std::printf("  %s\n", why.c_str());
    if (c.F % 8 != 0) {
      EXPECT_FALSE(r.forwardFused) << "the aux matrix's leading dimension must be a multiple of 8";
      EXPECT_FALSE(r.backwardFused);
    }
    expectClose(r.pre, r.refPre, toleranceFor<T>({1e-4, 1e-4}, {2e-2, 1e-2}), "pre");
    expectClose(r.h, r.refH, toleranceFor<T>({1e-4, 1e-3}, {2e-2, 1e-2}), "h");
    expectClose(r.dpre, r.refDpre, toleranceFor<T>({1e-4, 1e-3}, {2e-2, 1e-2}), "dpre");
    expectBiasGradient<T>(r);
    EXPECT_LT(relativeError(r.h, r.refH), toleranceFor<T>({1e-5, 0}, {1e-2, 0}).tol);
    EXPECT_LT(relativeError(r.dpre, r.refDpre), toleranceFor<T>({1e-5, 0}, {1e-2, 0}).tol);
  }
}

// MODEL.md's GELU is the tanh approximation; cuBLASLt's epilogue documents only "GELU". Where the two
// GELUs differ most, the negative tail (at x = -3: -0.00364 against -0.00405), the epilogue's results must
// follow the tanh one, and the check must be able to tell them apart: a simulation of these inputs in
// Python with bf16 rounding put every h and 54% of dpre (fp32: 87%) outside the bounds of the erf GELU.
//
// The bound. cuBLASLt states no accuracy for its GELU. On an H200 its fp32 results differed from the
// tanh GELU by up to 4e-6, growing into the tail, where gelu = x (1 + tanh u) / 2 cancels: the error of
// a tanh approximated in hardware (MUFU.TANH, PTX tanh.approx.f32; its largest relative error over all
// floats, measured exhaustively, is 1.11e-5: N. Juffa, NVIDIA developer forums, "Hardware-accelerated
// tanh() on Turing"), not of the product. So each element's bound is the error of the tanh,
// δ = 2^-16 (1.53e-5, above that maximum), carried through the GELU: ∂gelu/∂tanh = x/2 and
// ∂gelu'/∂tanh = 1/2 − x·tanh(u)·u', times dact for dpre; beside it the fp32 or bf16 rounding bound the
// other tests use. At x = -3 that is 2.3e-5 for h and 7.2e-5·|dact| for dpre, against a tanh-erf gap of
// 4.1e-4 and 4.0e-4·|dact|: the check still tells the two apart.
struct TanhBound {
  double dh, ddpre;  // the bounds' terms from the tanh's error, for h and for dpre
};
TanhBound tanhBound(double x, double dact) {
  constexpr double kDelta = 1.0 / 65536.0;
  const double k = std::sqrt(2.0 / M_PI), u = k * (x + 0.044715 * x * x * x);
  const double du = k * (1.0 + 3.0 * 0.044715 * x * x), t = std::tanh(u);
  return {0.5 * std::abs(x) * kDelta, std::abs((0.5 - x * t * du) * dact) * kDelta};
}

TYPED_TEST(CudaLinearGelu, GeluIsTheTanhApproximation) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  using T = TypeParam;
  CublasLt lt;
  // Pre-activations in [-3.5, -2.3]: small weights, a negative bias.
  const FfnResult r = runFfn<T>(lt, FfnCase{256, 64, 512, -3.4f, -2.4f, 0.02f}, 401);
  const Tolerance value = toleranceFor<T>({2e-5, 1e-3}, {2e-5, 8e-3});
  // bf16's dpre: up to 0.70% off the tanh reference on an H200 (3 of 131072 past 0.4%), as if the
  // epilogue rounded dy W2 to bf16 before multiplying by GELU' and rounded again (2^-9 each; cuBLASLt
  // does not say), with GELU' cancelling in the tail (0.5 (1 + tanh u) beside x/2 (1 - tanh² u) u').
  const Tolerance grad = toleranceFor<T>({1e-6, 1e-3}, {5e-6, 1e-2});
  size_t hOutside = 0, dOutside = 0, hFailed = 0, dFailed = 0;
  double hErr = 0, dErr = 0;
  for (size_t i = 0; i < r.h.size(); ++i) {
    // h's GELU input: the product as the epilogue had it, or pre as stored (runFfn).
    const double x = r.forwardFused ? r.refPre[i] : static_cast<double>(r.pre[i]);
    const TanhBound tb = tanhBound(x, r.dact[i]);
    const double xd = r.pre[i];  // dpre's: pre as stored
    const TanhBound tbd = tanhBound(xd, r.dact[i]);
    const double hBound = value.tol + std::abs(r.refH[i]) * value.eps + tb.dh;
    const double dBound = grad.tol + std::abs(r.refDpre[i]) * grad.eps + tbd.ddpre;
    const double hE = std::abs(r.h[i] - r.refH[i]), dE = std::abs(r.dpre[i] - r.refDpre[i]);
    if (hE > hBound && hFailed++ < 10)
      ADD_FAILURE() << "h (tanh GELU)[" << i << "]: got " << r.h[i] << ", reference " << r.refH[i];
    if (dE > dBound && dFailed++ < 10)
      ADD_FAILURE() << "dpre (tanh GELU)[" << i << "]: got " << r.dpre[i] << ", reference " << r.refDpre[i];
    hOutside += std::abs(r.h[i] - r.erfH[i]) > value.tol + std::abs(r.erfH[i]) * value.eps + tb.dh;
    dOutside += std::abs(r.dpre[i] - r.erfDpre[i]) > grad.tol + std::abs(r.erfDpre[i]) * grad.eps + tbd.ddpre;
    hErr = std::max(hErr, hE);
    dErr = std::max(dErr, dE);
  }
  std::printf(
      "%s: forward %s, backward %s; largest error against the tanh GELU %.3g (h), %.3g (dpre); "
      "outside the bounds of the erf GELU: %zu and %zu of %zu\n",
      precisionName<T>(), r.forwardFused ? "epilogue" : "separate kernels",
      r.backwardFused ? "epilogue" : "separate kernels", hErr, dErr, hOutside, dOutside, r.h.size());
  for (const std::string& why : r.refusals) std::printf("  %s\n", why.c_str());
  EXPECT_GT(hOutside, r.h.size() / 2) << "the check cannot tell the two GELUs apart";
  EXPECT_GT(dOutside, r.h.size() / 4) << "the check cannot tell the two GELU derivatives apart";
}

TEST(CudaLinearGelu, WithoutABiasGradient) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  CublasLt lt;
  const int n = 48, in = 64, out = 32;
  const auto pre = roundTo<Bf16>(randomFloats(size_t(n) * in, 501, -2, 2));
  const auto w = roundTo<Bf16>(randomFloats(size_t(out) * in, 502, -0.2f, 0.2f));
  const auto dy = roundTo<Bf16>(randomFloats(size_t(n) * out, 503));
  DeviceBuffer<Bf16> dPre(pre.size()), dW(w.size()), dDy(dy.size()), dDpre(pre.size());
  uploadAs(dPre, pre);
  uploadAs(dW, w);
  uploadAs(dDy, dy);
  dDpre.poison();
  linearBackwardDgelu(lt, dDpre.get(), nullptr, dDy.get(), dW.get(), dPre.get(), n, in, out, nullptr);
  const std::vector<double> pred(pre.begin(), pre.end()), wd(w.begin(), w.end()), dyd(dy.begin(), dy.end());
  std::vector<double> dact(pre.size(), 0.0), dpre(pre.size(), 0.0);
  cpu::linearBackward(dact.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr), dyd.data(),
                      static_cast<const double*>(nullptr), wd.data(), n, in, out);
  cpu::geluBackward(dpre.data(), pred.data(), dact.data(), dpre.size());
  expectClose(downloadAsFloat(dDpre), dpre, {2e-2, 1e-2}, "dpre");
}

}  // namespace
}  // namespace moescope::engine::cuda::test
