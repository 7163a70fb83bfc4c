// Built only where cuDNN's headers are (the CUDA toolkit's include folder); elsewhere cudnn_attention.cpp
// reports cuDNN unavailable and includes nothing of this.
#if __has_include(<cudnn_graph.h>)

#include "engine/cuda/cudnn_library.h"

#include <dlfcn.h>

#include <cstdlib>

#include "engine/cuda/cuda_check.h"

namespace moescope::engine::cuda {

namespace {

struct Loaded {
  CudnnLibrary lib;
  bool ok = false;
  std::string reason;
};

template <class F>
bool bind(void* handle, const char* name, F& fn, std::string& reason) {
  fn = reinterpret_cast<F>(dlsym(handle, name));
  if (!fn && reason.empty()) reason = std::string("the library has no symbol ") + name;
  return fn != nullptr;
}

Loaded load() {
  Loaded r;
  const char* env = std::getenv("MOESCOPE_CUDNN_LIBRARY");
  r.lib.path = env && *env ? env : "libcudnn.so.9";
  // Kept open for the life of the process: cuDNN's handles and plans live as long as the stages.
  void* handle = dlopen(r.lib.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    r.reason = "cannot open " + r.lib.path + (err ? std::string(": ") + err : std::string());
    return r;
  }
  CudnnLibrary& l = r.lib;
  bool ok = bind(handle, "cudnnGetVersion", l.getVersion, r.reason);
  ok = bind(handle, "cudnnGetErrorString", l.getErrorString, r.reason) && ok;
  ok = bind(handle, "cudnnGetLastErrorString", l.getLastErrorString, r.reason) && ok;
  ok = bind(handle, "cudnnCreate", l.create, r.reason) && ok;
  ok = bind(handle, "cudnnDestroy", l.destroy, r.reason) && ok;
  ok = bind(handle, "cudnnSetStream", l.setStream, r.reason) && ok;
  ok = bind(handle, "cudnnBackendCreateDescriptor", l.createDescriptor, r.reason) && ok;
  ok = bind(handle, "cudnnBackendDestroyDescriptor", l.destroyDescriptor, r.reason) && ok;
  ok = bind(handle, "cudnnBackendSetAttribute", l.setAttribute, r.reason) && ok;
  ok = bind(handle, "cudnnBackendGetAttribute", l.getAttribute, r.reason) && ok;
  ok = bind(handle, "cudnnBackendFinalize", l.finalize, r.reason) && ok;
  ok = bind(handle, "cudnnBackendExecute", l.execute, r.reason) && ok;
  if (!ok) {
    r.reason = r.lib.path + ": " + r.reason;
    return r;
  }
  l.version = l.getVersion();
  // The graph operations used here (matmul, pointwise, reduction, reshape) and the fused attention
  // engines that match them are those of cuDNN 9.
  if (l.version < 90000 || l.version >= 100000) {
    r.reason = r.lib.path + " is cuDNN " + std::to_string(l.version) + ", not 9.x";
    return r;
  }
  r.ok = true;
  return r;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

const CudnnLibrary* cudnnLibrary() {
  return loaded().ok ? &loaded().lib : nullptr;
}

std::string cudnnUnavailableReason() {
  return loaded().reason;
}

void throwCudnnError(const CudnnLibrary& lib, cudnnStatus_t status, const std::string& call, const char* file,
                     int line) {
  char last[1024] = {0};
  lib.getLastErrorString(last, sizeof last);
  throw CudaError(std::string("cuDNN error: ") + lib.getErrorString(status) + " in " + call + " (" + file +
                  ":" + std::to_string(line) + ")" + (last[0] ? std::string(": ") + last : std::string()));
}

}  // namespace moescope::engine::cuda

#endif
