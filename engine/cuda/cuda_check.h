// Error checking and small helpers shared by the CUDA kernels' launchers. Every CUDA and cuBLAS call is
// checked by a macro that keeps the call, file and line and throws CudaError (library code never exits).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace moescope::engine::cuda {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throwCudaError(cudaError_t result, const char* call, const char* file, int line);
[[noreturn]] void throwCublasError(cublasStatus_t result, const char* call, const char* file, int line);
// A launcher's argument check failed: names the launcher and the condition.
[[noreturn]] void throwShapeError(const char* launcher, const char* condition, const char* file, int line);

inline unsigned ceilDiv(size_t a, size_t b) {
  return static_cast<unsigned>((a + b - 1) / b);
}

// Blocks of `threads` for a grid-stride loop over n items: one item a thread, at most 65535·8 blocks
// (the loop covers the rest).
inline unsigned gridStrideBlocks(size_t n, size_t threads) {
  const size_t wanted = (n + threads - 1) / threads;
  const size_t most = size_t{65535} * 8;
  return static_cast<unsigned>(wanted < most ? wanted : most);
}

// An NVTX range in the "moescope" domain's default category, open for the scope (one per launcher).
class NvtxRange {
 public:
  explicit NvtxRange(const char* name);
  ~NvtxRange();
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace moescope::engine::cuda

#define MOESCOPE_CUDA_CHECK(call)                                                                 \
  do {                                                                                            \
    const cudaError_t moescope_cuda_status_ = (call);                                             \
    if (moescope_cuda_status_ != cudaSuccess)                                                     \
      ::moescope::engine::cuda::throwCudaError(moescope_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define MOESCOPE_CUBLAS_CHECK(call)                                                                   \
  do {                                                                                                \
    const cublasStatus_t moescope_cublas_status_ = (call);                                            \
    if (moescope_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::moescope::engine::cuda::throwCublasError(moescope_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)

// Checks the kernel launched just before (configuration errors; execution errors surface at the next
// synchronising call).
#define MOESCOPE_CUDA_CHECK_LAUNCH() MOESCOPE_CUDA_CHECK(cudaGetLastError())

// A launcher's precondition on its arguments.
#define MOESCOPE_CUDA_REQUIRE(launcher, cond)                                                    \
  do {                                                                                           \
    if (!(cond)) ::moescope::engine::cuda::throwShapeError(launcher, #cond, __FILE__, __LINE__); \
  } while (0)
