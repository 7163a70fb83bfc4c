#include "ui/timeline_layout.h"

#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;

class TimelineLayoutTest : public QObject {
  Q_OBJECT

  // Four ranks given out of pipeline order: (dp, stage, tp) = rank 0 (1,0,0), 1 (0,1,0), 2 (0,0,1),
  // 3 (0,0,0). Rank 3 has two tracks (orders 1 and 0) and a counter track.
  static storage::Trace trace() {
    storage::Trace t;
    const int dp[] = {1, 0, 0, 0}, stage[] = {0, 1, 0, 0}, tp[] = {0, 0, 1, 0};
    for (int r = 0; r < 4; ++r) {
      storage::RankInfo info;
      info.rank = r;
      info.dp_rank = dp[r];
      info.stage = stage[r];
      info.tp_rank = tp[r];
      info.device = r == 1 ? 1 : storage::kNone;
      t.ranks.push_back(info);
    }
    auto track = [&](int32_t rank, int32_t order, storage::TrackKind kind) {
      storage::TrackInfo info;
      info.id = int32_t(t.tracks.size());
      info.rank = rank;
      info.order = order;
      info.kind = kind;
      t.tracks.push_back(info);
    };
    track(0, 0, storage::TrackKind::HostThread);  // 0
    track(1, 0, storage::TrackKind::HostThread);  // 1
    track(2, 0, storage::TrackKind::HostThread);  // 2
    track(3, 1, storage::TrackKind::GpuStream);   // 3
    track(3, 0, storage::TrackKind::HostThread);  // 4
    track(3, 2, storage::TrackKind::Counter);     // 5: under rank 3's counters row
    t.spans.resize(t.tracks.size());
    return t;
  }

 private slots:
  void ranksInPipelineOrderTracksInTheirOrder() {
    const LayoutMetrics metrics{
        .rulerHeight = 10, .groupHeight = 5, .trackHeight = 7, .boxMargin = 1, .labelWidth = 100};
    const auto layout = layoutTimeline(trace(), {}, {}, metrics);
    std::vector<std::pair<int32_t, int32_t>> order;  // (rank, track)
    for (const auto& r : layout.rows) order.emplace_back(r.rank, r.track);
    // Rank 3's counters: one collapsed row (track -1) after its tracks.
    const std::vector<std::pair<int32_t, int32_t>> expected = {{3, -1}, {3, 4},  {3, 3}, {3, -1}, {2, -1},
                                                               {2, 2},  {1, -1}, {1, 1}, {0, -1}, {0, 0}};
    QCOMPARE(order, expected);
    QCOMPARE(layout.rows[0].y, 10);
    QCOMPARE(layout.rows[1].y, 15);
    QCOMPARE(layout.rows[2].y, 22);
    QVERIFY(layout.rows[3].kind == TimelineRow::Kind::Counters);
    QVERIFY(layout.rows[3].collapsed);
    QCOMPARE(layout.height, 10 + 4 * 5 + 6 * 7);
  }

  void countersRowsCollapsedByDefaultExpandToARowPerCounter() {
    const LayoutMetrics metrics{
        .rulerHeight = 10, .groupHeight = 5, .trackHeight = 7, .boxMargin = 1, .labelWidth = 100};
    QCOMPARE(layoutTimeline(trace(), {}, {}, metrics).rowOfTrack(5), -1);
    const auto layout = layoutTimeline(trace(), {}, {}, metrics, {3});
    QVERIFY(!layout.rows[3].collapsed);
    QCOMPARE(layout.rowOfTrack(5), 4);
    QVERIFY(layout.rows[4].kind == TimelineRow::Kind::Counter);
    QCOMPARE(layout.rows[4].y, 10 + 5 + 3 * 7);
    QCOMPARE(layout.height, 10 + 4 * 5 + 7 * 7);
    // A collapsed rank hides its counters too.
    QCOMPARE(layoutTimeline(trace(), {}, {3}, metrics, {3}).rowOfTrack(5), -1);
  }

  void rowsByY() {
    const LayoutMetrics metrics{
        .rulerHeight = 10, .groupHeight = 5, .trackHeight = 7, .boxMargin = 1, .labelWidth = 100};
    const auto layout = layoutTimeline(trace(), {}, {}, metrics);
    QCOMPARE(layout.rowAt(0), -1);  // the ruler
    QCOMPARE(layout.rowAt(10), 0);
    QCOMPARE(layout.rowAt(14), 0);
    QCOMPARE(layout.rowAt(15), 1);
    QCOMPARE(layout.rowAt(layout.height), -1);
    QCOMPARE(layout.rowsIn(14, 23), (std::pair<int, int>(0, 3)));
    QCOMPARE(layout.rowOfTrack(3), 2);
    QCOMPARE(layout.rowOfTrack(5), -1);  // the counter track, under its collapsed counters row
  }

  void collapsedRanksKeepOnlyTheirHeader() {
    const auto layout = layoutTimeline(trace(), {}, {3, 1});
    QCOMPARE(layout.rows.size(), size_t(6));
    QVERIFY(layout.rows[0].collapsed);
    QCOMPARE(layout.rowOfTrack(4), -1);
    QVERIFY(layout.rowOfTrack(2) > 0);
  }

  void labels() {
    storage::RankInfo r;
    r.rank = 5;
    r.stage = 2;
    r.tp_rank = 1;
    r.dp_rank = 0;
    QCOMPARE(QString::fromStdString(rankLabel(r)), QString::fromUtf8("rank 5 · stage 2 · tp 1 · dp 0 · cpu"));
    r.device = 3;
    QCOMPARE(QString::fromStdString(rankLabel(r)),
             QString::fromUtf8("rank 5 · stage 2 · tp 1 · dp 0 · GPU 3"));
  }

  // A rank of a multi-process run shows its clock alignment's uncertainty; one of a single process none.
  void rankClockLabels() {
    storage::Trace t;
    t.meta = {{"rank.0.clock.uncertainty_ns", "0"}, {"rank.1.clock.uncertainty_ns", "12345"}};
    QCOMPARE(QString::fromStdString(rankClockLabel(t, 1)), QString::fromUtf8(" · clock ±12.3 µs"));
    QCOMPARE(QString::fromStdString(rankClockLabel(t, 0)), QString());
    QCOMPARE(QString::fromStdString(rankClockLabel(t, 2)), QString());
  }
};

QTEST_APPLESS_MAIN(TimelineLayoutTest)
#include "timeline_layout_test.moc"
