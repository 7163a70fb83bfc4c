// A run's view: it shows a running run growing on refresh, a large run's first step before the rest,
// the stages' bubble shares; search selects spans and the side panel shows them.
#include "ui/run_view.h"

#include <QLineEdit>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <memory>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
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
    auto* edit = view.findChild<QLineEdit*>();
    QVERIFY(edit);
    edit->setText(QStringLiteral("allreduce"));
    view.findNext(true);
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 1}));
    auto* details = view.findChild<QTableView*>();
    QVERIFY(details && details->model()->rowCount() > 0);
    QCOMPARE(details->model()->index(0, 1).data().toString(), QString("tp_allreduce"));
    edit->setText(QStringLiteral("attention"));
    view.findNext(true);  // from the selection on: the third span
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 2}));
    view.findNext(false);
    QCOMPARE(view.timeline()->selected(), std::optional<SpanRef>(SpanRef{0, 0}));
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
