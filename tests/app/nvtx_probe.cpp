// A program that only calls NVTX (no CUDA): the host-only path of `moescope-cli record` in the tests.
// It runs `steps` steps of one pipeline stage's 1F1B schedule (pp stages, m micro-batches) with
// Megatron-Core's range names and PyTorch's step marker, a range in a domain of its own and one that a
// thread other than its starter ends; then exits with the code it was given.
//   nvtx_probe STAGE PP MICROBATCHES STEPS EXIT_CODE
#include <nvtx3/nvToolsExt.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

void busy(int us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until) {
  }
}

void pass(const char* name, const char* inner) {
  nvtxRangePushA(name);
  nvtxRangePushA(inner);
  busy(200);
  nvtxRangePop();
  nvtxRangePop();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) return 2;
  const int stage = std::atoi(argv[1]), pp = std::atoi(argv[2]), m = std::atoi(argv[3]);
  const int steps = std::atoi(argv[4]), code = std::atoi(argv[5]);
  nvtxNameOsThreadA(0, "ignored");  // thread 0 names no thread
  nvtxDomainHandle_t domain = nvtxDomainCreateA("probe");
  for (int s = 0; s < steps; ++s) {
    const std::string marker = "ProfilerStep#" + std::to_string(s);
    nvtxRangePushA(marker.c_str());
    const int warmup = std::min(pp - stage - 1, m);
    int f = 0, b = 0;
    for (; f < warmup; ++f)
      pass("megatron.core.pipeline_parallel.schedules.forward_step",
           "megatron.core.transformer.mlp.forward.linear_fc1");
    while (b < m) {
      if (f < m) {
        pass("megatron.core.pipeline_parallel.schedules.forward_step",
             "megatron.core.transformer.attention.forward.core_attention");
        ++f;
      }
      pass("megatron.core.pipeline_parallel.schedules.backward_step",
           "megatron.core.transformer.mlp.forward.linear_fc2");
      ++b;
    }
    nvtxEventAttributes_t a{};
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = "optimizer step";
    nvtxDomainRangePushEx(domain, &a);
    busy(100);
    nvtxDomainRangePop(domain);
    nvtxRangePop();
  }
  const nvtxRangeId_t across = nvtxRangeStartA("ended by another thread");
  std::thread([across] { nvtxRangeEnd(across); }).join();
  return code;
}
