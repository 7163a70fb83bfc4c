// What a frame of the timeline draws, from its draw list: boxes for wide spans; narrow spans folded
// into pixel columns that hold each category's share of the pixel's time (from the spans, or zoomed
// out from the overview's buckets, the two agreeing); the frame's cost bounded whatever the span
// count; bubbles; rank headers as stretches and, zoomed out, as forward and backward density; GPU
// utilisation rows; nested spans in depth lanes; GPU work outside any span.
#include "ui/draw_list.h"

#include <QTest>
#include <set>

#include "tests/ui/test_frames.h"
#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;
using storage::Phase;
using test::Frame;

namespace {

// Track 0: a dense region of 1000 spans of 500 ns every 1 µs over [0, 1 ms), attention and all-reduce
// in turn, then a sparse region of 10 spans of 50 µs every 100 µs over [1 ms, 2 ms).
storage::Trace denseThenSparse() {
  storage::Trace trace = test::makeTrace(1, {});
  for (int i = 0; i < 1000; ++i) {
    storage::SpanRecord s;
    s.start = i * 1000;
    s.end = s.start + 500;
    s.category = i % 2 ? Category::ComputeAttention : Category::CommTpAllreduce;
    storage::addSpan(trace, s);
  }
  for (int k = 0; k < 10; ++k) {
    storage::SpanRecord s;
    s.start = 1'000'000 + k * 100'000;
    s.end = s.start + 50'000;
    s.category = Category::ComputeExpert;
    storage::addSpan(trace, s);
  }
  storage::finishTrace(trace);
  return trace;
}

// n spans of 900 ns every 1 µs on one track, the categories repeating attention, expert, expert,
// all-reduce: shares of the busy time 1/4, 1/2, 1/4.
storage::Trace regular(int n) {
  storage::Trace trace = test::makeTrace(1, {});
  const Category cycle[] = {Category::ComputeAttention, Category::ComputeExpert, Category::ComputeExpert,
                            Category::CommTpAllreduce};
  for (int i = 0; i < n; ++i) {
    storage::SpanRecord s;
    s.start = int64_t(i) * 1000;
    s.end = s.start + 900;
    s.category = cycle[i % 4];
    s.phase = i % 8 < 4 ? Phase::Forward : Phase::Backward;
    storage::addSpan(trace, s);
  }
  storage::finishTrace(trace);
  return trace;
}

uint8_t share(const PixelShare& p, Category c) {
  return p.share[size_t(c)];
}

}  // namespace

class DrawListTest : public QObject {
  Q_OBJECT

 private slots:
  void denseRegionFoldsIntoCategoryColumnsSparseDoesNot() {
    DrawOptions o;
    o.bubbles = false;
    // 2 µs per pixel: the dense spans are a quarter of a pixel wide, two of them in each pixel.
    const Frame f(denseThenSparse(), TimeMapping{{0, 2'000'000}, 1000}, o);
    const auto items = f.list.itemsOfRow(1);
    QCOMPARE(items.size(), size_t(10));
    for (size_t k = 0; k < items.size(); ++k) {
      QCOMPARE(items[k].first, uint32_t(1000 + k));
      QCOMPARE(items[k].category, Category::ComputeExpert);
      QCOMPARE(items[k].x1 - items[k].x0, 25.0f);
    }
    const auto density = f.list.densityOfRow(1);
    QCOMPARE(density.size(), size_t(1));
    QCOMPARE(density[0]->x0, 0);
    const auto columns = f.list.columnsOf(*density[0]);
    QCOMPARE(columns.size(), size_t(500));  // [0, 1 ms) at 2 µs a pixel
    for (const PixelShare& p : columns) {
      // Each pixel: 500 ns of attention and 500 ns of all-reduce out of 2 µs.
      QVERIFY(std::abs(share(p, Category::ComputeAttention) - 64) <= 1);
      QVERIFY(std::abs(share(p, Category::CommTpAllreduce) - 64) <= 1);
      QVERIFY(std::abs(p.busy - 128) <= 1);
      QCOMPARE(share(p, Category::ComputeExpert), uint8_t(0));
    }
  }

