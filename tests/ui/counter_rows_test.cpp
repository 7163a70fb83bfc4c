// Counter rows: a track's samples found by track, drawn as a line in their row, and the timeline's
// counters row expanding on a click (collapsed at first).
#include "ui/counter_rows.h"

#include <QImage>
#include <QTest>

#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;

namespace {

// Rank 0 with a host track (0) holding one span over [0, 1000), and two counter tracks (1, 2).
storage::Trace trace() {
  storage::Trace t;
  t.ranks.push_back({0, 0, 0, 0, storage::kNone, "host"});
  t.tracks = {{0, 0, storage::TrackKind::HostThread, "rank 0 host", 0, storage::kNone, storage::kNone},
              {1, 0, storage::TrackKind::Counter, "peak activation bytes", 1, storage::kNone, storage::kNone},
              {2, 0, storage::TrackKind::Counter, "dropped assignments", 2, storage::kNone, storage::kNone}};
  t.strings = {"span"};
  storage::SpanRecord s;
  s.end = 1000;
  s.step = 0;
  storage::addSpan(t, s);
  t.spans.resize(3);
  t.counters = {{1, 100, 5}, {1, 600, 10}, {2, 300, 0}, {2, 900, 4}};
  storage::finishTrace(t);
  return t;
}

}  // namespace

class CounterRowsTest : public QObject {
  Q_OBJECT

 private slots:
  void samplesOfATrack() {
    const storage::Trace t = trace();
    QCOMPARE(counterSamples(t, 1), (std::pair<size_t, size_t>(0, 2)));
    QCOMPARE(counterSamples(t, 2), (std::pair<size_t, size_t>(2, 4)));
    QCOMPARE(counterSamples(t, 0), (std::pair<size_t, size_t>(0, 0)));
  }

  void theLineIsDrawnInItsRow() {
    const storage::Trace t = trace();
    QImage image(200, 40, QImage::Format_RGB32);
    image.fill(Qt::white);
    {
      QPainter p(&image);
      TimeMapping m;
      m.range = {0, 1000};
      m.width = 200;
      paintCounterRow(p, t, 1, QRect(0, 0, 200, 40), m);
    }
    // Value 10 (the top) from t = 600 (x = 120) on: the line near the row's top right of x = 120, and
    // at value 5 (half height) between x = 20 and 120.
    auto dark = [&](int x, int y0, int y1) {
      for (int y = y0; y <= y1; ++y)
        if (qGray(image.pixel(x, y)) < 200) return true;
      return false;
    };
    QVERIFY(dark(160, 0, 4));
    QVERIFY(!dark(160, 15, 39));
    QVERIFY(dark(60, 17, 22));
  }

  void aClickOnTheCountersRowExpandsIt() {
    const storage::Trace t = trace();
    TimelineWidget w;
    w.resize(800, 400);
    w.setTrace(&t);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    const TimelineLayout& before = w.layout();
    QCOMPARE(before.rowOfTrack(1), -1);
    const int row = static_cast<int>(before.rows.size()) - 1;
    QVERIFY(before.rows[static_cast<size_t>(row)].kind == TimelineRow::Kind::Counters);
    const int y = before.rows[static_cast<size_t>(row)].y + 3;
    QTest::mouseClick(&w, Qt::LeftButton, {}, QPoint(400, y));
    QVERIFY(w.layout().rowOfTrack(1) > 0);
    QVERIFY(w.layout().rowOfTrack(2) > 0);
    QTest::mouseClick(&w, Qt::LeftButton, {}, QPoint(400, y));
    QCOMPARE(w.layout().rowOfTrack(1), -1);
  }
};

QTEST_MAIN(CounterRowsTest)
#include "counter_rows_test.moc"
