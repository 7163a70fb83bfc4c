#include "engine/cuda/cublaslt.h"

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_memory.h"

namespace moescope::engine::cuda {

CublasLt::CublasLt(size_t workspaceBytes) : workspaceBytes_(workspaceBytes) {
  MOESCOPE_CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspaceBytes_ > 0) {
    try {
      workspace_ = deviceAlloc(workspaceBytes_);
    } catch (...) {
      cublasLtDestroy(handle_);
      throw;
    }
  }
}

CublasLt::~CublasLt() {
  deviceFree(scratch_);
  deviceFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

void* CublasLt::scratch(size_t bytes) {
  if (bytes > scratchBytes_) {
    deviceFree(scratch_);
    scratch_ = nullptr;
    scratchBytes_ = 0;
    scratch_ = deviceAlloc(bytes);
    scratchBytes_ = bytes;
  }
  return scratch_;
}

}  // namespace moescope::engine::cuda
