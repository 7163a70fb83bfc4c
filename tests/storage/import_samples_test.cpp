// The real traces in samples/kineto/: torch.profiler's own output of bench/import/make_traces.py on the
// GPU server (bench/import/run_h200_traces.sh), one folder per run, one file per rank. Each run is
// imported and checked against its JSON: every kernel, memcpy, memset and annotation in the run with
// its name and time, every ac2g flow tying its kernel to its launch, every NCCL kernel in a
// communication category with its bytes, and the forward and backward steps numbered from the schedule.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <tuple>

#include "storage/import_traces.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"
#include "tests/storage/kineto_checks.h"

namespace moescope::storage {
namespace {

namespace fs = std::filesystem;
const fs::path kSamples = fs::path(MOESCOPE_SOURCE_DIR) / "samples/kineto";

std::vector<fs::path> rankFiles(const fs::path& folder) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(folder)) {
    const std::string name = e.path().filename().string();
    if (name.find(".json") != std::string::npos) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void checkRun(const fs::path& folder, bool nccl) {
  const std::vector<fs::path> traces = rankFiles(folder);
  ASSERT_FALSE(traces.empty()) << folder;
  moescope::testing::TempRunFile file;
  ImportOptions o;
  o.traces = traces;
  o.output = file.path();
  o.pp = static_cast<int32_t>(traces.size());
  const ImportSummary s = importTraces(o);
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.ranks.size(), traces.size());
  int64_t kernels = 0, ncclKernels = 0, flows = 0;
  for (size_t r = 0; r < traces.size(); ++r) {
    SCOPED_TRACE(traces[r].string());
    moescope::testing::JsonTraceCounts counts;
    moescope::testing::checkRankAgainstJson(t, traces[r], static_cast<int32_t>(r), counts);
    kernels += counts.byCategory["kernel"];
    ncclKernels += counts.ncclKernels;
    flows += counts.flows;
    EXPECT_EQ(t.ranks[r].stage, static_cast<int32_t>(r));
  }
  EXPECT_GT(kernels, 100);
  EXPECT_GT(flows, 100);
  if (nccl) {
    EXPECT_GT(ncclKernels, 0) << "two ranks on two GPUs talk through NCCL";
  }
  // make_traces.py profiles 3 steps of 4 micro-batches: each rank's forward and backward steps are
  // micro-batches 0..3 of each step, in 1F1B order, on the host thread and again on the GPU stream
  // (torch.profiler's gpu_user_annotation twins of the record_function ranges).
  using Key = std::tuple<int32_t, int32_t, TrackKind>;  // (rank, step, host or GPU row)
  std::map<Key, std::vector<std::pair<int64_t, std::string>>> passes;
  for (size_t k = 0; k < t.tracks.size(); ++k) {
    const SpanColumns& c = t.spans[k];
    for (size_t i = 0; i < c.size(); ++i) {
      const std::string_view name = t.name(c.name[i]);
      if (!name.ends_with("schedules.forward_step") && !name.ends_with("schedules.backward_step")) continue;
      passes[{t.tracks[k].rank, c.stepAt(i), t.tracks[k].kind}].emplace_back(
          c.start[i], std::string(phaseName(c.phase[i])) + " " + std::to_string(c.microbatch[i]));
    }
  }
  ASSERT_EQ(passes.size(), 3 * traces.size() * 2);
  for (auto& [key, list] : passes) {
    std::sort(list.begin(), list.end());
    std::vector<std::string> order;
    for (const auto& [start, text] : list) order.push_back(text);
    const bool last = std::get<0>(key) == static_cast<int32_t>(traces.size()) - 1;
    // Stage 0 of 2 warms up with one forward; the last stage alternates from the start.
    const std::vector<std::string> expected =
        last ? std::vector<std::string>{"forward 0", "backward 0", "forward 1", "backward 1",
                                        "forward 2", "backward 2", "forward 3", "backward 3"}
             : std::vector<std::string>{"forward 0",  "forward 1", "backward 0", "forward 2",
                                        "backward 1", "forward 3", "backward 2", "backward 3"};
    // The GPU row holds the twins of the passes that ran GPU work there (on stage 0 of 2, autograd runs
    // the backwards on a thread of its own, so their twins can be missing): the host's order, of the
    // phases present.
    std::vector<std::string> want = expected;
    if (std::get<2>(key) == TrackKind::GpuStream) {
      std::erase_if(want, [&](const std::string& p) {
        return std::none_of(order.begin(), order.end(),
                            [&](const std::string& o) { return o.substr(0, 4) == p.substr(0, 4); });
      });
    }
    EXPECT_EQ(order, want) << "rank " << std::get<0>(key) << " step " << std::get<1>(key) << " "
                           << trackKindName(std::get<2>(key));
  }
  EXPECT_EQ(s.microbatches, 4);
}

TEST(ImportSamples, OneGpu) {
  const fs::path folder = kSamples / "h200-single";
  if (!fs::exists(folder))
    GTEST_SKIP() << folder << " is not there yet: bench/import/run_h200_traces.sh writes it";
  checkRun(folder, false);
}

// Two processes on one GPU: torch.distributed over gloo (NCCL takes one GPU per rank), so no NCCL kernels.
TEST(ImportSamples, TwoStagesOverGloo) {
  const fs::path folder = kSamples / "h200-pp2-gloo";
  if (!fs::exists(folder))
    GTEST_SKIP() << folder << " is not there yet: bench/import/run_h200_traces.sh writes it";
  checkRun(folder, false);
}

TEST(ImportSamples, TwoStagesOverNccl) {
  const fs::path folder = kSamples / "h200-pp2";
  if (!fs::exists(folder))
    GTEST_SKIP() << folder << " is not there yet: bench/import/run_h200_traces.sh writes it on 2 GPUs";
  checkRun(folder, true);
}

}  // namespace
}  // namespace moescope::storage