  void zoomedInTheDenseRegionUnfolds() {
    const Frame f(denseThenSparse(), TimeMapping{{0, 20'000}, 1000});  // 20 ns per pixel: 25 px per span
    const auto items = f.list.itemsOfRow(1);
    QCOMPARE(items.size(), size_t(20));
    for (size_t k = 0; k < items.size(); ++k) {
      QCOMPARE(items[k].first, uint32_t(k));
      QCOMPARE(items[k].x0, float(k * 50));
    }
    QVERIFY(f.list.densityOfRow(1).empty());
  }

  void narrowSpansFarApartStillShow() {
    // 100 ns spans every 100 µs: 0.05 px wide but 50 px apart; each is a column of its own, a pixel
    // of its category.
    storage::Trace trace = test::makeTrace(1, {});
    for (int k = 0; k < 20; ++k) {
      storage::SpanRecord s;
      s.start = k * 100'000;
      s.end = s.start + 100;
      storage::addSpan(trace, s);
    }
    storage::finishTrace(trace);
    const Frame f(trace, TimeMapping{{0, 2'000'000}, 1000});
    QVERIFY(f.list.itemsOfRow(1).empty());
    const auto density = f.list.densityOfRow(1);
    QCOMPARE(density.size(), size_t(20));
    for (size_t k = 0; k < density.size(); ++k) {
      QCOMPARE(density[k]->x0, int(k * 50));
      QCOMPARE(f.list.columnsOf(*density[k]).size(), size_t(1));
      QVERIFY(share(f.list.columnsOf(*density[k])[0], Category::ComputeAttention) > 0);
    }
  }

  void zoomedOutAMillionSpansReadTheOverview() {
    const storage::Trace trace = regular(1'000'000);
    const Frame f(trace, TimeMapping{{0, 1'000'000'000}, 1920});
    QVERIFY(f.list.itemsOfRow(1).empty());
    // No span is visited: the buckets in view are read (32 spans each, one or two more per pixel at
    // the pixel's edges), once for the track's row and once for its rank's header.
    QCOMPARE(f.list.stats.spansVisited, size_t(0));
    QVERIFY2(f.list.stats.bucketsRead < 2 * (1'000'000 / 32 + 2 * 1920),
             qPrintable(QString::number(f.list.stats.bucketsRead)));
    const auto density = f.list.densityOfRow(1);
    QCOMPARE(density.size(), size_t(1));
    const auto columns = f.list.columnsOf(*density[0]);
    QVERIFY(columns.size() >= 1919);
    for (size_t x = 1; x + 1 < columns.size(); ++x) {
      const PixelShare& p = columns[x];
      QVERIFY2(std::abs(p.busy - 230) <= 3, qPrintable(QString::number(p.busy)));  // 900 of every 1000 ns
      QVERIFY(std::abs(share(p, Category::ComputeExpert) - 115) <= 4);
      QVERIFY(std::abs(share(p, Category::ComputeAttention) - 57) <= 4);
      QVERIFY(std::abs(share(p, Category::CommTpAllreduce) - 57) <= 4);
    }
  }

  void theOverviewAgreesWithTheSpans() {
    // One frame from the buckets, the same frame summed span by span (no overview): the same colours
    // to within the buckets' rounding, at a zoom where a pixel covers a few buckets.
    const storage::Trace trace = regular(200'000);
    const TimeMapping m{{0, 200'000'000}, 1000};
    const Frame fromBuckets(trace, m);
    SummaryOptions noOverview;
    noOverview.overviewFromSpans = SIZE_MAX;
    DrawOptions walkAll;
    walkAll.maxSpansPerPixelWalk = 1e9;
    const Frame fromSpans(trace, m, walkAll, {}, noOverview);
    QVERIFY(fromBuckets.list.stats.bucketsRead > 0 && fromBuckets.list.stats.spansVisited == 0);
    // The track's row and its rank's header each visit every span.
    QCOMPARE(fromSpans.list.stats.bucketsRead, size_t(0));
    QCOMPARE(fromSpans.list.stats.spansVisited, size_t(2 * 200'000));
    const auto a = fromBuckets.list.columnsOf(*fromBuckets.list.densityOfRow(1)[0]);
    const auto b = fromSpans.list.columnsOf(*fromSpans.list.densityOfRow(1)[0]);
    QCOMPARE(a.size(), b.size());
    // The last pixel holds the data's end, inside a bucket that runs past it: left out.
    for (size_t x = 0; x + 1 < a.size(); ++x) {
      QVERIFY2(std::abs(a[x].busy - b[x].busy) <= 3,
               qPrintable(QString("x %1: %2 vs %3").arg(x).arg(a[x].busy).arg(b[x].busy)));
      for (size_t c = 0; c < storage::kCategoryCount; ++c)
        QVERIFY(std::abs(a[x].share[c] - b[x].share[c]) <= 4);
      QVERIFY(std::abs(a[x].forward - b[x].forward) <= 4);
      QVERIFY(std::abs(a[x].backward - b[x].backward) <= 4);
    }
  }

  void aFoldStopsAtTheRightEdge() {
    // A gapless track of a million 1 µs spans, its first 10 ms at 10 µs per pixel: every span folds,
    // and the fold must not run on to the track's end.
    storage::Trace trace = test::makeTrace(1, {});
    for (int i = 0; i < 1'000'000; ++i) {
      storage::SpanRecord s;
      s.start = int64_t(i) * 1000;
      s.end = s.start + 1000;
      storage::addSpan(trace, s);
    }
    storage::finishTrace(trace);
    const Frame f(trace, TimeMapping{{0, 10'000'000}, 1000});
    QVERIFY(f.list.stats.spansVisited <= 2 * 10'100u);  // the track's row and its rank's header
    QVERIFY2(f.list.stats.searches < 2000, qPrintable(QString::number(f.list.stats.searches)));
    const auto columns = f.list.columnsOf(*f.list.densityOfRow(1)[0]);
    QVERIFY(columns.size() >= 1000);
    QCOMPARE(columns[500].busy, uint8_t(255));
  }

  void visibleRangeOnly() {
    // [1.15 ms, 1.32 ms): the spans starting at 1.1 (ends 1.15, out), 1.2 and 1.3 ms.
    const Frame f(denseThenSparse(), TimeMapping{{1'150'000, 1'320'000}, 170});
    const auto items = f.list.itemsOfRow(1);
    QCOMPARE(items.size(), size_t(2));
    QCOMPARE(items[0].first, 1002u);
    QCOMPARE(items[1].first, 1003u);
    QCOMPARE(items[1].x1, 172.0f);  // clipped to 2 px past the edge
  }

  void hiddenCategoriesAreLeftOut() {
    DrawOptions o;
    o.hidden.set(size_t(Category::ComputeExpert));
    o.hidden.set(size_t(Category::CommTpAllreduce));
    const Frame f(denseThenSparse(), TimeMapping{{0, 2'000'000}, 1000}, o);
    QVERIFY(f.list.itemsOfRow(1).empty());
    for (const PixelShare& p : f.list.columnsOf(*f.list.densityOfRow(1)[0])) {
      QCOMPARE(share(p, Category::CommTpAllreduce), uint8_t(0));
      QVERIFY(share(p, Category::ComputeAttention) > 0);
    }
    QVERIFY(!f.list.categoriesShown().test(size_t(Category::ComputeExpert)));
  }

  void bubblesAreIdleTimeInsideSteps() {
    // A step over [0, 500 µs); spans at [0, 100) and [300, 400) µs, a wait at [150, 250) µs.
    storage::Trace trace = test::makeTrace(1, {{0, 0, 100'000, Category::ComputeAttention},
                                               {0, 150'000, 250'000, Category::Wait},
                                               {0, 300'000, 400'000, Category::ComputeExpert}});
    storage::StepMetric step;
    step.start_ns = 0;
    step.end_ns = 500'000;
    trace.steps.push_back(step);
    const Frame f(trace, TimeMapping{{0, 600'000}, 600});
    QCOMPARE(f.list.bubbles.size(), size_t(2));
    QCOMPARE(f.list.bubbles[0], (BubbleItem{100, 300, 1}));
    QCOMPARE(f.list.bubbles[1], (BubbleItem{400, 500, 1}));
    QCOMPARE(f.list.itemsOfRow(1).size(), size_t(3));  // the wait is still drawn
  }

  void idleCopyNcclAndUnusedStreamsHaveNoBubbles() {
    // Rank 0: a host track, a compute stream, an NCCL stream, a copy stream and a stream that ran nothing
    // inside a span; all busy over [0, 100 µs) of a 500 µs step.
    storage::Trace trace = test::makeTrace(1, {});
    const char* names[] = {"gemm", "ncclDevKernel_AllReduce", "memcpy HtoD"};
    for (int k = 1; k <= 4; ++k) test::addStream(trace);  // tracks 1 to 4, "GPU 0 stream k"
    trace.strings = {"host", names[0], names[1], names[2]};
    storage::addSpan(
        trace, {.track = 0, .start = 0, .end = 100'000, .category = Category::ComputeAttention, .step = 0});
    trace.linked.push_back(
        {7, {.track = 0, .start = 0, .end = 100'000, .category = Category::ComputeAttention}});
    for (int k = 1; k <= 3; ++k) {
      storage::GpuActivityRecord g;
      g.track = k;
      g.start = 0;
      g.end = 100'000;
      g.name = uint32_t(k);
      g.kind = k == 3 ? storage::GpuActivityKind::Memcpy : storage::GpuActivityKind::Kernel;
      g.span = 7;
      trace.gpu.push_back(g);
    }
    storage::finishTrace(trace);
    storage::StepMetric step;
    step.start_ns = 0;
    step.end_ns = 500'000;
    trace.steps.push_back(step);
    const Frame f(trace, TimeMapping{{0, 600'000}, 600});
    QCOMPARE(f.summary.role(1), StreamRole::Compute);
    QCOMPARE(f.summary.role(2), StreamRole::Nccl);
    QCOMPARE(f.summary.role(3), StreamRole::Copy);
    std::set<int32_t> tracks;
    for (const BubbleItem& b : f.list.bubbles) tracks.insert(f.layout.rows[size_t(b.row)].track);
    QCOMPARE(tracks, (std::set<int32_t>{0, 1}));  // the host track and the compute stream
    QCOMPARE(QString::fromStdString(trackLabel(trace, f.layout.rows[size_t(f.layout.rowOfTrack(2))])),
             QString::fromUtf8("GPU 0 stream 2 · NCCL"));
  }

  void rankHeadersShowTheScheduleStretchesAndZoomedOutTheirDensity() {
    // A wait before F0 (the fill), F0 over two spans with a wait inside, F1 after a wait, B0, the
    // optimizer.
    storage::Trace trace = test::makeTrace(1, {{0, 0, 100, Category::Wait, Phase::Forward, 0},
                                               {0, 100, 200, Category::ComputeAttention, Phase::Forward, 0},
                                               {0, 200, 300, Category::Wait, Phase::Forward, 0},
                                               {0, 300, 400, Category::CommTpAllreduce, Phase::Forward, 0},
                                               {0, 400, 500, Category::Wait, Phase::Forward, 1},
                                               {0, 500, 600, Category::ComputeExpert, Phase::Forward, 1},
                                               {0, 600, 800, Category::ComputeExpert, Phase::Backward, 0},
                                               {0, 800, 900, Category::Optimizer, Phase::Optimizer}});
    const TimeMapping m{{0, 1000}, 1000};
    const Frame f(trace, m);
    QCOMPARE(f.list.phases.size(), size_t(4));
    QCOMPARE(f.list.phases[0], (PhaseItem{100, 400, 0, Phase::Forward, 0}));
    QCOMPARE(f.list.phases[1], (PhaseItem{500, 600, 0, Phase::Forward, 1}));
    QCOMPARE(f.list.phases[2], (PhaseItem{600, 800, 0, Phase::Backward, 0}));
    QCOMPARE(f.list.phases[3], (PhaseItem{800, 900, 0, Phase::Optimizer, -1}));

    // Collapsed, the header still shows them.
    QCOMPARE(Frame(trace, m, {}, {0}).list.phases.size(), size_t(4));
    // With more spans in view than it walks, the header shows each pixel's phases instead.
    DrawOptions o;
    o.maxPhaseWalk = 3;
    const Frame dense(trace, m, o);
    QCOMPARE(dense.list.phases.size(), size_t(0));
    const auto header = dense.list.densityOfRow(0);
    QCOMPARE(header.size(), size_t(1));
    QCOMPARE(header[0]->kind, DensityKind::Phases);
    const auto columns = dense.list.columnsOf(*header[0]);
    auto at = [&](int x) { return columns[size_t(x - header[0]->x0)]; };
    QCOMPARE(at(150).forward, uint8_t(255));
    QCOMPARE(at(700).backward, uint8_t(255));
    QCOMPARE(at(850).optimizer, uint8_t(255));
    QCOMPARE(at(150).backward, uint8_t(0));
  }

  void zoomedOutTheRankHeaderShowsForwardAndBackwardDensity() {
    // 100k spans: four forward, four backward, in turn; zoomed out, each pixel half and half.
    const Frame f(regular(100'000), TimeMapping{{0, 100'000'000}, 1000});
    const auto header = f.list.densityOfRow(0);
    QCOMPARE(header.size(), size_t(1));
    QCOMPARE(header[0]->kind, DensityKind::Phases);
    const auto columns = f.list.columnsOf(*header[0]);
    for (size_t x = 1; x + 1 < columns.size(); ++x) {
      QVERIFY(std::abs(columns[x].forward - 115) <= 4);  // 450 of every 1000 ns
      QVERIFY(std::abs(columns[x].backward - 115) <= 4);
    }
  }

  void aGpusUtilisationRow() {
    // Two streams of GPU 0 (ranks' device 0): kernels over [0, 100) and [50, 150) µs, and [300, 400) µs.
    storage::Trace trace = test::makeTrace(1, {});
    trace.ranks[0].device = 0;
    test::addStream(trace);  // tracks 1 and 2
    test::addStream(trace);
    trace.strings.push_back("k");
    auto record = [&](int32_t track, int64_t a, int64_t b) {
      storage::GpuActivityRecord g;
      g.track = track;
      g.start = a;
      g.end = b;
      g.name = 3;
      trace.gpu.push_back(g);
    };
    record(1, 0, 100'000);
    record(2, 50'000, 150'000);
    record(1, 300'000, 400'000);
    storage::finishTrace(trace);
    const Frame f(trace, TimeMapping{{0, 500'000}, 500});  // 1 µs per pixel
    QCOMPARE(f.summary.devices.size(), size_t(1));
    QCOMPARE(f.summary.devices[0].busyIn(0, 500'000), int64_t(250'000));
    const int row = 1;
    QCOMPARE(f.layout.rows[size_t(row)].kind, TimelineRow::Kind::Utilisation);
    const auto density = f.list.densityOfRow(row);
    QCOMPARE(density.size(), size_t(1));
    QCOMPARE(density[0]->kind, DensityKind::Utilisation);
    const auto columns = f.list.columnsOf(*density[0]);
    QCOMPARE(columns[10].busy, uint8_t(255));
    QCOMPARE(columns[120].busy, uint8_t(255));
    QCOMPARE(columns[200].busy, uint8_t(0));
    QCOMPARE(columns[350].busy, uint8_t(255));
    QCOMPARE(QString::fromStdString(trackLabel(trace, f.layout.rows[size_t(row)])),
             QString("GPU 0 utilisation"));
    // Zoomed out over 100 µs per pixel: the first pixel is all busy (0-150 µs union), the fourth all.
    const Frame out(trace, TimeMapping{{0, 500'000}, 5});
    const auto c = out.list.columnsOf(*out.list.densityOfRow(row)[0]);
    QCOMPARE(c[0].busy, uint8_t(255));
    QCOMPARE(c[1].busy, uint8_t(128));  // [100, 200): 50 µs
    QCOMPARE(c[2].busy, uint8_t(0));
  }

  void nestedSpansAreDrawnInDepthLanes() {
    // A step [0, 1000) holding micro-batches [0, 400) and [500, 900), the first holding a layer
    // [100, 300): three lanes, each span in the lane of its depth, parents above children.
    storage::Trace trace = test::makeTrace(1, {{0, 0, 1000, Category::Optimizer},
                                               {0, 0, 400, Category::ComputeAttention},
                                               {0, 500, 900, Category::ComputeExpert},
                                               {0, 100, 300, Category::CommTpAllreduce}});
    const Frame f(trace, TimeMapping{{0, 1000}, 1000});
    const TimelineRow& row = f.layout.rows[1];
    QCOMPARE(row.lanes, 3);
    QCOMPARE(row.height, 2 * f.layout.metrics.boxMargin + 3 * f.layout.metrics.laneHeight);
    std::map<int, std::vector<Category>> byLane;
    for (const DrawItem& item : f.list.itemsOfRow(1)) byLane[item.lane].push_back(item.category);
    QCOMPARE(byLane[0], (std::vector<Category>{Category::Optimizer}));
    QCOMPARE(byLane[1], (std::vector<Category>{Category::ComputeAttention, Category::ComputeExpert}));
    QCOMPARE(byLane[2], (std::vector<Category>{Category::CommTpAllreduce}));
    // Lanes are stacked inside the row, apart.
    QVERIFY(f.layout.laneTop(row, 1) >= f.layout.laneBottom(row, 0));
    QVERIFY(f.layout.laneBottom(row, 2) <= f.layout.boxBottom(row));
    QCOMPARE(f.layout.laneAt(row, f.layout.laneTop(row, 2) + 1), 2);
    // A flat track keeps one lane and its height.
    const Frame flat(denseThenSparse(), TimeMapping{{0, 1000}, 1000});
    QCOMPARE(flat.layout.rows[1].lanes, 1);
    QCOMPARE(flat.layout.rows[1].height, flat.layout.metrics.trackHeight);
  }

  void gpuWorkOutsideSpansIsDrawnBeforeTheFirstStep() {
    // A stream with a copy no span launched at [0, 50) µs, before the first span at 100 µs.
    storage::Trace trace = test::makeTrace(1, {{0, 100'000, 200'000}});
    test::addStream(trace);  // track 1
    storage::GpuActivityRecord g;
    g.track = 1;
    g.start = 0;
    g.end = 50'000;
    g.kind = storage::GpuActivityKind::Memcpy;
    trace.gpu.push_back(g);
    storage::finishTrace(trace);
    const Frame f(trace, TimeMapping{{0, 200'000}, 200});
    QCOMPARE(f.summary.extent, (TimeRange{0, 200'000}));  // the extent reaches back to the copy
    QCOMPARE(f.list.outside.size(), size_t(1));
    QCOMPARE(f.list.outside[0].x0, 0.0f);
    QCOMPARE(f.list.outside[0].x1, 50.0f);
    QCOMPARE(f.list.outside[0].row, f.layout.rowOfTrack(1));
  }

  // ZB-H1's weight passes are stretches of their own (W0); an interleaved schedule's chunks split the
  // stretches of one micro-batch and label them F0.0, F0.1.
  void rankHeadersLabelWeightPassesAndChunks() {
    using storage::Phase;
    storage::Trace trace = test::makeTrace(1, {});
    auto span = [&](int64_t t0, int64_t t1, Phase phase, int mb, int chunk) {
      storage::SpanRecord s;
      s.start = t0;
      s.end = t1;
      s.category = Category::ComputeAttention;
      s.phase = phase;
      s.step = 0;
      s.microbatch = mb;
      s.chunk = chunk;
      storage::addSpan(trace, s);
    };
    span(0, 100, Phase::Forward, 0, 0);
    span(100, 200, Phase::Forward, 0, 1);
    span(200, 300, Phase::Backward, 0, 1);
    span(300, 400, Phase::BackwardWeight, 0, 1);
    storage::finishTrace(trace);
    const Frame f(trace, TimeMapping{{0, 400}, 400});
    const DrawList& list = f.list;
    QCOMPARE(list.phases.size(), size_t(4));
    QCOMPARE(list.phases[1], (PhaseItem{100, 200, 0, Phase::Forward, 0, 1}));
    QCOMPARE(list.phases[3], (PhaseItem{300, 400, 0, Phase::BackwardWeight, 0, 1}));
    std::vector<std::string> labels;
    for (const PhaseItem& p : list.phases) labels.push_back(phaseLabel(p.phase, p.microbatch, p.chunk));
    QCOMPARE(labels, (std::vector<std::string>{"F0.0", "F0.1", "B0.1", "W0.1"}));
    QCOMPARE(phaseLabel(Phase::BackwardWeight, 3), std::string("W3"));
    QCOMPARE(phaseLabel(Phase::Forward, 3), std::string("F3"));
    QCOMPARE(phaseLabel(Phase::Optimizer, -1), std::string("opt"));
    QCOMPARE(phaseLabel(Phase::Forward, -1), std::string());
    // Zoomed out (more spans than the header walks), the weight pass is backward density.
    DrawOptions o;
    o.maxPhaseWalk = 1;
    const Frame zoomedOut(trace, TimeMapping{{0, 400}, 400}, o);
    const DrawList& dense = zoomedOut.list;
    const auto header = dense.densityOfRow(0);
    QCOMPARE(header.size(), size_t(1));
    const auto columns = dense.columnsOf(*header[0]);
    QCOMPARE(columns[size_t(350 - header[0]->x0)].backward, uint8_t(255));
    QCOMPARE(columns[size_t(350 - header[0]->x0)].forward, uint8_t(0));
  }

  void collapsedRanksAndOffscreenRowsAreSkipped() {
    const auto trace = test::makeTrace(3, {{0, 0, 100}, {1, 0, 100}, {2, 0, 100}});
    const TimelineSummary summary = summarizeTrace(trace);
    const auto layout = layoutTimeline(trace, summary, {1});
    QCOMPARE(layout.rows.size(), size_t(5));  // group, track, group (collapsed), group, track
    QVERIFY(layout.rows[2].collapsed);
    QCOMPARE(layout.rowOfTrack(1), -1);
    DrawOptions o;
    o.yTop = layout.rows[3].y;  // from the third rank's header down
    const DrawList list = buildDrawList(trace, summary, layout, TimeMapping{{0, 100}, 100}, o);
    QCOMPARE(list.itemsOfRow(1).size(), size_t(0));
    QCOMPARE(list.itemsOfRow(4).size(), size_t(1));
    QCOMPARE(list.stats.rows, size_t(1));
  }
};

QTEST_APPLESS_MAIN(DrawListTest)
#include "draw_list_test.moc"
