#include "ui/draw_list.h"

#include <QTest>
#include <set>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

namespace {

// Track 0: a dense region of 1000 spans of 500 ns every 1 µs over [0, 1 ms), then a sparse region of
// 10 spans of 50 µs every 100 µs over [1 ms, 2 ms).
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

}  // namespace

class DrawListTest : public QObject {
  Q_OBJECT

 private slots:
  void denseRegionFoldsSparseDoesNot() {
    const auto trace = denseThenSparse();
    const auto layout = layoutTimeline(trace, {});
    const TimeMapping m{{0, 2'000'000}, 1000};  // 2 µs per pixel: the dense spans are 0.25 px wide
    DrawOptions o;
    o.bubbles = false;
    const DrawList list = buildDrawList(trace, layout, m, o);
    const auto items = list.itemsOfRow(1);
    QCOMPARE(items.size(), size_t(11));
    QCOMPARE(items[0].kind, DrawKind::Folded);
    QCOMPARE(items[0].count, 1000u);
    QCOMPARE(items[0].first, 0u);
    QCOMPARE(items[0].x0, 0.0f);
    QCOMPARE(items[0].x1, 499.75f);
    QVERIFY(items[0].mixed);
    for (size_t k = 1; k < items.size(); ++k) {
      QCOMPARE(items[k].kind, DrawKind::Span);
      QCOMPARE(items[k].count, 1u);
      QCOMPARE(items[k].first, uint32_t(999 + k));
      QCOMPARE(items[k].category, Category::ComputeExpert);
      QCOMPARE(items[k].x1 - items[k].x0, 25.0f);
    }
  }

