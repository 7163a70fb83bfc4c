#include "ui/timeline_render.h"

#include <QFontMetrics>
#include <QTest>

#include "tests/ui/test_traces.h"
#include "ui/draw_list.h"
#include "ui/timeline_painter.h"
#include "ui/timeline_palette.h"
#include "ui/timeline_summary.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;
using storage::Phase;

namespace {

// Two stages over [0, 1 ms) in one step: stage 0 computes attention then all-reduces; stage 1 waits,
// then runs an expert span, then idles (a bubble) until the step ends.
storage::Trace pipeline() {
  storage::Trace t = test::makeTrace(2, {{0, 0, 400'000, Category::ComputeAttention, Phase::Forward},
                                         {0, 400'000, 1'000'000, Category::CommTpAllreduce, Phase::Forward},
                                         {1, 0, 300'000, Category::Wait, Phase::Forward},
                                         {1, 300'000, 600'000, Category::ComputeExpert, Phase::Backward}});
  storage::StepMetric step;
  step.start_ns = 0;
  step.end_ns = 1'000'000;
  t.steps.push_back(step);
  return t;
}

}  // namespace

class TimelineRenderTest : public QObject {
  Q_OBJECT

  // The pixel a little inside the top-left corner of the box at time t on track's row: clear of
  // the centred label.
  static QPoint boxPixel(const storage::Trace& trace, const RenderOptions& o, int32_t track, int64_t t) {
    const TimelineLayout layout = layoutTimeline(trace, summarizeTrace(trace), {}, o.metrics);
    const TimeMapping m = renderMapping(trace, o);
    const auto& row = layout.rows[static_cast<size_t>(layout.rowOfTrack(track))];
    return {o.metrics.labelWidth + static_cast<int>(m.toX(t)), layout.boxTop(row) + 1};
  }

 private slots:
  void boxesHaveTheirCategoryColours() {
    const auto trace = pipeline();
    RenderOptions o;
    o.size = QSize(1000, 300);
    const QImage image = renderTimeline(trace, o);
    QCOMPARE(image.size(), o.size);
    QCOMPARE(image.pixelColor(boxPixel(trace, o, 0, 2'000)), categoryColor(Category::ComputeAttention));
    QCOMPARE(image.pixelColor(boxPixel(trace, o, 0, 402'000)), categoryColor(Category::CommTpAllreduce));
    // Backward is a darker shade of the category's colour.
    const QColor backward = image.pixelColor(boxPixel(trace, o, 1, 302'000));
    QVERIFY2(backward == spanFill(Category::ComputeExpert, Phase::Backward) ||
                 backward.lightness() < categoryColor(Category::ComputeExpert).lightness(),
             qPrintable(backward.name()));
    QVERIFY(backward != categoryColor(Category::ComputeExpert));
  }

  void bubblesAreShaded() {
    const auto trace = pipeline();
    RenderOptions o;
    o.size = QSize(1000, 300);
    const QImage image = renderTimeline(trace, o);
    // Stage 1 idles over [600 µs, 1 ms): bubble colour or its hatch, never the background.
    int bubble = 0, total = 0;
    const QPoint a = boxPixel(trace, o, 1, 650'000), b = boxPixel(trace, o, 1, 950'000);
    for (int x = a.x(); x < b.x(); ++x) {
      const QColor c = image.pixelColor(x, a.y() + 4);
      bubble += c == palette::kBubble || c == palette::kBubbleHatch ? 1 : 0;
      ++total;
    }
    QVERIFY2(bubble == total, qPrintable(QString("%1 of %2").arg(bubble).arg(total)));
  }

  void aRangeZooms() {
    const auto trace = pipeline();
    RenderOptions o;
    o.size = QSize(1000, 300);
    o.range = TimeRange{350'000, 450'000};
    const QImage image = renderTimeline(trace, o);
    const int lw = o.metrics.labelWidth;
    const int y = boxPixel(trace, o, 0, 350'000).y();
    // The attention/all-reduce boundary sits in the middle of the time area.
    QCOMPARE(image.pixelColor(lw + 100, y), categoryColor(Category::ComputeAttention));
    QCOMPARE(image.pixelColor(lw + (1000 - lw) - 100, y), categoryColor(Category::CommTpAllreduce));
  }

  void labelsFitOrAreLeftOut() {
    auto trace = test::makeTrace(1, {{0, 0, 1000, Category::ComputeAttention, Phase::Backward, 3}});
    QFont font;
    font.setPixelSize(11);
    const QFontMetrics fm(font);
    DrawItem item;
    item.track = 0;
    item.first = 0;
    item.microbatch = 3;
    item.phase = Phase::Backward;
    QCOMPARE(boxLabel(trace, item, fm, 10), QString());
    QCOMPARE(boxLabel(trace, item, fm, 30), QString("B3"));
    QCOMPARE(boxLabel(trace, item, fm, 300), QString("B3 span"));
  }

  void zoomedOutEachPixelShowsItsCategoriesStacked() {
    // 200k spans of 900 ns every 1 µs: attention, expert, expert, all-reduce in turn. The whole run in
    // 1000 px: every column stacks, from the bottom in the categories' order, a quarter of its height
    // attention, a half expert, a quarter all-reduce (of 90% busy), idle at the top.
    storage::Trace trace = test::makeTrace(1, {});
    const Category cycle[] = {Category::ComputeAttention, Category::ComputeExpert, Category::ComputeExpert,
                              Category::CommTpAllreduce};
    for (int i = 0; i < 200'000; ++i)
      storage::addSpan(trace, {.start = i * 1000, .end = i * 1000 + 900, .category = cycle[i % 4]});
    storage::finishTrace(trace);
    RenderOptions o;
    o.size = QSize(1280, 200);
    o.legend = false;
    const QImage image = renderTimeline(trace, o);
    const TimelineLayout layout = layoutTimeline(trace, summarizeTrace(trace), {}, o.metrics);
    const auto& row = layout.rows[1];
    const int top = layout.boxTop(row), bottom = layout.boxBottom(row), h = bottom - top;
    for (int x : {o.metrics.labelWidth + 100, o.metrics.labelWidth + 500, o.metrics.labelWidth + 900}) {
      QCOMPARE(image.pixelColor(x, bottom - 1), categoryColor(Category::ComputeAttention));
      QCOMPARE(image.pixelColor(x, bottom - 1 - h * 45 / 100), categoryColor(Category::ComputeExpert));
      QCOMPARE(image.pixelColor(x, bottom - 1 - h * 80 / 100), categoryColor(Category::CommTpAllreduce));
      QVERIFY(image.pixelColor(x, top) != categoryColor(Category::CommTpAllreduce));  // the idle tenth
    }
  }

  void nestedSpansAreDrawnInTheirLanes() {
    // A step [0, 1 ms) of optimizer colour holding attention [100, 600) us holding an all-reduce
    // [200, 300) us: three lanes, each drawn in its own band of the row.
    const auto trace = test::makeTrace(1, {{0, 0, 1'000'000, Category::Optimizer},
                                           {0, 100'000, 600'000, Category::ComputeAttention},
                                           {0, 200'000, 300'000, Category::CommTpAllreduce}});
    RenderOptions o;
    o.size = QSize(1280, 200);
    const QImage image = renderTimeline(trace, o);
    const TimelineSummary summary = summarizeTrace(trace);
    const TimelineLayout layout = layoutTimeline(trace, summary, {}, o.metrics);
    const TimeMapping m = renderMapping(trace, o);
    const auto& row = layout.rows[1];
    QCOMPARE(row.lanes, 3);
    const int x = o.metrics.labelWidth + static_cast<int>(m.toX(250'000));
    QCOMPARE(image.pixelColor(x, layout.laneTop(row, 0) + 1), categoryColor(Category::Optimizer));
    QCOMPARE(image.pixelColor(x, layout.laneTop(row, 1) + 1), categoryColor(Category::ComputeAttention));
    QCOMPARE(image.pixelColor(x, layout.laneTop(row, 2) + 1), categoryColor(Category::CommTpAllreduce));
    // Outside the child, its lane is empty.
    const int later = o.metrics.labelWidth + static_cast<int>(m.toX(800'000));
    QVERIFY(image.pixelColor(later, layout.laneTop(row, 1) + 1) != categoryColor(Category::ComputeAttention));
    QCOMPARE(image.pixelColor(later, layout.laneTop(row, 0) + 1), categoryColor(Category::Optimizer));
  }

  void anAreaSelectionShadesItsRowsOverItsRange() {
    const auto trace = pipeline();
    RenderOptions o;
    o.size = QSize(1000, 300);
    o.legend = false;
    const QImage plain = renderTimeline(trace, o);
    o.area = AreaSelection{{200'000, 500'000}, {1}};  // stage 1's row only
    const QImage shaded = renderTimeline(trace, o);
    const TimelineLayout layout = layoutTimeline(trace, summarizeTrace(trace), {}, o.metrics);
    const TimeMapping m = renderMapping(trace, o);
    const int lw = o.metrics.labelWidth;
    auto at = [&](int32_t track, int64_t t) {
      const auto& row = layout.rows[size_t(layout.rowOfTrack(track))];
      return QPoint(lw + int(m.toX(t)), row.y + 1);  // the row's margin, above its boxes
    };
    QVERIFY(shaded.pixelColor(at(1, 350'000)) != plain.pixelColor(at(1, 350'000)));  // inside
    QCOMPARE(shaded.pixelColor(at(0, 350'000)), plain.pixelColor(at(0, 350'000)));   // another row
    QCOMPARE(shaded.pixelColor(at(1, 700'000)), plain.pixelColor(at(1, 700'000)));   // after the range
  }

  void searchMatchesAreOutlinedAndTickedOnTheirRows() {
    // Stage 0's all-reduce is named "tp_allreduce", every other span "span" (test_traces.h's strings).
    auto trace = pipeline();
    trace.spans[0].name[1] = 2;
    SpanSearch search;
    search.setQuery(trace, "allreduce");
    QCOMPARE(search.count(), size_t(1));
    RenderOptions o;
    o.size = QSize(1000, 300);
    o.legend = false;
    const QImage plain = renderTimeline(trace, o);
    o.search = &search;
    const QImage marked = renderTimeline(trace, o);
    const TimelineLayout layout = layoutTimeline(trace, summarizeTrace(trace), {}, o.metrics);
    const TimeMapping m = renderMapping(trace, o);
    const int lw = o.metrics.labelWidth;
    // Pixels in the search colour's hue (antialiased edges included) on track's row over [t0, t1): in
    // its box area, or in its top margin (the tick).
    const int hue = palette::kSearchMatch.hue();
    auto count = [&](const QImage& image, int32_t track, int64_t t0, int64_t t1, bool tick) {
      const auto& row = layout.rows[size_t(layout.rowOfTrack(track))];
      const int y0 = tick ? row.y : layout.boxTop(row),
                y1 = tick ? layout.boxTop(row) : layout.boxBottom(row);
      int n = 0;
      for (int x = lw + int(m.toX(t0)) + 1; x < lw + int(m.toX(t1)) - 1; ++x)
        for (int y = y0; y < y1; ++y) {
          const QColor c = image.pixelColor(x, y);
          n += c.saturation() > 150 && std::abs(c.hue() - hue) <= 8 ? 1 : 0;
        }
      return n;
    };
    // The matching box is outlined (its top and bottom edges at least, across the box); the others
    // are not; nothing is without a search.
    const int boxWidth = int(m.toX(1'000'000) - m.toX(400'000));
    QVERIFY2(count(marked, 0, 400'000, 1'000'000, false) >= boxWidth,
             qPrintable(QString::number(count(marked, 0, 400'000, 1'000'000, false))));
    QCOMPARE(count(marked, 0, 0, 400'000, false), 0);
    QCOMPARE(count(marked, 1, 0, 1'000'000, false), 0);
    QCOMPARE(count(plain, 0, 400'000, 1'000'000, false), 0);
    // A tick along the top of its row over the whole match, and only there.
    const auto& row0 = layout.rows[size_t(layout.rowOfTrack(0))];
    const QColor tick = palette::kSearchMatch.darker(115);
    for (int64_t t = 420'000; t < 1'000'000; t += 100'000)
      QCOMPARE(marked.pixelColor(lw + int(m.toX(t)), row0.y).rgb(), tick.rgb());
    QCOMPARE(count(marked, 0, 0, 400'000, true), 0);
    QCOMPARE(count(marked, 1, 0, 1'000'000, true), 0);
    QCOMPARE(count(plain, 0, 400'000, 1'000'000, true), 0);
  }

  // The label column's default width shows a rank's whole label and a GPU stream's name with its role
  // (issue 17's item 8: rank labels were cut). The painter elides what does not fit: nothing here.
  void theLongestLabelsFitTheDefaultLabelColumn() {
    storage::RankInfo r;
    r.rank = 127;
    r.stage = 15;
    r.tp_rank = 7;
    r.dp_rank = 15;
    r.device = 7;
    const LayoutMetrics metrics;
    QFont font;
    font.setPixelSize(11);  // the timeline's font (timeline_widget.cpp, timeline_render.cpp)
    QFont bold = font;
    bold.setBold(true);
    const QString rank = QString::fromUtf8("▾ ") + QString::fromStdString(rankLabel(r));
    QCOMPARE(QFontMetrics(bold).elidedText(rank, Qt::ElideRight, metrics.labelWidth - 10), rank);
    TimelineRow row;
    row.track = 0;
    row.role = StreamRole::ComputeNccl;
    storage::Trace t;
    t.tracks.push_back({0, 127, storage::TrackKind::GpuStream, "GPU 7 stream 39", 0, 7, 39});
    const QString track = QString::fromStdString(trackLabel(t, row));
    QCOMPARE(track, QString::fromUtf8("GPU 7 stream 39 · compute + NCCL"));
    QCOMPARE(QFontMetrics(font).elidedText(track, Qt::ElideMiddle, metrics.labelWidth - 28), track);
  }
};

QTEST_MAIN(TimelineRenderTest)
#include "timeline_render_test.moc"
