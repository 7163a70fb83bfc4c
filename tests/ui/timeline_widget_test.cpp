// The timeline widget's input: clicks select, the wheel and W/S zoom at the cursor, A/D pan,
// right-drag zooms to a range, shift-drag selects an area (Enter zooms to it, Esc clears it),
// Backspace undoes, a click on a rank's header collapses it, the label column's edge drags, and a
// reveal keeps the zoom.
#include "ui/timeline_widget.h"

#include <QSignalSpy>
#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class TimelineWidgetTest : public QObject {
  Q_OBJECT

  storage::Trace trace_ = test::makeTrace(2, {{0, 0, 400'000},
                                              {0, 600'000, 1'000'000, Category::CommTpAllreduce},
                                              {1, 200'000, 800'000, Category::ComputeExpert}});
  TimelineWidget* w_ = nullptr;

  int lw() const { return w_->layout().metrics.labelWidth; }
  // A point inside track's boxes at time t.
  QPoint at(int32_t track, int64_t t) const {
    const auto& row = w_->layout().rows[size_t(w_->layout().rowOfTrack(track))];
    return {lw() + int(w_->mapping().toX(t)), row.y + row.height / 2 - w_->scrollY()};
  }

 private slots:
  void init() {
    w_ = new TimelineWidget;
    w_->resize(lw() + 1000 + 0, 400);
    w_->setTrace(&trace_);
    w_->show();
    QVERIFY(QTest::qWaitForWindowExposed(w_));
  }
  void cleanup() { delete w_; }

  void startsShowingEverything() {
    QCOMPARE(w_->visibleRange(), (TimeRange{0, 1'000'000}));
    QCOMPARE(w_->mapping().width, 1000.0);
  }

  void clickSelects() {
    QSignalSpy spy(w_, &TimelineWidget::spanSelected);
    QTest::mouseClick(w_, Qt::LeftButton, {}, at(1, 500'000));
    QCOMPARE(w_->selected(), std::optional<SpanRef>(SpanRef{1, 0}));
    QCOMPARE(spy.count(), 1);
    QTest::mouseClick(w_, Qt::LeftButton, {}, at(0, 500'000));  // the gap on track 0
    QCOMPARE(w_->selected(), std::optional<SpanRef>());
  }

  void keysZoomAndPanAndUndo() {
    w_->setFocus();
    QTest::keyClick(w_, Qt::Key_W);
    const TimeRange zoomed = w_->visibleRange();
    QVERIFY(zoomed.duration() < 1'000'000);
    QTest::keyClick(w_, Qt::Key_D);
    QVERIFY(w_->visibleRange().start > zoomed.start);
    QCOMPARE(w_->visibleRange().duration(), zoomed.duration());
    QTest::keyClick(w_, Qt::Key_A);
    QCOMPARE(w_->visibleRange(), zoomed);
    QTest::keyClick(w_, Qt::Key_Backspace);
    QCOMPARE(w_->visibleRange(), (TimeRange{0, 1'000'000}));
  }

  void wheelZoomsAtTheCursor() {
    const QPoint p = at(0, 250'000);
    const int64_t before = w_->mapping().toTime(p.x() - lw());
    QWheelEvent wheel(p, w_->mapToGlobal(p), {}, {0, 120}, Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase,
                      false);
    QApplication::sendEvent(w_, &wheel);
    QVERIFY(w_->visibleRange().duration() < 1'000'000);
    QVERIFY(std::llabs(w_->mapping().toTime(p.x() - lw()) - before) <= 1000);
  }

  void rightDragZoomsToTheRange() {
    const QPoint a = at(0, 200'000), b = at(0, 400'000);
    QTest::mousePress(w_, Qt::RightButton, {}, a);
    QTest::mouseMove(w_, (a + b) / 2);
    QTest::mouseMove(w_, b);
    QTest::mouseRelease(w_, Qt::RightButton, {}, b);
    QVERIFY(std::llabs(w_->visibleRange().start - 200'000) <= 1000);
    QVERIFY(std::llabs(w_->visibleRange().end - 400'000) <= 1000);
    QCOMPARE(w_->zoomStack().size(), size_t(1));
    QVERIFY(!w_->area());
  }

  void shiftDragSelectsAnAreaOverTheRowsCrossed() {
    QSignalSpy changed(w_, &TimelineWidget::areaChanged);
    const QPoint a = at(0, 200'000), b = at(1, 700'000);
    QTest::mousePress(w_, Qt::LeftButton, Qt::ShiftModifier, a);
    QTest::mouseMove(w_, (a + b) / 2);
    QTest::mouseMove(w_, b);
    QTest::mouseRelease(w_, Qt::LeftButton, Qt::ShiftModifier, b);
    QVERIFY(w_->area());
    QCOMPARE(w_->area()->tracks, (std::vector<int32_t>{0, 1}));  // from track 0's row to track 1's
    QVERIFY(std::llabs(w_->area()->range.start - 200'000) <= 1000);
    QVERIFY(std::llabs(w_->area()->range.end - 700'000) <= 1000);
    QCOMPARE(w_->visibleRange(), (TimeRange{0, 1'000'000}));  // the view stays
    QVERIFY(changed.count() >= 1);
    // Drawn: the selected rows shaded over the range, in the rendered frame.
    QImage frame(w_->size(), QImage::Format_ARGB32_Premultiplied);
    w_->render(&frame);
    const auto& row0 = w_->layout().rows[size_t(w_->layout().rowOfTrack(0))];
    const int inside = lw() + int(w_->mapping().toX(450'000)),
              outside = lw() + int(w_->mapping().toX(900'000));
    const int y = row0.y + 1 - w_->scrollY();  // the row's margin, above its boxes
    QVERIFY(frame.pixelColor(inside, y) != frame.pixelColor(outside, y));
    // Enter zooms to it; Esc clears it.
    w_->setFocus();
    QTest::keyClick(w_, Qt::Key_Return);
    QVERIFY(std::llabs(w_->visibleRange().start - 200'000) <= 1000);
    QTest::keyClick(w_, Qt::Key_Escape);
    QVERIFY(!w_->area());
  }

  void theLabelColumnResizesByItsEdgeAndDoesNotPan() {
    const int edge = lw();
    const TimeRange before = w_->visibleRange();
    const int y = w_->layout().rows[1].y + 5;
    QTest::mousePress(w_, Qt::LeftButton, {}, QPoint(edge, y));
    QTest::mouseMove(w_, QPoint(edge + 60, y));
    QTest::mouseRelease(w_, Qt::LeftButton, {}, QPoint(edge + 60, y));
    QCOMPARE(w_->labelWidth(), edge + 60);
    QCOMPARE(w_->layout().metrics.labelWidth, edge + 60);
    QCOMPARE(w_->visibleRange(), before);
    // A drag that starts on the labels scrolls rows only: no pan before t = 0.
    QTest::mousePress(w_, Qt::LeftButton, {}, QPoint(20, y));
    QTest::mouseMove(w_, QPoint(200, y));
    QTest::mouseRelease(w_, Qt::LeftButton, {}, QPoint(200, y));
    QCOMPARE(w_->visibleRange(), before);
  }

  void headerClickCollapses() {
    const TimelineRow header = w_->layout().rows[0];
    QCOMPARE(header.kind, TimelineRow::Kind::Group);
    QTest::mouseClick(w_, Qt::LeftButton, {}, QPoint(20, header.y + header.height / 2));
    QVERIFY(w_->layout().rows[0].collapsed);
    QCOMPARE(w_->layout().rowOfTrack(0), -1);
    QTest::qWait(QApplication::doubleClickInterval() + 50);  // a second click, not a double-click
    QTest::mouseClick(w_, Qt::LeftButton, {}, QPoint(20, header.y + header.height / 2));
    QVERIFY(w_->layout().rowOfTrack(0) >= 0);
  }

  void hiddenCategoriesLeaveTheDrawList() {
    QCOMPARE(w_->drawList().items.size(), size_t(3));
    std::bitset<storage::kCategoryCount> hidden;
    hidden.set(size_t(Category::ComputeExpert));
    w_->setHiddenCategories(hidden);
    QCOMPARE(w_->drawList().items.size(), size_t(2));
  }

  void fitStepAndSelectReveal() {
    storage::StepMetric s;
    s.step = 7;
    s.start_ns = 600'000;
    s.end_ns = 1'000'000;
    trace_.steps = {s};
    QVERIFY(w_->fitStep(7));
    QVERIFY(w_->visibleRange().start <= 600'000 && w_->visibleRange().end >= 1'000'000);
    QVERIFY(w_->visibleRange().duration() < 500'000);
    QVERIFY(!w_->fitStep(8));
    const int64_t zoom = w_->visibleRange().duration();
    w_->selectSpan(SpanRef{0, 0}, true);  // [0, 400 µs): out of view, so the view moves to it
    QVERIFY(w_->visibleRange().start <= 0 + 200'000 && w_->visibleRange().end >= 200'000);
    QCOMPARE(w_->visibleRange().duration(), zoom);  // the zoom is kept
    trace_.steps.clear();
  }

  void fitSteadyStepsSkipsTheWarmUp() {
    for (int s = 0; s < 3; ++s) {
      storage::StepMetric m;
      m.step = s;
      m.start_ns = s == 0 ? 0 : 600'000 + (s - 1) * 200'000;
      m.end_ns = s == 0 ? 600'000 : m.start_ns + 200'000;
      trace_.steps.push_back(m);
    }
    w_->setFocus();
    QTest::keyClick(w_, Qt::Key_F, Qt::ShiftModifier);
    QVERIFY(w_->visibleRange().start >= 590'000 && w_->visibleRange().start <= 600'000);
    QVERIFY(w_->visibleRange().end >= 1'000'000 && w_->visibleRange().end <= 1'010'000);
    trace_.steps.clear();
  }
};

QTEST_MAIN(TimelineWidgetTest)
#include "timeline_widget_test.moc"