  void zoomedInTheDenseRegionUnfolds() {
    const auto trace = denseThenSparse();
    const auto layout = layoutTimeline(trace, {});
    const TimeMapping m{{0, 20'000}, 1000};  // 20 ns per pixel: 25 px per span
    const DrawList list = buildDrawList(trace, layout, m);
    const auto items = list.itemsOfRow(1);
    QCOMPARE(items.size(), size_t(20));
    for (size_t k = 0; k < items.size(); ++k) {
      QCOMPARE(items[k].kind, DrawKind::Span);
      QCOMPARE(items[k].first, uint32_t(k));
      QCOMPARE(items[k].x0, float(k * 50));
    }
  }

  void narrowSpansFarApartStayApart() {
    // 100 ns spans every 100 µs: 0.05 px wide but 50 px apart; each is a block of one, 1 px wide.
    storage::Trace trace = test::makeTrace(1, {});
    for (int k = 0; k < 20; ++k) {
      storage::SpanRecord s;
      s.start = k * 100'000;
      s.end = s.start + 100;
      storage::addSpan(trace, s);
    }
    storage::finishTrace(trace);
    const auto layout = layoutTimeline(trace, {});
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 2'000'000}, 1000});
    const auto items = list.itemsOfRow(1);
    QCOMPARE(items.size(), size_t(20));
    for (const auto& item : items) {
      QCOMPARE(item.count, 1u);
      QCOMPARE(item.kind, DrawKind::Span);
      QCOMPARE(item.x1 - item.x0, 1.0f);
    }
  }

  void aMillionSpansCostAFewThousandSteps() {
    storage::Trace trace = test::makeTrace(1, {});
    for (int i = 0; i < 1'000'000; ++i) {
      storage::SpanRecord s;
      s.start = int64_t(i) * 1000;
      s.end = s.start + 900;
      storage::addSpan(trace, s);
    }
    storage::finishTrace(trace);
    const auto layout = layoutTimeline(trace, {});
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 1'000'000'000}, 1920});
    QCOMPARE(list.itemsOfRow(1).size(), size_t(1));
    QCOMPARE(list.itemsOfRow(1)[0].count, 1'000'000u);
    QVERIFY2(
        list.stats.spansVisited + list.stats.searches < 2000,
        qPrintable(QString("visited %1, searches %2").arg(list.stats.spansVisited).arg(list.stats.searches)));
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
    const auto layout = layoutTimeline(trace, {});
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 10'000'000}, 1000});
    QCOMPARE(list.itemsOfRow(1).size(), size_t(1));
    QVERIFY(list.itemsOfRow(1)[0].count <= 10'100u);
    QVERIFY2(list.stats.searches < 2000, qPrintable(QString::number(list.stats.searches)));
  }

  void visibleRangeOnly() {
    const auto trace = denseThenSparse();
    const auto layout = layoutTimeline(trace, {});
    // [1.15 ms, 1.32 ms): the spans starting at 1.1 (ends 1.15, out), 1.2 and 1.3 ms.
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{1'150'000, 1'320'000}, 170});
    const auto items = list.itemsOfRow(1);
    QCOMPARE(items.size(), size_t(2));
    QCOMPARE(items[0].first, 1002u);
    QCOMPARE(items[1].first, 1003u);
    QCOMPARE(items[1].x1, 172.0f);  // clipped to 2 px past the edge
  }

  void hiddenCategoriesAreLeftOut() {
    const auto trace = denseThenSparse();
    const auto layout = layoutTimeline(trace, {});
    DrawOptions o;
    o.hidden.set(size_t(Category::ComputeExpert));
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 2'000'000}, 1000}, o);
    QCOMPARE(list.itemsOfRow(1).size(), size_t(1));
    QCOMPARE(list.itemsOfRow(1)[0].kind, DrawKind::Folded);
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
    const auto layout = layoutTimeline(trace, {});
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 600'000}, 600});
    QCOMPARE(list.bubbles.size(), size_t(2));
    QCOMPARE(list.bubbles[0], (BubbleItem{100, 300, 1}));
    QCOMPARE(list.bubbles[1], (BubbleItem{400, 500, 1}));
    QCOMPARE(list.itemsOfRow(1).size(), size_t(3));  // the wait is still drawn
  }

  void unusedGpuStreamsHaveNoBubbles() {
    // Rank 0: a host track with a span in the step, a GPU stream with one, and a GPU stream with none.
    storage::Trace trace = test::makeTrace(1, {});
    for (int k = 1; k <= 2; ++k) {
      storage::TrackInfo stream;
      stream.id = k;
      stream.rank = 0;
      stream.kind = storage::TrackKind::GpuStream;
      stream.order = k;
      stream.name = "GPU 0 stream " + std::to_string(k);
      trace.tracks.push_back(stream);
    }
    trace.spans.resize(3);
    storage::addSpan(
        trace, {.track = 0, .start = 0, .end = 100'000, .category = Category::ComputeAttention, .step = 0});
    storage::addSpan(
        trace, {.track = 1, .start = 0, .end = 200'000, .category = Category::ComputeAttention, .step = 0});
    storage::finishTrace(trace);
    storage::StepMetric step;
    step.start_ns = 0;
    step.end_ns = 500'000;
    trace.steps.push_back(step);
    const auto layout = layoutTimeline(trace, {});
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 600'000}, 600});
    std::set<int> rows;
    for (const BubbleItem& b : list.bubbles) rows.insert(b.row);
    QCOMPARE(rows.size(), size_t(2));  // the host track and the stream that ran something
    for (int r = 0; r < int(layout.rows.size()); ++r) {
      if (layout.rows[size_t(r)].track == 2) QVERIFY(!rows.count(r));
    }
  }

  void rankHeadersShowTheScheduleStretches() {
    using storage::Phase;
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
    const auto layout = layoutTimeline(trace, {});
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 1000}, 1000});
    QCOMPARE(list.phases.size(), size_t(4));
    QCOMPARE(list.phases[0], (PhaseItem{100, 400, 0, Phase::Forward, 0}));
    QCOMPARE(list.phases[1], (PhaseItem{500, 600, 0, Phase::Forward, 1}));
    QCOMPARE(list.phases[2], (PhaseItem{600, 800, 0, Phase::Backward, 0}));
    QCOMPARE(list.phases[3], (PhaseItem{800, 900, 0, Phase::Optimizer, -1}));

    // Collapsed, the header still shows them; too many spans in view, it shows none.
    QCOMPARE(buildDrawList(trace, layoutTimeline(trace, {0}), TimeMapping{{0, 1000}, 1000}).phases.size(),
             size_t(4));
    DrawOptions o;
    o.maxPhaseWalk = 3;
    QCOMPARE(buildDrawList(trace, layout, TimeMapping{{0, 1000}, 1000}, o).phases.size(), size_t(0));
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
    const DrawList list = buildDrawList(trace, layoutTimeline(trace, {}), TimeMapping{{0, 400}, 400});
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
  }

  void collapsedRanksAndOffscreenRowsAreSkipped() {
    const auto trace = test::makeTrace(3, {{0, 0, 100}, {1, 0, 100}, {2, 0, 100}});
    const auto layout = layoutTimeline(trace, {1});
    QCOMPARE(layout.rows.size(), size_t(5));  // group, track, group (collapsed), group, track
    QVERIFY(layout.rows[2].collapsed);
    QCOMPARE(layout.rowOfTrack(1), -1);
    DrawOptions o;
    o.yTop = layout.rows[3].y;  // from the third rank's header down
    const DrawList list = buildDrawList(trace, layout, TimeMapping{{0, 100}, 100}, o);
    QCOMPARE(list.itemsOfRow(1).size(), size_t(0));
    QCOMPARE(list.itemsOfRow(4).size(), size_t(1));
    QCOMPARE(list.stats.rows, size_t(1));
  }
};

QTEST_APPLESS_MAIN(DrawListTest)
#include "draw_list_test.moc"
