// The GUI's exports: the visible timeline as SVG, the run as Chrome JSON and CSV, a table as CSV.
#include "ui/export_actions.h"

#include <QFile>
#include <QJsonDocument>
#include <QTemporaryDir>
#include <QTest>
#include <QXmlStreamReader>

#include "tests/ui/test_traces.h"
#include "ui/compare_table_model.h"
#include "ui/table_csv.h"
#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class ExportActionsTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

  static QByteArray read(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
  }

 private slots:
  void timelineRunAndTable() {
    const storage::Trace trace = test::makeTrace(
        2, {{0, 0, 500'000, Category::ComputeAttention}, {1, 200'000, 900'000, Category::ComputeExpert}});
    TimelineWidget timeline;
    timeline.resize(900, 300);
    timeline.setTrace(&trace);
    timeline.setVisibleRange({0, 400'000}, false);
    const RenderOptions o = visibleTimelineOptions(timeline, trace);
    QCOMPARE(o.range, (TimeRange{0, 400'000}));
    QCOMPARE(o.size.width(), 900);

    QString error;
    const QString svg = dir_.filePath(QStringLiteral("t.svg"));
    QVERIFY2(exportTimelinePicture(timeline, trace, svg, &error), qPrintable(error));
    QXmlStreamReader xml(read(svg));
    while (!xml.atEnd()) xml.readNext();
    QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
    const QString png = dir_.filePath(QStringLiteral("t.png"));
    QVERIFY(exportTimelinePicture(timeline, trace, png, &error));
    QCOMPARE(QImage(png).size(), o.size);

    const QString json = dir_.filePath(QStringLiteral("run.json"));
    QVERIFY(exportRun(trace, QStringLiteral("chrome"), json, &error));
    QVERIFY(!QJsonDocument::fromJson(read(json)).isNull());
    const QString csv = dir_.filePath(QStringLiteral("run.csv"));
    QVERIFY(exportRun(trace, QStringLiteral("csv"), csv, &error));
    QCOMPARE(read(csv).count('\n'), 3);  // a header and two spans

    CompareTableModel model;
    storage::RunSummary s;
    s.name = "only";
    s.step_ns = 1'000'000;
    model.setRuns({s});
    const QString table = dir_.filePath(QStringLiteral("table.csv"));
    QVERIFY(exportTableCsv(model, table, &error));
    QVERIFY(read(table).startsWith("figure,only (baseline)\nstep time (median),1.000 ms\n"));
    QVERIFY(!exportTableCsv(model, dir_.filePath(QStringLiteral("no/such/dir.csv")), &error));
    QVERIFY(!error.isEmpty());
  }
};

QTEST_MAIN(ExportActionsTest)
#include "export_actions_test.moc"
