// Benchmark of the MoE view on a 200-step run with 8 MoE layers of 16 experts: 4 stages x tp 2 (PPMoE),
// 2 layers per stage, 8 micro-batches, the synthetic generator's spans (storage/synthetic.h) and a
// routing table added to it (one routing group per step, micro-batch and layer, a drifting hot
// expert per layer, a capacity that drops some assignments). Runs on the offscreen platform.
//
//   moescope_bench_moe [--repeats 7] [--width 1400] [--dir DIR]
//
// Measures, each repeated: "read": RunReader::load of a file holding the run's routing tables and
// step metrics (what the view reads from the file beyond what the open run already holds); "open":
// from MoeView::setTrace on the loaded run (the routing analysis with its waits over every span, the
// grid, the models) to its first painted frame at the given width; per step and per micro-batch
// columns. Prints the median and the spread; the acceptance bound is 200 ms for "open" per step.
#include <time.h>

#include <QApplication>
#include <QImage>
#include <QPainter>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "storage/synthetic.h"
#include "ui/moe_view.h"

namespace {

using namespace moescope;
using Clock = std::chrono::steady_clock;

constexpr int32_t kSteps = 200, kStages = 4, kTp = 2, kLayersPerStage = 2, kExperts = 16, kMicrobatches = 8;

// CPU time of this thread, ms: what opening costs even when other processes share the cores.
double threadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

storage::SyntheticOptions options(int64_t spans) {
  storage::SyntheticOptions o;
  o.stages = kStages;
  o.tp = kTp;
  o.microbatches = kMicrobatches;
  o.layersPerStage = kLayersPerStage;
  o.experts = kExperts;
  o.spans = spans;
  return o;
}

// The routing of every step: 2048 tokens x top 2 per group, a hot expert per layer that moves every
// 25 steps and takes a third of the assignments, the rest spread evenly, capacity 1.25 x balanced.
std::vector<storage::MoeRouting> routing() {
  std::vector<storage::MoeRouting> out;
  const int64_t assignments = 2048 * 2, capacity = assignments * 5 / 4 / kExperts;
  for (int32_t s = 0; s < kSteps; ++s)
    for (int32_t m = 0; m < kMicrobatches; ++m)
      for (int32_t l = 0; l < kStages * kLayersPerStage; ++l) {
        storage::MoeRouting g{s, m, l, 0, assignments, 0, std::vector<int64_t>(kExperts)};
        const int32_t hot = (l * 5 + s / 25) % kExperts;
        int64_t left = assignments;
        for (int32_t e = 0; e < kExperts; ++e) {
          const int64_t want = e == hot ? assignments / 3 : (assignments - assignments / 3) / (kExperts - 1);
          g.kept[static_cast<size_t>(e)] = std::min({want, capacity, left});
          left -= g.kept[static_cast<size_t>(e)];
        }
        g.dropped = left;
        out.push_back(std::move(g));
      }
  return out;
}

struct Spread {
  double median = 0, min = 0, max = 0;
};
Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  int repeats = 7, width = 1400;
  std::filesystem::path dir = std::filesystem::path(argv[0]).parent_path() / "bench-data";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--repeats")
      repeats = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--width")
      width = std::max(600, std::atoi(argv[i + 1]));
    else if (a == "--dir")
      dir = argv[i + 1];
    else {
      std::fprintf(stderr, "moescope_bench_moe: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::filesystem::create_directories(dir);

  // Whole steps: one step's spans times 200 (the generator stops at the step that crosses the target).
  const int64_t perStep = storage::syntheticTrace(options(1)).spanCount();
  storage::Trace trace = storage::syntheticTrace(options(perStep * (kSteps - 1) + 1));
  trace.routing = routing();
  std::printf(
      "run: %zu steps, %zu spans, %zu routing groups (%d MoE layers x %d experts, %d micro-batches)\n",
      trace.steps.size(), trace.spanCount(), trace.routing.size(), kStages * kLayersPerStage, kExperts,
      kMicrobatches);

  const auto file = dir / "moe-200-steps.moescope";
  {
    auto w = storage::RunWriter::create(file, trace.run);
    for (const auto& s : trace.steps) w->addStepMetric(s);
    w->addMoeRouting(trace.routing);
    w->setStatus(storage::RunStatus::Complete, "", trace.run.end_ns);
    w->finish();
  }
  std::vector<double> read, readCpu;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    const double c0 = threadCpuMs();
    const storage::Trace t = storage::RunReader::open(file)->load();
    readCpu.push_back(threadCpuMs() - c0);
    read.push_back(msSince(t0));
    if (t.routing != trace.routing) {
      std::fprintf(stderr, "moescope_bench_moe: the routing read back differs\n");
      return 1;
    }
  }
  const Spread rs = spread(read), rc = spread(readCpu);
  std::printf("read routing tables: wall median %.1f ms (min %.1f, max %.1f), cpu median %.1f ms\n",
              rs.median, rs.min, rs.max, rc.median);

  for (bool perMicrobatch : {false, true}) {
    std::vector<double> open, openCpu;
    for (int r = 0; r < repeats; ++r) {
      ui::MoeView view;
      view.resize(width, 900);
      view.setPerMicrobatch(perMicrobatch);  // before there is anything to lay out
      const auto t0 = Clock::now();
      const double c0 = threadCpuMs();
      view.setTrace(trace);
      const QSize size = view.pictureSize(width);
      QImage image(size, QImage::Format_ARGB32_Premultiplied);
      {
        QPainter p(&image);
        view.paintPicture(p, size);
      }
      openCpu.push_back(threadCpuMs() - c0);
      open.push_back(msSince(t0));
    }
    const Spread os = spread(open), oc = spread(openCpu);
    std::printf(
        "open the view (%s columns, %d wide): wall median %.1f ms (min %.1f, max %.1f), cpu median %.1f ms\n",
        perMicrobatch ? "micro-batch" : "step", width, os.median, os.min, os.max, oc.median);
  }
  return 0;
}
