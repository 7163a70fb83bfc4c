// Issue 6's acceptance on a machine with two GPUs: `moescope-cli train --backend cuda` on PPMoE with
// tp = 2 writes a run file where every comm.tp_allreduce span has NCCL all-reduce kernels tied to it,
// every compute.expert span matrix-product kernels, CUPTI dropped nothing, and `moescope-cli stats`
// reports GPU time by category; every kernel carries its launch (grid, block, registers).
// MOESCOPE_GPU_RUN_OUT=FILE keeps the run file (the H200 sample).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "storage/run_reader.h"
#include "storage/stats_report.h"
#include "tests/common/sample_path.h"
#include "tests/common/temp_dir.h"
#include "tests/storage/gpu_run_checks.h"

namespace moescope {
namespace {

namespace fs = std::filesystem;

int deviceCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

// moescope-cli beside this test program (build/bin), wherever the build folder was carried.
fs::path cli() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return self.parent_path() / "moescope-cli";
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0) out += "\n(exit status " + std::to_string(status) + ")";
  return out;
}

TEST(GpuRun, PpmoeTp2TiesNcclAndMatrixKernelsToTheirSpans) {
  if (deviceCount() < 2) GTEST_SKIP() << "needs 2 CUDA devices, found " << deviceCount();
  const moescope::testing::TempDir dir;
  const char* keep = std::getenv("MOESCOPE_GPU_RUN_OUT");
  const fs::path file = keep ? fs::path(keep) : dir.file("ppmoe-tp2.moescope");
  const fs::path config = moescope::testing::samplePath("ppmoe.toml");
  const std::string train = run(cli().string() + " train --config " + config.string() +
                                " --backend cuda --set parallel.pp=1 --steps 3 --out " + file.string());
  ASSERT_TRUE(fs::exists(file)) << train;
  const storage::Trace t = storage::RunReader::open(file)->load();
  ASSERT_EQ(t.run.status, storage::RunStatus::Complete) << t.run.error << "\n" << train;
  const testing::GpuRunCheck c = testing::checkGpuRun(t);
  std::printf(
      "%zu GPU records; tp_allreduce spans %d (with NCCL all-reduce kernels %d), expert spans %d "
      "(with GPU work %d, with matrix products %d)\n%s",
      t.gpu.size(), c.allreduceSpans, c.allreduceWithNccl, c.expertSpans, c.expertWithRecords,
      c.expertWithMatmul, c.kernels.c_str());
  EXPECT_GT(c.allreduceSpans, 0);
  EXPECT_EQ(c.allreduceWithNccl, c.allreduceSpans) << c.kernels;
  EXPECT_GT(c.expertSpans, 0);
  EXPECT_GT(c.expertWithRecords, c.expertSpans / 2);
  EXPECT_EQ(c.expertWithMatmul, c.expertWithRecords) << c.kernels;
  // Every kernel's launch is in the run file (schema version 2): a grid and a block of at least one
  // thread, registers per thread.
  int kernels = 0, withLaunch = 0;
  for (const auto& g : t.gpu) {
    if (g.kind != storage::GpuActivityKind::Kernel) continue;
    ++kernels;
    const storage::KernelLaunch& l = g.launch;
    if (l.grid_x > 0 && l.grid_y > 0 && l.grid_z > 0 && l.block_x > 0 && l.block_y > 0 && l.block_z > 0 &&
        l.registers > 0)
      ++withLaunch;
  }
  EXPECT_GT(kernels, 0);
  EXPECT_EQ(withLaunch, kernels);
  const storage::RunStats s = storage::computeStats(t);
  EXPECT_EQ(s.gpu_records.dropped, 0);
  ASSERT_FALSE(s.gpu_stages.empty());
  EXPECT_GT(s.gpu_stages[0].busy_per_step[storage::Category::ComputeExpert], 0);
  EXPECT_GT(s.gpu_stages[0].busy_per_step[storage::Category::CommTpAllreduce], 0);
  const std::string stats = run(cli().string() + " stats " + file.string());
  std::printf("%s\n", stats.c_str());
  EXPECT_NE(stats.find("GPU time per step by category"), std::string::npos) << stats;
  EXPECT_NE(stats.find("0 dropped by CUPTI"), std::string::npos) << stats;
}

}  // namespace
}  // namespace moescope
