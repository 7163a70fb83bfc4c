#include "engine/cuda/adamw_multi.h"
#include "engine/cuda/adamw_update.cuh"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/dtype.cuh"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;
constexpr size_t kChunk = 4096;  // elements a block updates: 16 a thread

struct Entry {
  float* param;
  __nv_bfloat16* paramBf16;
  const float* grad;
  float* m;
  float* v;
  size_t n;
  size_t firstChunk;  // chunks before this tensor's, over all tensors
  int decay;
  int vectors;  // every pointer aligned for adamwUpdate4 (16 bytes, the bf16 copy 8)
};

// Block b takes chunk b of all the tensors' chunks: the tensor is the last entry starting at or before b
// (tensors without elements start where the next one does and are passed over).
__global__ void adamwMultiKernel(const Entry* entries, int count, AdamWScalars s, const float* gradScale) {
  const size_t chunk = blockIdx.x;
  int lo = 0, hi = count;  // the first entry with firstChunk > chunk, by bisection
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (entries[mid].firstChunk <= chunk) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  const Entry e = entries[lo - 1];
  if (!e.decay) s.decay = 1.0f;  // what adamwScalars gives for a weight decay of 0
  const float scale = gradScale ? *gradScale : 1.0f;
  const size_t begin = (chunk - e.firstChunk) * kChunk;
  const size_t end = min(e.n, begin + kChunk);
  if (e.vectors && end - begin == kChunk) {
    // a whole chunk, four elements an access: scalar accesses reached 3.3 TB/s over the bench model's
    // 582 Mi parameters (5.5 ms) where the single-tensor kernel's grid-stride loop reached 4.05
#pragma unroll
    for (size_t i = begin + 4 * threadIdx.x; i < end; i += 4 * kThreads)
      adamwUpdate4(e.param, e.paramBf16, e.grad, e.m, e.v, i, s, scale);
    return;
  }
#pragma unroll 4
  for (size_t i = begin + threadIdx.x; i < end; i += kThreads)
    adamwUpdate(e.param, e.paramBf16, e.grad, e.m, e.v, i, s, scale);
}

}  // namespace

AdamWMultiTensor::AdamWMultiTensor(const std::vector<AdamWTensor>& tensors) {
  NvtxRange range("AdamWMultiTensor");
  std::vector<Entry> entries;
  entries.reserve(tensors.size());
  for (const AdamWTensor& t : tensors) {
    MOESCOPE_CUDA_REQUIRE("AdamWMultiTensor", t.n == 0 || (t.param && t.grad && t.m && t.v));
    const bool vectors = vectorizable(t.param) && vectorizable(t.grad) && vectorizable(t.m) &&
                         vectorizable(t.v) && reinterpret_cast<uintptr_t>(t.paramBf16) % 8 == 0;
    entries.push_back(
        Entry{t.param, t.paramBf16, t.grad, t.m, t.v, t.n, chunks_, t.decay ? 1 : 0, vectors ? 1 : 0});
    chunks_ += (t.n + kChunk - 1) / kChunk;
    elements_ += t.n;
  }
  MOESCOPE_CUDA_REQUIRE("AdamWMultiTensor", chunks_ < (size_t{1} << 31));
  count_ = entries.size();
  if (count_ == 0) return;
  table_ = deviceAlloc(count_ * sizeof(Entry));  // counted, as the stage's memory is
  const cudaError_t copied =
      cudaMemcpy(table_, entries.data(), count_ * sizeof(Entry), cudaMemcpyHostToDevice);
  if (copied != cudaSuccess) {
    deviceFree(table_);
    table_ = nullptr;
    MOESCOPE_CUDA_CHECK(copied);
  }
}

AdamWMultiTensor::~AdamWMultiTensor() {
  deviceFree(table_);
}

void AdamWMultiTensor::step(const AdamWParams& hp, int step, const float* gradScale,
                            cudaStream_t stream) const {
  NvtxRange range("adamwMultiTensorStep");
  MOESCOPE_CUDA_REQUIRE("AdamWMultiTensor::step", step >= 1);
  if (chunks_ == 0) return;
  adamwMultiKernel<<<static_cast<unsigned>(chunks_), kThreads, 0, stream>>>(
      static_cast<const Entry*>(table_), static_cast<int>(count_), adamwScalars(hp, step), gradScale);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
