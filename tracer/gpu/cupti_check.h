// Checks CUPTI and CUDA runtime calls, keeping file and line; throws GpuTracerError on failure.
#pragma once

#include <cuda_runtime_api.h>
#include <cupti.h>

#include <stdexcept>
#include <string>

namespace moescope::tracer::gpu {

class GpuTracerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throwCuptiError(CUptiResult result, const char* call, const char* file, int line);
[[noreturn]] void throwCudaError(cudaError_t result, const char* call, const char* file, int line);

}  // namespace moescope::tracer::gpu

#define MOESCOPE_CUPTI_CHECK(call)                                                                 \
  do {                                                                                             \
    CUptiResult moescope_cupti_result_ = (call);                                                   \
    if (moescope_cupti_result_ != CUPTI_SUCCESS)                                                   \
      ::moescope::tracer::gpu::throwCuptiError(moescope_cupti_result_, #call, __FILE__, __LINE__); \
  } while (0)

#define MOESCOPE_TRACER_CUDA_CHECK(call)                                                         \
  do {                                                                                           \
    cudaError_t moescope_cuda_result_ = (call);                                                  \
    if (moescope_cuda_result_ != cudaSuccess)                                                    \
      ::moescope::tracer::gpu::throwCudaError(moescope_cuda_result_, #call, __FILE__, __LINE__); \
  } while (0)
