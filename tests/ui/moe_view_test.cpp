// The MoE view on a run trained with an unbalanced router (tests/engine/hot_expert.h): the hot expert
// stands out in the view's model, hovering a cell gives its numbers, clicking a column names its step
// or micro-batch, and the picture and the load table export.
#include "ui/moe_view.h"

#include <QFile>
#include <QSignalSpy>
#include <QTest>
#include <filesystem>

#include "engine/trainer.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/hot_expert.h"
#include "tracer/tracer.h"
#include "ui/run_view.h"
#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;

namespace {

// A 2-step PPMoE run of the tiny model (MoE layers 1 and 3, 4 experts, top 2, 2 micro-batches),
// expert 1 hot when `hot`.
storage::Trace trainedRun(const std::filesystem::path& path, bool hot) {
  engine::Config c = engine::testing::tinyConfig();
  c.parallel.microbatches = 2;
  c.trace.enabled = true;
  engine::validate(c);
  const engine::TokenData data = engine::testing::tinyTokens(c);
  const engine::ModelWeights weights = engine::testing::hotExpertWeights(c.model, 7, 1);
  auto backend = engine::makeCpuBackend();
  auto tracer = tracer::Tracer::open(path, engine::makeRunInfo(c, *backend, hot ? "hot" : "even"));
  engine::TrainOptions options;
  options.config = c;
  options.data = &data;
  options.tracer = tracer.get();
  if (hot) options.init = &weights;
  engine::train(options);
  tracer->finish(storage::RunStatus::Complete, "");
  tracer.reset();
  return storage::RunReader::open(path)->load();
}

}  // namespace

class MoeViewTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    hot_ = trainedRun(dir_.path() / "hot.moescope", true);
    even_ = trainedRun(dir_.path() / "even.moescope", false);
  }

  void theHotExpertStandsOutInTheModel() {
    MoeView view;
    view.setTrace(hot_);
    const MoeLoadModel* load = view.loadModel();
    QCOMPARE(load->rowCount(), 8);  // 2 layers x 4 experts
    QCOMPARE(load->columnCount(), 2);
    for (int32_t layer : {1, 3}) {
      QCOMPARE(load->hottestExpert(layer), 1);
      // Every token's first choice: the expert keeps every token of every step, twice its balanced
      // share with top 2 of 4 experts (tokens / (2 x tokens / 4)).
      const int row = *load->rowOf(layer, 1);
      for (int col = 0; col < load->columnCount(); ++col)
        QCOMPARE(load->data(load->index(row, col), MoeLoadModel::RelativeRole).toDouble(), 2.0);
    }
    const MoeLayerModel* layers = view.layerModel();
    QCOMPARE(layers->rowCount(), 2);
    MoeView balanced;
    balanced.setTrace(even_);
    for (int r = 0; r < 2; ++r) {
      const double hot =
          layers->data(layers->index(r, MoeLayerModel::Imbalance), MoeLayerModel::ValueRole).toDouble();
      const double even =
          balanced.layerModel()
              ->data(balanced.layerModel()->index(r, MoeLayerModel::Imbalance), MoeLayerModel::ValueRole)
              .toDouble();
      QCOMPARE(hot, 2.0);
      QVERIFY2(even < hot, qPrintable(QStringLiteral("balanced %1 against hot %2").arg(even).arg(hot)));
      QCOMPARE(layers->data(layers->index(r, MoeLayerModel::HotExpert), MoeLayerModel::ValueRole).toInt(), 1);
    }
  }

  void hoverGivesTheNumbersAndAClickNamesTheColumn() {
    MoeView view;
    view.resize(1200, 800);
    view.setTrace(hot_);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    const MoeHeatmapGeometry g = view.geometry();
    QCOMPARE(g.rows, 8);
    QCOMPARE(g.columns, 2);
    // The centre of row 1 (layer 1, expert 1), column 1 (step 1).
    const QPoint cell(g.cells.left() + g.cells.width() * 3 / 4, g.cells.top() + g.cells.height() * 3 / 16);
    QCOMPARE(g.cellAt(cell), std::optional(std::pair(1, 1)));
    const QString tip = view.toolTipAt(cell);
    QVERIFY2(tip.contains(QStringLiteral("layer 1 · expert 1 · step 1")), qPrintable(tip));
    QVERIFY2(tip.contains(QStringLiteral("2.00 × the balanced share")), qPrintable(tip));
    QVERIFY(view.toolTipAt(QPointF(2, 2)).isEmpty());
    QSignalSpy clicked(&view, &MoeView::columnClicked);
    QTest::mouseClick(view.chart(), Qt::LeftButton, {}, cell);
    QCOMPARE(clicked.count(), 1);
    QCOMPARE(clicked[0][0].toInt(), 1);
    QCOMPARE(clicked[0][1].toInt(), storage::kNone);
    view.setPerMicrobatch(true);
    QCOMPARE(view.loadModel()->columnCount(), 4);
    const MoeHeatmapGeometry m = view.geometry();
    QTest::mouseClick(view.chart(), Qt::LeftButton, {},
                      QPoint(m.cells.left() + m.cells.width() * 5 / 8, m.cells.top() + 2));
    QCOMPARE(clicked.count(), 2);
    QCOMPARE(clicked[1][0].toInt(), 1);
    QCOMPARE(clicked[1][1].toInt(), 0);
  }

  void exportsThePictureAndTheLoadTable() {
    MoeView view;
    view.setTrace(hot_);
    const QString svg = QString::fromStdString((dir_.path() / "moe.svg").string());
    const QString csv = QString::fromStdString((dir_.path() / "moe.csv").string());
    QString error;
    QVERIFY2(view.exportPicture(svg, 1200, &error), qPrintable(error));
    QVERIFY2(view.exportCsv(csv, &error), qPrintable(error));
    QFile file(csv);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QList<QByteArray> lines = file.readAll().split('\n');
    // Header, 2 steps x 2 micro-batches x 2 layers x 4 experts, and the last newline.
    QCOMPARE(lines.size(), 1 + 32 + 1);
    QCOMPARE(lines[0], QByteArray("step,microbatch,layer,replica,assignments,dropped,expert,kept"));
    QVERIFY(!view.exportCsv(QStringLiteral("/nonexistent-folder/moe.csv"), &error));
    QVERIFY(!error.isEmpty());
  }

  // Analysis > MoE Load: the view is a tab of the run's bottom panel, made once; a click on a step's
  // column shows that step in the run's timeline.
  void aTabOfTheRunShowsAClickedStepInItsTimeline() {
    RunView run(QString::fromStdString((dir_.path() / "hot.moescope").string()));
    if (!run.isLoaded()) {
      QSignalSpy loaded(&run, &RunView::loaded);
      QVERIFY(loaded.wait(10'000));
    }
    MoeView* view = showMoePanel(&run);
    QVERIFY(view);
    QCOMPARE(showMoePanel(&run), view);
    QCOMPARE(run.findChildren<MoeView*>().size(), qsizetype(1));
    QCOMPARE(view->loadModel()->rowCount(), 8);
    QCOMPARE(view->loadModel()->columnCount(), 2);
    const TimeRange before = run.timeline()->visibleRange();
    emit view->columnClicked(1, storage::kNone);
    const TimeRange shown = run.timeline()->visibleRange();
    QVERIFY(!(shown == before));
    const storage::StepMetric& step1 = hot_.steps.at(1);
    QVERIFY2(shown.start <= step1.end_ns && shown.end >= step1.start_ns,
             qPrintable(QStringLiteral("shown %1..%2, step 1 %3..%4")
                            .arg(shown.start)
                            .arg(shown.end)
                            .arg(step1.start_ns)
                            .arg(step1.end_ns)));
  }

 private:
  moescope::testing::TempDir dir_;
  storage::Trace hot_, even_;
};

QTEST_MAIN(MoeViewTest)
#include "moe_view_test.moc"
