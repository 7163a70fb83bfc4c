// The breakdown panel of a run's view follows the area selected in the timeline (shift-drag), and
// opens in GPU time for a run traced on GPUs.
#include "ui/breakdown_view.h"

#include <QTemporaryDir>
#include <QTest>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
#include "ui/run_view.h"
#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class BreakdownViewTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

 private slots:
  void rangeSelectionPicksTheSteps() {
    // Two ranks; step 0 over [0, 1000) us, step 1 over [1000, 2000) us. Rank 1 is idle for the
    // first half of step 0 only.
    storage::Trace trace = test::makeTrace(2, {});
    auto span = [&](int32_t track, int64_t start, int64_t end, Category c, int32_t step) {
      storage::SpanRecord s;
      s.track = track;
      s.start = start;
      s.end = end;
      s.category = c;
      s.step = step;
      storage::addSpan(trace, s);
    };
    span(0, 0, 1'000'000, Category::ComputeAttention, 0);
    span(1, 500'000, 1'000'000, Category::ComputeExpert, 0);
    span(0, 1'000'000, 2'000'000, Category::ComputeAttention, 1);
    span(1, 1'000'000, 2'000'000, Category::CommPpSendrecv, 1);
    storage::finishTrace(trace);
    const QString path = dir_.filePath(QStringLiteral("steps.moescope"));
    test::writeRun(path.toStdString(), trace);

    RunView view(path);
    view.resize(1400, 900);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(!view.isBreakdownVisible());
    view.setBreakdownVisible(true);
    QVERIFY(view.isBreakdownVisible());
    BreakdownView* b = view.breakdown();
    QVERIFY(b->breakdown().steps == (std::vector<int32_t>{0, 1}));
    // Rank 1 over both steps: 500 us of bubble in step 0.
    QCOMPARE(b->breakdown().ranks[1].bubble_ns, 500'000);

    // Shift-drag over the middle of step 1 in the timeline.
    TimelineWidget* t = view.timeline();
    const int lw = t->layout().metrics.labelWidth;
    const auto& row = t->layout().rows[static_cast<size_t>(t->layout().rowOfTrack(0))];
    const int y = row.y + row.height / 2 - t->scrollY();
    const QPoint a(lw + static_cast<int>(t->mapping().toX(1'200'000)), y);
    const QPoint c(lw + static_cast<int>(t->mapping().toX(1'800'000)), y);
    QTest::mousePress(t, Qt::LeftButton, Qt::ShiftModifier, a);
    QTest::mouseMove(t, (a + c) / 2);
    QTest::mouseMove(t, c);
    QTest::mouseRelease(t, Qt::LeftButton, Qt::ShiftModifier, c);
    QVERIFY(t->area().has_value());
    view.updateSelectionNow();  // rather than wait for the view to settle
    QVERIFY(b->breakdown().steps == (std::vector<int32_t>{1}));
    QCOMPARE(b->breakdown().ranks[1].bubble_ns, 0);
    QCOMPARE(b->breakdown().ranks[1].busy[Category::CommPpSendrecv], 1'000'000);
    QCOMPARE(b->communicationModel()->rowCount(), 1);
    // A run that grew keeps the steps shown.
    b->setTrace(&view.trace(), true);
    QVERIFY(b->breakdown().steps == (std::vector<int32_t>{1}));

    b->showAllSteps();
    QCOMPARE(b->breakdown().steps.size(), size_t(2));
    b->setUnit(BreakdownUnit::Percent);
    QCOMPARE(b->model()->unit(), BreakdownUnit::Percent);
    QVERIFY(b->pictureSize(1000).height() > 100);
    QCOMPARE(b->source(), BreakdownSource::Host);  // no GPU records: host time
  }

  void aGpuRunOpensInGpuTime() {
    // A host span of 1 ms of attention that launched one kernel of 10 us: host time says 1 ms of
    // attention, GPU time 10 us.
    storage::Trace trace = test::makeTrace(1, {});
    test::addStream(trace);  // track 1
    storage::addSpan(
        trace, {.track = 0, .start = 0, .end = 1'000'000, .category = Category::ComputeAttention, .step = 0});
    storage::finishTrace(trace);
    const QString path = dir_.filePath(QStringLiteral("gpu.moescope"));
    auto writer = test::writeRun(path.toStdString(), trace, storage::RunStatus::Running);
    storage::GpuActivityRecord g;
    g.track = 1;
    g.start = 100'000;
    g.end = 110'000;
    g.span = 0;
    writer->addGpuActivity({&g, 1});
    writer->setStatus(storage::RunStatus::Complete, "", 1'000'000);
    writer.reset();

    RunView view(path);
    view.setBreakdownVisible(true);
    BreakdownView* b = view.breakdown();
    QCOMPARE(b->source(), BreakdownSource::Gpu);
    QCOMPARE(b->breakdown().ranks[0].busy[Category::ComputeAttention], 10'000);
    b->setSource(BreakdownSource::Host);
    QCOMPARE(b->breakdown().ranks[0].busy[Category::ComputeAttention], 1'000'000);
    QVERIFY(b->title().contains(QStringLiteral("host time")));
  }
};

QTEST_MAIN(BreakdownViewTest)
#include "breakdown_view_test.moc"
