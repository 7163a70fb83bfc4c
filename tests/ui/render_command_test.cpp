// `moescope --render`: the program itself, run as a user would, on a small run file.
#include <QFile>
#include <QImage>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
#include "ui/timeline_layout.h"
#include "ui/timeline_palette.h"
#include "ui/timeline_render.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class RenderCommandTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  QString run_;
  storage::Trace trace_;

  // Runs moescope without a platform set, so that it must choose the offscreen one itself.
  static int moescope(const QStringList& args, QString* output = nullptr) {
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.remove(QStringLiteral("QT_QPA_PLATFORM"));
    env.remove(QStringLiteral("DISPLAY"));
    env.remove(QStringLiteral("WAYLAND_DISPLAY"));
    p.setProcessEnvironment(env);
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(QStringLiteral(MOESCOPE_BINARY_DIR "/bin/moescope"), args);
    if (!p.waitForFinished(60'000)) return -1;
    if (output) *output = QString::fromUtf8(p.readAll());
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  }

  QColor pixelAt(const QImage& image, const RenderOptions& o, int32_t track, int64_t t) {
    const TimelineLayout layout = layoutTimeline(trace_, summarizeTrace(trace_), {}, o.metrics);
    const TimeMapping m = renderMapping(trace_, o);
    const auto& row = layout.rows[static_cast<size_t>(layout.rowOfTrack(track))];
    return image.pixelColor(o.metrics.labelWidth + static_cast<int>(m.toX(t)), layout.boxTop(row) + 1);
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    // Times on a late clock, as a real run has them: the picture is drawn from the run's start.
    const int64_t t0 = 5'000'000'000;
    trace_ = test::makeTrace(3, {{0, t0, t0 + 500'000, Category::ComputeAttention},
                                 {0, t0 + 500'000, t0 + 1'000'000, Category::CommTpAllreduce},
                                 {1, t0, t0 + 1'000'000, Category::ComputeExpert},
                                 {2, t0, t0 + 250'000, Category::MoeSlice},
                                 {2, t0 + 250'000, t0 + 1'000'000, Category::CommPpSendrecv}});
    run_ = dir_.filePath(QStringLiteral("small.moescope"));
    test::writeRun(run_.toStdString(), trace_);
  }

  void picturePixelsHaveCategoryColours() {
    const QString png = dir_.filePath(QStringLiteral("small.png"));
    QString out;
    QCOMPARE(
        moescope({QStringLiteral("--render"), png, run_, QStringLiteral("--size"), QStringLiteral("900x260")},
                 &out),
        0);
    QVERIFY2(out.contains(QStringLiteral("wrote")), qPrintable(out));
    const QImage image(png);
    QCOMPARE(image.size(), QSize(900, 260));
    RenderOptions o;
    o.size = image.size();
    const int64_t t0 = 5'000'000'000;
    QCOMPARE(pixelAt(image, o, 0, t0 + 10'000), categoryColor(Category::ComputeAttention));
    QCOMPARE(pixelAt(image, o, 0, t0 + 600'000), categoryColor(Category::CommTpAllreduce));
    QCOMPARE(pixelAt(image, o, 1, t0 + 300'000), categoryColor(Category::ComputeExpert));
    QCOMPARE(pixelAt(image, o, 2, t0 + 10'000), categoryColor(Category::MoeSlice));
    QCOMPARE(pixelAt(image, o, 2, t0 + 900'000), categoryColor(Category::CommPpSendrecv));
  }

  void rangeIsFromTheFirstSpan() {
    const QString png = dir_.filePath(QStringLiteral("range.png"));
    QCOMPARE(moescope({QStringLiteral("--render"), png, run_, QStringLiteral("--size"),
                       QStringLiteral("900x260"), QStringLiteral("--range"), QStringLiteral("400us:600us")}),
             0);
    const QImage image(png);
    RenderOptions o;
    o.size = image.size();
    const int64_t t0 = 5'000'000'000;
    o.range = TimeRange{t0 + 400'000, t0 + 600'000};
    QCOMPARE(pixelAt(image, o, 0, t0 + 410'000), categoryColor(Category::ComputeAttention));
    QCOMPARE(pixelAt(image, o, 0, t0 + 510'000), categoryColor(Category::CommTpAllreduce));
  }

  void badInputIsAnErrorNotACrash_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("message");
    QTest::newRow("missing run") << QStringList{"--render", "x.png", "/nonexistent/run.moescope"}
                                 << QString("run.moescope");
    QTest::newRow("bad size") << QStringList{"--render", "x.png", "RUN", "--size", "big"}
                              << QString("--size");
    QTest::newRow("bad range") << QStringList{"--render", "x.png", "RUN", "--range", "5ms:1ms"}
                               << QString("--range");
    QTest::newRow("range beyond int64")
        << QStringList{"--render", "x.png", "RUN", "--range", "0:9223372036854775807"} << QString("2^62 ns");
    QTest::newRow("range without units") << QStringList{"--render", "x.png", "RUN", "--range", "0.21:0.25"}
                                         << QString("units ns, us, ms or s");
    QTest::newRow("bad area") << QStringList{"--render", "x.png", "RUN", "--area", "1ms"}
                              << QString("--area");
    QTest::newRow("unknown span") << QStringList{"--render", "x.png", "RUN", "--select", "nothing"}
                                  << QString("no span named");
    QTest::newRow("bad time") << QStringList{"--render", "x.png", "RUN", "--time", "wall"}
                              << QString("--time");
    QTest::newRow("two runs") << QStringList{"--render", "x.png", "RUN", "RUN"} << QString("exactly one");
    QTest::newRow("unknown option") << QStringList{"--frobnicate"} << QString("frobnicate");
  }
  void badInputIsAnErrorNotACrash() {
    QFETCH(QStringList, args);
    QFETCH(QString, message);
    args.replaceInStrings(QStringLiteral("RUN"), run_);
    args.replaceInStrings(QStringLiteral("x.png"), dir_.filePath(QStringLiteral("x.png")));
    QString out;
    QCOMPARE(moescope(args, &out), 2);
    QVERIFY2(out.contains(message), qPrintable(out));
    // One line: "moescope: ...", nothing else (Qt's own chatter aside).
    QStringList lines = out.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    lines.removeIf([](const QString& l) { return l.startsWith(QStringLiteral("QStandardPaths")); });
    QCOMPARE(lines.size(), qsizetype(1));
    QVERIFY(lines[0].startsWith(QStringLiteral("moescope: ")));
  }

  // An output that cannot be written is a failure of the work (exit 1), said in one line.
  void anUnwritablePictureIsExitOne() {
    QString out;
    QCOMPARE(moescope({QStringLiteral("--render"), QStringLiteral("/nonexistent/dir/x.png"), run_}, &out), 1);
    QVERIFY2(out.contains(QStringLiteral("moescope: cannot write /nonexistent/dir/x.png")), qPrintable(out));
  }

  void flowsAreaAndGpuTimeOfTheH200Sample() {
    const QString run = dir_.filePath(QStringLiteral("h200.moescope"));
    QVERIFY(QFile::copy(QStringLiteral(MOESCOPE_SOURCE_DIR "/samples/ppmoe-tp2-h200.moescope"), run));
    QString out;
    const QString flows = dir_.filePath(QStringLiteral("flows.png"));
    QCOMPARE(moescope({QStringLiteral("--render"), flows, run, QStringLiteral("--steady"),
                       QStringLiteral("--select"), QStringLiteral("attn_allreduce@230ms")},
                      &out),
             0);
    QVERIFY2(!QImage(flows).isNull(), qPrintable(out));
    // An area: the picture grows by the table under the timeline.
    const QString area = dir_.filePath(QStringLiteral("area.png"));
    QCOMPARE(moescope({QStringLiteral("--render"), area, run, QStringLiteral("--size"),
                       QStringLiteral("1200x500"), QStringLiteral("--area"), QStringLiteral("230ms:260ms")},
                      &out),
             0);
    QVERIFY2(out.contains(QStringLiteral("an area of 30.0 ms")), qPrintable(out));
    QVERIFY(QImage(area).height() > 500);
    const QString gpu = dir_.filePath(QStringLiteral("gpu-breakdown.png"));
    QCOMPARE(moescope({QStringLiteral("--render"), gpu, run, QStringLiteral("--view"),
                       QStringLiteral("breakdown")},
                      &out),
             0);
    QCOMPARE(moescope({QStringLiteral("--render"), gpu, run, QStringLiteral("--view"),
                       QStringLiteral("breakdown"), QStringLiteral("--time"), QStringLiteral("host")},
                      &out),
             0);
  }

  void withoutADisplayTheRunIsDrawn() {
    // Steps give the second picture; a copy of the run so that the pictures land in their own place.
    auto trace = trace_;
    for (int s = 0; s < 3; ++s) {
      storage::StepMetric m;
      m.step = s;
      m.start_ns = 5'000'000'000 + s * 333'000;
      m.end_ns = m.start_ns + 333'000;
      trace.steps.push_back(m);
    }
    const QString run = dir_.filePath(QStringLiteral("nodisplay.moescope"));
    test::writeRun(run.toStdString(), trace);
    QString out;
    QCOMPARE(moescope({run}, &out), 0);
    const QString whole = dir_.filePath(QStringLiteral("nodisplay.timeline.png"));
    const QString steps = dir_.filePath(QStringLiteral("nodisplay.steps.png"));
    QVERIFY2(out.contains(whole) && out.contains(steps), qPrintable(out));
    QVERIFY(out.contains(QStringLiteral("No display")));
    QCOMPARE(QImage(whole).width(), 2000);
    QVERIFY(!QImage(steps).isNull());
  }

  void withoutADisplayOrARunItSaysSo() {
    QString out;
    QCOMPARE(moescope({}, &out), 2);
    QVERIFY2(out.contains(QStringLiteral("no display")), qPrintable(out));
  }

  void helpNeedsNoDisplay() {
    QString out;
    QCOMPARE(moescope({QStringLiteral("--help")}, &out), 0);
    QVERIFY(out.contains(QStringLiteral("--render")));
    QVERIFY2(out.contains(QStringLiteral("Usage: moescope ")), qPrintable(out));
    QVERIFY(!out.contains(QStringLiteral("executable_name")));
    QVERIFY(out.contains(QStringLiteral("0.21s:0.25s")));  // --range says it takes units
    QVERIFY(out.contains(QStringLiteral("--range")));
  }
};

QTEST_GUILESS_MAIN(RenderCommandTest)
#include "render_command_test.moc"
