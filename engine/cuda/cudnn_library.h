// cuDNN, loaded at run time: libcudnn.so.9 is opened with dlopen on first use, so moescope-cli and the
// GPU tests start and run where cuDNN is absent (the attention then stays on the engine's own fused
// kernels). Only cuDNN's graph (backend) API is used, through the function pointers below; cuDNN's
// headers give the types and enums at build time and nothing of the library is linked.
#pragma once

#include <cudnn_graph.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace moescope::engine::cuda {

struct CudnnLibrary {
  std::string path;    // what was opened
  size_t version = 0;  // cudnnGetVersion(): 91400 for 9.14.0
  size_t (*getVersion)() = nullptr;
  const char* (*getErrorString)(cudnnStatus_t) = nullptr;
  void (*getLastErrorString)(char*, size_t) = nullptr;
  cudnnStatus_t (*create)(cudnnHandle_t*) = nullptr;
  cudnnStatus_t (*destroy)(cudnnHandle_t) = nullptr;
  cudnnStatus_t (*setStream)(cudnnHandle_t, cudaStream_t) = nullptr;
  cudnnStatus_t (*createDescriptor)(cudnnBackendDescriptorType_t, cudnnBackendDescriptor_t*) = nullptr;
  cudnnStatus_t (*destroyDescriptor)(cudnnBackendDescriptor_t) = nullptr;
  cudnnStatus_t (*setAttribute)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t,
                                cudnnBackendAttributeType_t, int64_t, const void*) = nullptr;
  cudnnStatus_t (*getAttribute)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t,
                                cudnnBackendAttributeType_t, int64_t, int64_t*, void*) = nullptr;
  cudnnStatus_t (*finalize)(cudnnBackendDescriptor_t) = nullptr;
  cudnnStatus_t (*execute)(cudnnHandle_t, cudnnBackendDescriptor_t, cudnnBackendDescriptor_t) = nullptr;
};

// The library, opened once per process: the file MOESCOPE_CUDNN_LIBRARY names if set, else
// libcudnn.so.9 from the loader's search path. nullptr where it cannot be opened, lacks a symbol or is
// older than 9.0; cudnnUnavailableReason() then says which.
const CudnnLibrary* cudnnLibrary();
std::string cudnnUnavailableReason();

// Throws CudaError naming the call, the status and cuDNN's own last message.
[[noreturn]] void throwCudnnError(const CudnnLibrary& lib, cudnnStatus_t status, const std::string& call,
                                  const char* file, int line);

}  // namespace moescope::engine::cuda

// Checks a call through a CudnnLibrary `lib` in scope.
#define MOESCOPE_CUDNN_CHECK(lib, call)                                                                    \
  do {                                                                                                     \
    const cudnnStatus_t moescope_cudnn_status_ = (call);                                                   \
    if (moescope_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                                    \
      ::moescope::engine::cuda::throwCudnnError((lib), moescope_cudnn_status_, #call, __FILE__, __LINE__); \
  } while (0)
