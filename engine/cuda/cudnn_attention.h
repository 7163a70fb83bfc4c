// Causal multi-head self-attention in bf16 through cuDNN's fused scaled-dot-product attention. The
// forward and backward passes are each one cuDNN graph (matmul, scale, causal mask, softmax with its
// log-sum-exp, matmul; and the matching gradient graph), built on the backend API as cudnn-frontend
// builds its SDPA node, which cuDNN 9 matches to its fused flash-attention kernels. Why cuDNN rather than
// kernels of our own: PyTorch SDPA's cuDNN backend reaches 457/319 TFLOP/s forward/backward at the
// benchmark shape on an H200, against 161/141 for flash_attention.h (docs/bench-kernels.md); matching it
// takes Hopper's wgmma, TMA and warp specialisation (FlashAttention-3) and much tuning, which cuDNN
// ships. cudnn-frontend (the C++ header library over that API) is not a Debian package, hence the
// backend API directly. libcudnn is opened at run time (cudnn_library.h): where it is absent the engine
// keeps flash_attention.h.
//
// Same layout as flash_attention.h: packed qkv [B,T,3·NH·D], out [B,T,NH·D], lse [B,NH,T] (the same
// log-sum-exp, so either backward pass can follow either forward pass). Unlike it, the backward pass
// overwrites dqkv (cuDNN writes dQ, dK and dV). CPU reference: engine/cpu/ops.h attentionForward and
// attentionBackward.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>

namespace moescope::engine::cuda {

// Whether the cuDNN path handles the shape: head size a multiple of 8 up to 128, sequence a multiple of
// 128 (below cuDNN 9.16 other lengths need an extra padding mask in the backward graph).
bool cudnnAttentionSupports(int Tlen, int D);
// Whether cuDNN 9 could be loaded here (says nothing of a device); the reason where not.
bool cudnnAttentionAvailable();
std::string cudnnAttentionUnavailableReason();

// Builds every tensor and operation descriptor of the forward and backward graphs of the shape and
// finalizes each: needs cuDNN but no device (only the operation graph needs a handle). "" when all
// finalize, else the first error. Checks the graphs' construction where no GPU is.
std::string cudnnAttentionCheckDescriptors(int B, int Tlen, int NH, int D);

class CudnnAttention {
 public:
  // A cuDNN handle on the current device. Throws CudaError where cuDNN is unavailable.
  CudnnAttention();
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Bytes of workspace forward() and backward() need at this shape. Builds and keeps both execution
  // plans: the first call for a shape takes a while (cuDNN compiles its kernels at run time).
  size_t workspaceBytes(int B, int Tlen, int NH, int D);
  // out [B,T,NH·D] and lse [B,NH,T] overwritten; workspace of workspaceBytes.
  void forward(__nv_bfloat16* out, float* lse, const __nv_bfloat16* qkv, void* workspace, int B, int Tlen,
               int NH, int D, cudaStream_t stream);
  // dqkv [B,T,3·NH·D] overwritten with the gradient; dout [B,T,NH·D]; qkv, out and lse as given to /
  // produced by the forward pass; workspace of workspaceBytes, overwritten.
  void backward(__nv_bfloat16* dqkv, const __nv_bfloat16* dout, const __nv_bfloat16* qkv,
                const __nv_bfloat16* out, const float* lse, void* workspace, int B, int Tlen, int NH, int D,
                cudaStream_t stream);
  // cuDNN's version and the engines it chose for the shape, for logs ("cuDNN 91400, forward engine 8,
  // backward engine 9").
  std::string describe(int B, int Tlen, int NH, int D);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moescope::engine::cuda
