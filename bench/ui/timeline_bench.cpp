// Benchmark of the timeline on generated runs of 64 tracks (8 stages x 4 tp x 2 dp, one host track
// per rank): time from opening the file to the first frame, frame times at 1920x1080 (prepare the
// draw list with its per-pixel category colours, then paint it) for the full view, zooms of 1/4, 1/8
// (where folded spans are summed span by span: the dearest zoom), 1/64 and 1/65536, and a pan
// sequence, and resident memory per span (the overview's buckets included). Runs on the offscreen
// platform.
//
//   moescope_bench_ui [--spans 1000000,10000000] [--dir DIR] [--frames 60]
//
// Run files are generated into DIR (default: bench-data beside the program) when missing.
#include <unistd.h>

#include <QApplication>
#include <QEventLoop>
#include <QImage>
#include <QPainter>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/synthetic.h"
#include "ui/draw_list.h"
#include "ui/label_cache.h"
#include "ui/run_view.h"
#include "ui/span_access.h"
#include "ui/timeline_painter.h"
#include "ui/timeline_summary.h"
#include "ui/timeline_widget.h"

namespace {

using namespace moescope;
using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double cpuMs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}
// CPU time of this thread, ms: what a frame costs even when other processes share the cores.
double threadCpuMs() {
  return cpuMs(CLOCK_THREAD_CPUTIME_ID);
}
// CPU time of the process (every thread: the loader's too), ms.
double processCpuMs() {
  return cpuMs(CLOCK_PROCESS_CPUTIME_ID);
}

// Resident memory of the process from /proc/self/status: anonymous (heap, stacks) and file-backed.
struct Resident {
  size_t anon = 0, file = 0;
  size_t total() const { return anon + file; }
};

Resident resident() {
  std::ifstream status("/proc/self/status");
  Resident r;
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (status >> key) {
    if (key == "RssAnon:" && status >> kb >> unit)
      r.anon = kb * 1024;
    else if (key == "RssFile:" && status >> kb >> unit)
      r.file = kb * 1024;
    else
      status.ignore(1 << 12, '\n');
  }
  return r;
}

struct Stats {
  double p50 = 0, p95 = 0, max = 0, cpuP50 = 0, cpuP95 = 0, meanBuild = 0, meanPaint = 0;
  size_t items = 0;
};

// One frame as the widget draws it: the draw list for the view, then painting it.
struct FrameRunner {
  const storage::Trace& trace;
  const ui::TimelineSummary& summary;
  ui::TimelineLayout layout;
  QImage image{1920, 1080, QImage::Format_ARGB32_Premultiplied};
  ui::PaintState state;
  ui::LabelCache labels;  // kept across frames, as the widget keeps it

  FrameRunner(const storage::Trace& t, const ui::TimelineSummary& s)
      : trace(t), summary(s), layout(ui::layoutTimeline(t, s, {})) {
    state.origin = ui::timelineExtent(t).start;
    state.labels = &labels;
    state.summary = &summary;
  }

  void frame(const ui::TimeMapping& m, double& buildMs, double& paintMs, size_t& items) {
    const auto t0 = Clock::now();
    const ui::DrawList list =
        ui::buildDrawList(trace, summary, layout, m, ui::drawOptionsFor(layout, image.size(), 0));
    buildMs = msSince(t0);
    const auto t1 = Clock::now();
    QPainter p(&image);
    QFont f = p.font();
    f.setPixelSize(11);
    p.setFont(f);
    ui::paintTimeline(p, image.size(), trace, layout, list, state);
    p.end();
    paintMs = msSince(t1);
    items = list.items.size() + list.bubbles.size() + list.pixels.size();
  }

  Stats run(const std::vector<ui::TimeMapping>& views) {
    std::vector<double> total, cpu;
    Stats s;
    for (const auto& m : views) {
      double b = 0, p = 0;
      const double c0 = threadCpuMs();
      frame(m, b, p, s.items);
      cpu.push_back(threadCpuMs() - c0);
      total.push_back(b + p);
      s.meanBuild += b;
      s.meanPaint += p;
    }
    s.meanBuild /= static_cast<double>(views.size());
    s.meanPaint /= static_cast<double>(views.size());
    std::sort(total.begin(), total.end());
    std::sort(cpu.begin(), cpu.end());
    auto pct = [](const std::vector<double>& v, double q) {
      return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
    };
    s.p50 = pct(total, 0.5);
    s.p95 = pct(total, 0.95);
    s.max = total.back();
    s.cpuP50 = pct(cpu, 0.5);
    s.cpuP95 = pct(cpu, 0.95);
    return s;
  }
};

void printStats(const char* name, const Stats& s) {
  std::printf("| %-22s | %8.2f | %8.2f | %8.2f | %8.2f | %8.2f | %8.2f | %8.2f | %7zu |\n", name, s.p50,
              s.p95, s.max, s.cpuP50, s.cpuP95, s.meanBuild, s.meanPaint, s.items);
}

