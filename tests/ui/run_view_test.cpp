// A run's view: it shows a running run growing on refresh, a large run's first step before the rest,
// the stages' bubble shares; search selects spans (i of N, every match in a results panel, the zoom
// kept) and the side panel shows them; the Selection panel sums the area selection exactly, and
// without one the view, following it as it moves; the SQL panel runs read-only queries and exports
// their rows; a view added as a bottom tab follows the built-in ones; a crafted run file either opens
// and draws or is refused, never a crash.
#include "ui/run_view.h"

#include <sqlite3.h>

#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <memory>

#include "storage/analysis_range.h"
#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
#include "ui/query_view.h"
#include "ui/range_summary_view.h"
#include "ui/search_results_model.h"
#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class RunViewTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

 private slots:
  void bubbleShares() {
    const QString path = dir_.filePath(QStringLiteral("bubbles.moescope"));
    test::writeRun(path.toStdString(),
                   test::makeTrace(2, {{0, 0, 1000}, {1, 500, 1000, Category::ComputeExpert}}));
    RunView view(path);
    QVERIFY2(view.bubbleText().startsWith(QStringLiteral("bubbles: stage 0 ")),
             qPrintable(view.bubbleText()));
    QVERIFY(view.bubbleText().contains(QStringLiteral("stage 1 50%")));
  }

  void searchSelectsAndTheSidePanelShowsTheSpan() {
    const QString path = dir_.filePath(QStringLiteral("search.moescope"));
    // Names: "span" (0), "attention" (1), "tp_allreduce" (2); the all-reduce is the second span.
    auto trace = test::makeTrace(1, {});
    for (uint32_t name : {1u, 2u, 1u}) {
      storage::SpanRecord s;
      s.start = trace.spans[0].size() * 1000;
      s.end = s.start + 500;
      s.name = name;
      s.category = name == 2 ? Category::CommTpAllreduce : Category::ComputeAttention;
      storage::addSpan(trace, s);
    }
    storage::finishTrace(trace);
    test::writeRun(path.toStdString(), trace);
    RunView view(path);
    auto* edit = view.findChild<QLineEdit*>(QStringLiteral("search"));
    QVERIFY(edit);
    edit->setText(QStringLiteral("allreduce"));
    view.findNext(true);
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 1}));
    auto* details = view.findChild<QTableView*>(QStringLiteral("details"));
    QVERIFY(details && details->model()->rowCount() > 0);
    QCOMPARE(details->model()->index(0, 1).data().toString(), QString("tp_allreduce"));
    edit->setText(QStringLiteral("attention"));
    view.findNext(true);  // from the selection on: the third span
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 2}));
    view.findNext(false);
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 0}));
  }

  void searchSaysIOfNListsEveryMatchAndKeepsTheZoom() {
    // 100 spans of 1 µs every 10 µs; every tenth is "tp_allreduce", the rest "attention".
    auto trace = test::makeTrace(1, {});
    for (int i = 0; i < 100; ++i) {
      storage::SpanRecord s;
      s.start = i * 10'000;
      s.end = s.start + 1000;
      s.name = i % 10 == 0 ? 2 : 1;
      storage::addSpan(trace, s);
    }
    storage::finishTrace(trace);
    const QString path = dir_.filePath(QStringLiteral("many.moescope"));
    test::writeRun(path.toStdString(), trace);
    RunView view(path);
    view.resize(1400, 800);
    auto* edit = view.findChild<QLineEdit*>(QStringLiteral("search"));
    edit->setText(QStringLiteral("allreduce"));
    QCOMPARE(view.searchStatus(), QString("10 matches"));
    QCOMPARE(view.searchResults()->model()->rowCount(), 10);
    QCOMPARE(view.searchResults()->model()->index(3, SearchResultsModel::Name).data().toString(),
             QString("tp_allreduce"));
    // Zoomed to 50 µs, the next matches are revealed by panning: the zoom stays.
    view.timeline()->setVisibleRange({0, 50'000});
    const int64_t zoom = view.timeline()->visibleRange().duration();
    view.findNext(true);
    QCOMPARE(view.searchStatus(), QString("1 of 10"));
    view.findNext(true);
    view.findNext(true);
    QCOMPARE(view.searchStatus(), QString("3 of 10"));
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 20}));
    QCOMPARE(view.timeline()->visibleRange().duration(), zoom);
    QVERIFY(view.timeline()->visibleRange().contains(200'000));
    // Every match in view is marked on its row (one tick per match at this zoom).
    view.timeline()->setVisibleRange({0, 1'000'000});
    const auto marks =
        view.search().marks(view.trace(), view.timeline()->layout(), view.timeline()->mapping());
    QCOMPARE(marks.size(), size_t(10));
    // A click on the results panel's row selects that match.
    const QModelIndex row7 = view.searchResults()->model()->index(6, 0);
    emit view.searchResults()->clicked(row7);
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 60}));
    QCOMPARE(view.searchStatus(), QString("7 of 10"));
  }

  void theSelectionPanelSumsTheAreaExactlyAndOtherwiseTheView() {
    // Two ranks: rank 0 attention [0, 400) us then expert [400, 1000) us; rank 1 expert [0, 1000) us.
    const QString path = dir_.filePath(QStringLiteral("area.moescope"));
    const auto trace = test::makeTrace(2, {{0, 0, 400'000, Category::ComputeAttention},
                                           {0, 400'000, 1'000'000, Category::ComputeExpert},
                                           {1, 0, 1'000'000, Category::ComputeExpert}});
    test::writeRun(path.toStdString(), trace);
    RunView view(path);
    view.resize(1400, 900);
    RangeSummaryModel* model = view.selectionPanel()->model();
    // No area: the whole view, every row: attention 400 us, expert 1600 us.
    view.updateSelectionNow();
    QVERIFY2(view.selectionPanel()->caption().startsWith(QStringLiteral("In view")),
             qPrintable(view.selectionPanel()->caption()));
    QCOMPARE(model->rows().size(), size_t(2));
    QCOMPARE(model->rows()[0].label, std::string("compute.expert"));
    QCOMPARE(model->rows()[0].total_ns, int64_t(1'600'000));
    // The view moves (a search would move it the same way): the panel follows.
    view.timeline()->setVisibleRange({0, 200'000});
    view.updateSelectionNow();
    QCOMPARE(model->rows()[0].total_ns, int64_t(200'000));  // expert on rank 1 only
    QCOMPARE(model->rows()[1].total_ns, int64_t(200'000));  // attention on rank 0
    // An area over rank 0 from 300 to 700 us: exactly attention 100 us, expert 300 us.
    view.timeline()->setArea(AreaSelection{{300'000, 700'000}, {0}});
    view.updateSelectionNow();
    QVERIFY(view.selectionPanel()->caption().startsWith(QStringLiteral("Area selection")));
    const storage::RangeSummary expected =
        storage::summarizeRange(view.trace(), std::vector<int32_t>{0}, 300'000, 700'000);
    QCOMPARE(model->summary(), expected);
    QCOMPARE(model->rows()[0], (storage::RangeRow{"compute.expert", 1, 300'000, 300'000, 300'000.0, 0.75}));
    QCOMPARE(model->rows()[1],
             (storage::RangeRow{"compute.attention", 1, 100'000, 100'000, 100'000.0, 0.25}));
    // The table by name holds the same time.
    view.selectionPanel()->setTable(RangeTable::Names);
    QCOMPARE(model->rows().size(), size_t(1));  // every span here is named "span"
    QCOMPARE(model->rows()[0].total_ns, int64_t(400'000));
    // Cleared: back to the view.
    view.timeline()->setArea(std::nullopt);
    view.updateSelectionNow();
    QVERIFY(view.selectionPanel()->caption().startsWith(QStringLiteral("In view")));
  }

  void theSqlPanelIsReadOnlyAndExportsItsRows() {
    const QString path = dir_.filePath(QStringLiteral("sql.moescope"));
    test::writeRun(path.toStdString(), test::makeTrace(1, {{0, 0, 1000}, {0, 1000, 3000}}));
    RunView view(path);
    view.showQueryPanel();
    QueryView* q = view.queryPanel();
    q->setSql(QStringLiteral("SELECT id, \"end\" - start AS ns FROM span ORDER BY id"));
    QVERIFY(q->run());
    QCOMPARE(q->model()->rowCount(), 2);
    QCOMPARE(q->model()->index(1, 1).data().toString(), QString("2000"));
    QCOMPARE(q->model()->headerData(1, Qt::Horizontal).toString(), QString("ns"));
    const QString csv = dir_.filePath(QStringLiteral("rows.csv"));
    QVERIFY(q->exportCsv(csv));
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(QString::fromUtf8(f.readAll()), QString("id,ns\n0,1000\n1,2000\n"));
    // A write is refused, with SQLite's reason, and the run is unchanged.
    q->setSql(QStringLiteral("DELETE FROM span"));
    QVERIFY(!q->run());
    QVERIFY2(q->status().contains(QStringLiteral("readonly")), qPrintable(q->status()));
    QCOMPARE(storage::RunReader::open(path.toStdString())->load().spanCount(), size_t(2));
  }

  // A view of the run added as a bottom tab sits after the built-in ones, is owned by the run's view
  // and is shown on demand.
  void aPanelTabIsAddedAfterTheBuiltInOnes() {
    const QString path = dir_.filePath(QStringLiteral("tab.moescope"));
    test::writeRun(path.toStdString(), test::makeTrace(1, {{0, 0, 1000}}));
    auto view = std::make_unique<RunView>(path);
    auto* tabs = view->findChild<QTabWidget*>(QStringLiteral("bottomPanel"));
    QVERIFY(tabs);
    QStringList titles;
    for (int i = 0; i < tabs->count(); ++i) titles << tabs->tabText(i);
    QCOMPARE(titles, (QStringList{"Selection", "Breakdown", "Search results", "SQL"}));
    QPointer<QLabel> panel = new QLabel(QStringLiteral("experts"));
    QCOMPARE(view->addPanelTab(panel, QStringLiteral("MoE")), 4);
    QCOMPARE(tabs->tabText(4), QString("MoE"));
    view->showPanelTab(panel);
    QCOMPARE(tabs->currentWidget(), panel.data());
    view.reset();
    QVERIFY(panel.isNull());
  }

  void craftedRunFilesOpenAndDrawOrAreRefused_data() {
    QTest::addColumn<QString>("sql");
    QTest::newRow("category 200") << "UPDATE span SET category = 200 WHERE id = 1";
    QTest::newRow("phase 77") << "UPDATE span SET phase = 77";
    QTest::newRow("name id 4e9") << "UPDATE span SET name = 4000000000 WHERE id = 0";
    QTest::newRow("huge start") << "UPDATE span SET start = 9000000000000000000 WHERE id = 1";
    QTest::newRow("end before start") << "UPDATE span SET \"end\" = start - 5000 WHERE id = 0";
    QTest::newRow("unknown rank") << "UPDATE track SET rank = 1000000";
    QTest::newRow("unknown launching span") << "UPDATE gpu_activity SET span = 123456789";
    QTest::newRow("GPU record on a host track") << "UPDATE gpu_activity SET track = 0";
    QTest::newRow("huge step time") << "UPDATE step_metric SET start_ns = -9000000000000000000";
  }
  void craftedRunFilesOpenAndDrawOrAreRefused() {
    QFETCH(QString, sql);
    // A small GPU-shaped run: two spans, a stream with one kernel, a step.
    auto trace = test::makeTrace(
        1, {{0, 0, 1000, Category::ComputeAttention}, {0, 2000, 3000, Category::ComputeExpert}});
    test::addStream(trace);  // track 1
    storage::StepMetric step;
    step.start_ns = 0;
    step.end_ns = 3000;
    trace.steps.push_back(step);
    const QString path =
        dir_.filePath(QStringLiteral("crafted-%1.moescope").arg(QTest::currentDataTag()).replace(' ', '-'));
    {
      auto writer = test::writeRun(path.toStdString(), trace, storage::RunStatus::Running);
      storage::GpuActivityRecord g;
      g.track = 1;
      g.start = 100;
      g.end = 600;
      g.span = 0;
      writer->addGpuActivity({&g, 1});
      writer->setStatus(storage::RunStatus::Complete, "", 3000);
    }
    sqlite3* db = nullptr;
    QCOMPARE(sqlite3_open(path.toUtf8().constData(), &db), SQLITE_OK);
    QCOMPARE(sqlite3_exec(db, sql.toUtf8().constData(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    std::unique_ptr<RunView> view;
    try {
      view = std::make_unique<RunView>(path);
    } catch (const std::exception& e) {
      // Refused: one line naming the file (the main window shows it in a dialog).
      QVERIFY(QString::fromUtf8(e.what()).contains(QFileInfo(path).fileName()));
      QVERIFY(!QString::fromUtf8(e.what()).contains(QLatin1Char('\n')));
      return;
    }
    // Opened: every panel draws and sums it.
    view->resize(1400, 900);
    QImage frame(view->size(), QImage::Format_ARGB32_Premultiplied);
    view->render(&frame);
    view->timeline()->zoomBy(4);
    view->timeline()->render(&frame);
    view->updateSelectionNow();
    view->setBreakdownVisible(true);
    view->timeline()->selectSpan(SpanRef{0, 0});
    view->timeline()->render(&frame);
    QVERIFY(!frame.isNull());
  }

  void missingFileThrows() {
    QVERIFY_THROWS_EXCEPTION(std::exception, RunView(dir_.filePath(QStringLiteral("none.moescope"))));
  }

  void aRunningRunGrowsOnRefresh() {
    const QString path = dir_.filePath(QStringLiteral("live.moescope"));
    auto trace = test::makeTrace(1, {{0, 0, 1000}});
    auto writer = test::writeRun(path.toStdString(), trace, storage::RunStatus::Running);
    auto view = std::make_unique<RunView>(path);
    RunView* run = view.get();
    QVERIFY(run->isLive());
    QVERIFY(run->title().contains(QStringLiteral("running")));

    storage::SpanRecord more;
    more.start = 2000;
    more.end = 3000;
    more.category = Category::ComputeExpert;
    writer->addSpans({&more, 1});
    writer->commit();
    QVERIFY(run->refresh());
    QCOMPARE(run->trace().spanCount(), size_t(2));
    QVERIFY(run->timeline()->extent().end >= 3000);

    writer->setStatus(storage::RunStatus::Complete, "", 3000);
    writer->commit();
    run->refresh();
    QVERIFY(!run->isLive());
  }

  void aLargeRunShowsItsFirstStepThenTheRest() {
    // Three steps of 1 ms, a span in each; loaded progressively whatever its size.
    auto trace = test::makeTrace(1, {{0, 100, 900}, {0, 1100, 1900}, {0, 2100, 2900}});
    for (int s = 0; s < 3; ++s) {
      storage::StepMetric m;
      m.step = s;
      m.start_ns = s * 1000;
      m.end_ns = s * 1000 + 1000;
      trace.steps.push_back(m);
    }
    const QString path = dir_.filePath(QStringLiteral("large.moescope"));
    test::writeRun(path.toStdString(), trace);
    RunView view(path, nullptr, {.progressiveBytes = 0});
    RunView* run = &view;
    if (!run->isLoaded()) {
      QCOMPARE(run->trace().spanCount(), size_t(1));  // the first step only
      QSignalSpy loaded(run, &RunView::loaded);
      QVERIFY(loaded.wait(10'000));
    }
    QVERIFY(run->isLoaded());
    QCOMPARE(run->trace().spanCount(), size_t(3));
    QCOMPARE(run->timeline()->visibleRange(), run->timeline()->extent());  // untouched: shows it all
  }
};

QTEST_MAIN(RunViewTest)
#include "run_view_test.moc"
