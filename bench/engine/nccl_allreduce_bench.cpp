// Standalone NCCL all-reduce over every GPU of the machine, one process, one thread driving all GPUs
// (ncclCommInitAll), for comparison with the all-reduces measured inside the engine's traces.
// Usage: nccl_allreduce_bench [--gpus N] [--iters N] SIZE_MIB... (bf16 elements; fp32 with --fp32).
// Prints per size: the time of one all-reduce (median over the iterations) and the bus bandwidth,
// 2 (n-1)/n x bytes / time, as nccl-tests reports it.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "nccl_allreduce_bench: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

void check(ncclResult_t e, const char* what) {
  if (e != ncclSuccess) {
    std::fprintf(stderr, "nccl_allreduce_bench: %s: %s\n", what, ncclGetErrorString(e));
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  int gpus = 0, iters = 20;
  bool fp32 = false;
  std::vector<double> sizes_mib;
  check(cudaGetDeviceCount(&gpus), "cudaGetDeviceCount");
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--gpus" && i + 1 < argc)
      gpus = std::atoi(argv[++i]);
    else if (a == "--iters" && i + 1 < argc)
      iters = std::atoi(argv[++i]);
    else if (a == "--fp32")
      fp32 = true;
    else
      sizes_mib.push_back(std::atof(a.c_str()));
  }
  if (sizes_mib.empty()) sizes_mib = {64};
  if (gpus < 2) {
    std::fprintf(stderr, "nccl_allreduce_bench: needs 2 GPUs, found %d\n", gpus);
    return 1;
  }
  std::vector<ncclComm_t> comms(static_cast<size_t>(gpus));
  std::vector<int> devs(static_cast<size_t>(gpus));
  for (int g = 0; g < gpus; ++g) devs[static_cast<size_t>(g)] = g;
  check(ncclCommInitAll(comms.data(), gpus, devs.data()), "ncclCommInitAll");
  const size_t esize = fp32 ? 4 : 2;
  const ncclDataType_t type = fp32 ? ncclFloat32 : ncclBfloat16;
  std::printf(
      "| size (MiB) | dtype | GPUs | time (ms, median of %d) | bus bandwidth (GB/s) "
      "|\n|---|---|---|---|---|\n",
      iters);
  for (double mib : sizes_mib) {
    const size_t bytes = static_cast<size_t>(mib * 1024 * 1024);
    const size_t count = bytes / esize;
    std::vector<void*> bufs(static_cast<size_t>(gpus));
    std::vector<cudaStream_t> streams(static_cast<size_t>(gpus));
    std::vector<cudaEvent_t> start(static_cast<size_t>(gpus)), stop(static_cast<size_t>(gpus));
    for (int g = 0; g < gpus; ++g) {
      check(cudaSetDevice(g), "cudaSetDevice");
      check(cudaMalloc(&bufs[static_cast<size_t>(g)], count * esize), "cudaMalloc");
      check(cudaMemset(bufs[static_cast<size_t>(g)], 0, count * esize), "cudaMemset");
      check(cudaStreamCreate(&streams[static_cast<size_t>(g)]), "cudaStreamCreate");
      check(cudaEventCreate(&start[static_cast<size_t>(g)]), "cudaEventCreate");
      check(cudaEventCreate(&stop[static_cast<size_t>(g)]), "cudaEventCreate");
    }
    std::vector<float> times;
    for (int it = -3; it < iters; ++it) {  // three warm-up rounds
      for (int g = 0; g < gpus; ++g) {
        check(cudaSetDevice(g), "cudaSetDevice");
        check(cudaEventRecord(start[static_cast<size_t>(g)], streams[static_cast<size_t>(g)]),
              "cudaEventRecord");
      }
      check(ncclGroupStart(), "ncclGroupStart");
      for (int g = 0; g < gpus; ++g) {
        check(ncclAllReduce(bufs[static_cast<size_t>(g)], bufs[static_cast<size_t>(g)], count, type, ncclSum,
                            comms[static_cast<size_t>(g)], streams[static_cast<size_t>(g)]),
              "ncclAllReduce");
      }
      check(ncclGroupEnd(), "ncclGroupEnd");
      float worst = 0;
      for (int g = 0; g < gpus; ++g) {
        check(cudaSetDevice(g), "cudaSetDevice");
        check(cudaEventRecord(stop[static_cast<size_t>(g)], streams[static_cast<size_t>(g)]),
              "cudaEventRecord");
        check(cudaEventSynchronize(stop[static_cast<size_t>(g)]), "cudaEventSynchronize");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, start[static_cast<size_t>(g)], stop[static_cast<size_t>(g)]),
              "elapsed");
        worst = std::max(worst, ms);
      }
      if (it >= 0) times.push_back(worst);
    }
    std::sort(times.begin(), times.end());
    const double ms = times[times.size() / 2];
    const double bus = 2.0 * (gpus - 1) / gpus * static_cast<double>(count * esize) / (ms * 1e-3) / 1e9;
    std::printf("| %.1f | %s | %d | %.3f | %.1f |\n", mib, fp32 ? "fp32" : "bf16", gpus, ms, bus);
    for (int g = 0; g < gpus; ++g) {
      cudaSetDevice(g);
      cudaFree(bufs[static_cast<size_t>(g)]);
      cudaStreamDestroy(streams[static_cast<size_t>(g)]);
      cudaEventDestroy(start[static_cast<size_t>(g)]);
      cudaEventDestroy(stop[static_cast<size_t>(g)]);
    }
  }
  for (auto c : comms) ncclCommDestroy(c);
  return 0;
}