int benchOne(const std::filesystem::path& dir, int64_t spans, int frames) {
  const auto path = dir / ("synthetic-" + std::to_string(spans) + ".moescope");
  if (!std::filesystem::exists(path)) {
    storage::SyntheticOptions o;
    o.stages = 8;
    o.tp = 4;
    o.dp = 2;
    o.microbatches = 8;
    o.spans = spans;
    const auto t0 = Clock::now();
    const int64_t n = storage::writeSyntheticRun(path, o);
    std::printf("generated %s: %lld spans in %.1f s\n", path.string().c_str(), static_cast<long long>(n),
                msSince(t0) / 1000);
  }

  // Start to first frame, as the app opens a run: RunView opens the file, loads it (a large file:
  // its first step, the rest on a worker thread), and the timeline paints a 1920x1080 frame.
  const Resident rssBefore = resident();
  const auto t0 = Clock::now();
  const double cpu0 = processCpuMs();
  ui::RunView view(QString::fromStdString(path.string()));
  view.resize(1920 + 320, 1080);
  ui::TimelineWidget* widget = view.timeline();
  widget->resize(1920, 1080);
  QImage first(1920, 1080, QImage::Format_ARGB32_Premultiplied);
  widget->render(&first);
  const double firstFrameMs = msSince(t0), firstFrameCpuMs = processCpuMs() - cpu0;
  const bool progressive = !view.isLoaded();
  if (progressive) {
    QEventLoop loop;
    QObject::connect(&view, &ui::RunView::loaded, &loop, &QEventLoop::quit);
    loop.exec();
  }
  const double loadedMs = msSince(t0), loadedCpuMs = processCpuMs() - cpu0;
  widget->render(&first);
  const double fullFrameMs = msSince(t0);
  const Resident rssAfter = resident();
  const storage::Trace& trace = view.trace();
  const size_t n = trace.spanCount();

  std::printf("\n### %zu spans, %zu tracks, %zu steps\n\n", n, trace.tracks.size(), trace.steps.size());
  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| start to first frame (%s) | %.0f ms (CPU %.0f ms) |\n",
              progressive ? "open, load the first step, lay out, paint" : "open, load all, lay out, paint",
              firstFrameMs, firstFrameCpuMs);
  std::printf("| start to the whole run loaded | %.0f ms (CPU %.0f ms) |\n", loadedMs, loadedCpuMs);
  std::printf("| start to the first frame of the whole run | %.0f ms |\n", fullFrameMs);
  std::printf(
      "| resident memory added (trace, reader, widget, frame), per span | %.1f B (anonymous %.1f B, file "
      "%.1f B) |\n",
      static_cast<double>(rssAfter.total() - rssBefore.total()) / static_cast<double>(n),
      static_cast<double>(rssAfter.anon - rssBefore.anon) / static_cast<double>(n),
      static_cast<double>(rssAfter.file - rssBefore.file) / static_cast<double>(n));
  std::printf("| trace columns (Trace::residentBytes), per span | %.1f B |\n",
              static_cast<double>(trace.residentBytes()) / static_cast<double>(n));
  std::printf("| timeline summary (lanes, overview buckets), per span | %.2f B |\n",
              static_cast<double>(widget->summary().residentBytes()) / static_cast<double>(n));
  // The summary again, alone: its share of the load.
  {
    const double summaryCpu0 = threadCpuMs();
    const ui::TimelineSummary again = ui::summarizeTrace(trace);
    std::printf("| timeline summary alone (summarizeTrace, CPU) | %.0f ms (%zu tracks) |\n",
                threadCpuMs() - summaryCpu0, again.tracks.size());
  }

  FrameRunner runner(trace, widget->summary());
  const ui::TimeRange all = ui::timelineExtent(trace);
  ui::TimeMapping base;
  base.width = 1920 - runner.layout.metrics.labelWidth;
  auto around = [&](double fraction) {
    const auto d = static_cast<int64_t>(static_cast<double>(all.duration()) * fraction);
    const int64_t mid = all.start + all.duration() / 2;
    return base.showing({mid - d / 2, mid - d / 2 + d});
  };
  std::vector<ui::TimeMapping> full(static_cast<size_t>(frames), base.showing(all));
  std::vector<ui::TimeMapping> quarter(static_cast<size_t>(frames), around(1.0 / 4));
  std::vector<ui::TimeMapping> eighth(static_cast<size_t>(frames), around(1.0 / 8));
  std::vector<ui::TimeMapping> middle(static_cast<size_t>(frames), around(1.0 / 64));
  std::vector<ui::TimeMapping> deep(static_cast<size_t>(frames), around(1.0 / 65536));
  std::vector<ui::TimeMapping> pan;
  ui::TimeMapping m = around(1.0 / 64);
  for (int i = 0; i < frames * 2; ++i) pan.push_back(m = m.pannedBy(base.width / 50));  // 2% per frame

  std::printf(
      "\nFrame times at 1920x1080, ms (%d frames each; a frame = prepare the draw list + paint it)\n\n",
      frames);
  std::printf(
      "| view                   | wall p50 | wall p95 | wall max |  cpu p50 |  cpu p95 | build avg | paint "
      "avg | items+px |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  printStats("full view", runner.run(full));
  printStats("zoom 1/4", runner.run(quarter));
  printStats("zoom 1/8", runner.run(eighth));
  printStats("middle zoom (1/64)", runner.run(middle));
  printStats("deep zoom (1/65536)", runner.run(deep));
  printStats("pan at 1/64, 2%/frame", runner.run(pan));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  const auto appStart = Clock::now();
  QApplication app(argc, argv);
  const double appMs = msSince(appStart);
  std::vector<int64_t> sizes = {1'000'000, 10'000'000};
  std::filesystem::path dir = std::filesystem::path(argv[0]).parent_path() / "bench-data";
  int frames = 60;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--spans") {
      sizes.clear();
      for (size_t p = 0; p < v.size();) {
        const size_t q = v.find(',', p);
        sizes.push_back(std::stoll(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else if (a == "--dir") {
      dir = v;
    } else if (a == "--frames") {
      frames = std::max(std::stoi(v), 1);
    } else {
      std::fprintf(stderr, "usage: %s [--spans N,N...] [--dir DIR] [--frames N]\n", argv[0]);
      return 2;
    }
  }
  std::filesystem::create_directories(dir);
  std::printf("QApplication (offscreen) constructed in %.0f ms\n", appMs);
  for (int64_t n : sizes) benchOne(dir, n, frames);
  return 0;
}
