#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/embedding.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void embeddingForwardKernel(T* out, const int32_t* tokens, const T* wte, const T* wpe, int Tlen,
                                       int C) {
  const size_t bt = blockIdx.x;
  const size_t t = bt % Tlen;
  const T* we = wte + static_cast<size_t>(tokens[bt]) * C;
  const T* pe = wpe + t * C;
  T* o = out + bt * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = fromFloat<T>(toFloat(we[c]) + toFloat(pe[c]));
}

template <typename T>
__global__ void embeddingBackwardKernel(float* dwte, float* dwpe, const T* dout, const int32_t* tokens,
                                        int Tlen, int C) {
  const size_t bt = blockIdx.x;
  const size_t t = bt % Tlen;
  const T* d = dout + bt * C;
  float* dwe = dwte ? dwte + static_cast<size_t>(tokens[bt]) * C : nullptr;
  float* dpe = dwpe ? dwpe + t * C : nullptr;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = toFloat(d[c]);
    if (dwe) atomicAdd(&dwe[c], g);
    if (dpe) atomicAdd(&dpe[c], g);
  }
}

}  // namespace

template <typename T>
void embeddingForward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tlen, int C,
                      cudaStream_t stream) {
  NvtxRange range("embeddingForward");
  MOESCOPE_CUDA_REQUIRE("embeddingForward", B >= 0 && Tlen > 0 && C > 0);
  if (B == 0) return;
  MOESCOPE_CUDA_REQUIRE("embeddingForward", out && tokens && wte && wpe);
  embeddingForwardKernel<T><<<static_cast<unsigned>(B) * static_cast<unsigned>(Tlen), kThreads, 0, stream>>>(
      out, tokens, wte, wpe, Tlen, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void embeddingBackward(float* dwte, float* dwpe, const T* dout, const int32_t* tokens, int B, int Tlen, int C,
                       cudaStream_t stream) {
  NvtxRange range("embeddingBackward");
  MOESCOPE_CUDA_REQUIRE("embeddingBackward", B >= 0 && Tlen > 0 && C > 0);
  if (B == 0 || (dwte == nullptr && dwpe == nullptr)) return;
  MOESCOPE_CUDA_REQUIRE("embeddingBackward", dout && tokens);
  embeddingBackwardKernel<T><<<static_cast<unsigned>(B) * static_cast<unsigned>(Tlen), kThreads, 0, stream>>>(
      dwte, dwpe, dout, tokens, Tlen, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void embeddingForward<float>(float*, const int32_t*, const float*, const float*, int, int, int,
                                      cudaStream_t);
template void embeddingForward<__nv_bfloat16>(__nv_bfloat16*, const int32_t*, const __nv_bfloat16*,
                                              const __nv_bfloat16*, int, int, int, cudaStream_t);
template void embeddingBackward<float>(float*, float*, const float*, const int32_t*, int, int, int,
                                       cudaStream_t);
template void embeddingBackward<__nv_bfloat16>(float*, float*, const __nv_bfloat16*, const int32_t*, int, int,
                                               int, cudaStream_t);

}  // namespace moescope::engine::cuda
