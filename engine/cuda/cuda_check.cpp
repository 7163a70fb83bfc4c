#include "engine/cuda/cuda_check.h"

#include <nvtx3/nvToolsExt.h>

namespace moescope::engine::cuda {

namespace {

std::string where(const char* call, const char* file, int line) {
  return std::string(" in ") + call + " (" + file + ":" + std::to_string(line) + ")";
}

nvtxDomainHandle_t domain() {
  static const nvtxDomainHandle_t handle = nvtxDomainCreateA("moescope");
  return handle;
}

}  // namespace

void throwCudaError(cudaError_t result, const char* call, const char* file, int line) {
  throw CudaError(std::string("CUDA error: ") + cudaGetErrorName(result) + ": " + cudaGetErrorString(result) +
                  where(call, file, line));
}

void throwCublasError(cublasStatus_t result, const char* call, const char* file, int line) {
  throw CudaError(std::string("cuBLAS error: ") + cublasLtGetStatusName(result) + ": " +
                  cublasLtGetStatusString(result) + where(call, file, line));
}

void throwShapeError(const char* launcher, const char* condition, const char* file, int line) {
  throw CudaError(std::string(launcher) + ": invalid arguments, expected " + condition + " (" + file + ":" +
                  std::to_string(line) + ")");
}

NvtxRange::NvtxRange(const char* name) {
  nvtxEventAttributes_t attrs{};
  attrs.version = NVTX_VERSION;
  attrs.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  attrs.messageType = NVTX_MESSAGE_TYPE_ASCII;
  attrs.message.ascii = name;
  nvtxDomainRangePushEx(domain(), &attrs);
}

NvtxRange::~NvtxRange() {
  nvtxDomainRangePop(domain());
}

}  // namespace moescope::engine::cuda
