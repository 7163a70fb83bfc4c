// Pictures: SVG parses as XML and holds one shape per visible box (the draw list's boxes against
// the SVG's <rect> elements in each box colour); the GUI's PNG export and `moescope --render` give
// the same pixels (no tolerance: both paint through one function on the offscreen platform).
#include "ui/picture_export.h"

#include <QImage>
#include <QMap>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>
#include <QXmlStreamReader>

#include "storage/activity.h"
#include "storage/analysis_breakdown.h"
#include "storage/analysis_compare.h"
#include "storage/run_reader.h"
#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
#include "ui/breakdown_picture.h"
#include "ui/compare_picture.h"
#include "ui/timeline_palette.h"
#include "ui/timeline_render.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;
using storage::Phase;

namespace {

// The <rect> elements outside <defs>, counted by their fill (their own, or the nearest group's).
QMap<QString, int> rectsByFill(const QByteArray& svg, QString* error) {
  QMap<QString, int> out;
  QXmlStreamReader xml(svg);
  QStringList fills;
  int defs = 0;
  while (!xml.atEnd()) {
    xml.readNext();
    if (xml.isStartElement()) {
      const QString fill = xml.attributes().value(QStringLiteral("fill")).toString();
      if (xml.name() == QStringLiteral("defs")) ++defs;
      if (xml.name() == QStringLiteral("g"))
        fills << (fill.isEmpty() && !fills.isEmpty() ? fills.back() : fill);
      if (xml.name() == QStringLiteral("rect") && defs == 0)
        ++out[fill.isEmpty() && !fills.isEmpty() ? fills.back() : fill];
    } else if (xml.isEndElement()) {
      if (xml.name() == QStringLiteral("defs")) --defs;
      if (xml.name() == QStringLiteral("g")) fills.removeLast();
    }
  }
  if (xml.hasError()) *error = xml.errorString();
  return out;
}

QString hex(const QColor& c) {
  return c.name(QColor::HexRgb);
}

int differingPixels(QImage a, QImage b) {
  if (a.size() != b.size()) return -1;
  a = a.convertToFormat(QImage::Format_RGB32);
  b = b.convertToFormat(QImage::Format_RGB32);
  int n = 0;
  for (int y = 0; y < a.height(); ++y) {
    for (int x = 0; x < a.width(); ++x) n += a.pixel(x, y) != b.pixel(x, y);
  }
  return n;
}

}  // namespace

class PictureExportTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  QString runA_, runB_;

  static int moescope(const QStringList& args) {
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    p.setProcessEnvironment(env);
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(QStringLiteral(MOESCOPE_BINARY_DIR "/bin/moescope"), args);
    if (!p.waitForFinished(60'000)) return -1;
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  }

  static storage::Trace load(const QString& path) {
    return storage::RunReader::open(path.toStdString())->load();
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    runA_ = dir_.filePath(QStringLiteral("a.moescope"));
    runB_ = dir_.filePath(QStringLiteral("b.moescope"));
    test::writeRun(
        runA_.toStdString(),
        test::makeTrace(3, {{0, 0, 400'000, Category::ComputeAttention},
                            {0, 400'000, 600'000, Category::CommTpAllreduce, Phase::Forward, -1, 1024},
                            {0, 600'000, 1'000'000, Category::ComputeAttention, Phase::Backward},
                            {1, 0, 500'000, Category::ComputeExpert},
                            {1, 500'000, 900'000, Category::Wait},
                            {2, 100'000, 350'000, Category::MoeSlice},
                            {2, 350'000, 1'000'000, Category::CommPpSendrecv}}));
    test::writeRun(runB_.toStdString(),
                   test::makeTrace(2, {{0, 0, 700'000, Category::ComputeExpert},
                                       {1, 100'000, 800'000, Category::CommEpAlltoall}}));
  }

  void svgHoldsOneRectPerVisibleBox() {
    const storage::Trace trace = load(runA_);
    RenderOptions o;
    o.size = QSize(900, 260);
    o.legend = false;
    // Half the run: the boxes right of 500 us are not drawn; those across its edge are, clipped.
    o.range = TimeRange{0, 500'000};
    const DrawList list = pictureDrawList(trace, o);
    QMap<QString, int> boxes;
    for (const DrawItem& item : list.items) {
      QCOMPARE(item.lane, uint8_t(0));  // one lane: no span nests in this run
      ++boxes[hex(spanFill(item.category, item.phase))];
    }
    // attention, all-reduce (0..500 us of rank 0); expert (rank 1, the wait starts at 500); slice,
    // send/recv (rank 2).
    QCOMPARE(list.items.size(), size_t(5));
    const QByteArray svg = paintSvg(o.size, [&](QPainter& p) { paintTimelinePicture(p, trace, o); });
    QString error;
    const QMap<QString, int> rects = rectsByFill(svg, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    for (auto it = boxes.cbegin(); it != boxes.cend(); ++it) QCOMPARE(rects.value(it.key()), it.value());
    // The whole run: the backward attention box and the wait appear too.
    o.range.reset();
    const DrawList all = pictureDrawList(trace, o);
    QCOMPARE(all.items.size(), size_t(7));
    const QMap<QString, int> allRects =
        rectsByFill(paintSvg(o.size, [&](QPainter& p) { paintTimelinePicture(p, trace, o); }), &error);
    QCOMPARE(allRects.value(hex(spanFill(Category::ComputeAttention, Phase::Backward))), 1);
    QCOMPARE(allRects.value(hex(spanFill(Category::Wait, Phase::Forward))), 1);
  }

  void breakdownSvgHoldsOneRectPerSegment() {
    const storage::Trace trace = load(runA_);
    const storage::Breakdown b = storage::breakdownOfSteps(storage::hostActivity(trace), {});
    const QSize size = breakdownPictureSize(b, 900);
    QString error;
    const QMap<QString, int> rects = rectsByFill(
        paintSvg(size,
                 [&](QPainter& p) { paintBreakdown(p, size, b, BreakdownUnit::Time, QStringLiteral("a")); }),
        &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    // Three stages of one rank: a bar per stage and per rank, so each segment twice; plus one
    // legend swatch per category. Attention: stage 0 and rank 0 (2) + swatch.
    QCOMPARE(rects.value(hex(categoryColor(Category::ComputeAttention))), 2 + 1);
    // The all-reduce: 2 bars, the swatch, and the communication table's swatch.
    QCOMPARE(rects.value(hex(categoryColor(Category::CommTpAllreduce))), 2 + 1 + 1);
    // Ranks 1 and 2 have a bubble (rank 0 is busy throughout): their stage's bar and their own, 4,
    // + the swatch.
    QCOMPARE(rects.value(hex(palette::kBubble)), 4 + 1);
  }

  void pngExportMatchesRender() {
    const QString out = dir_.filePath(QStringLiteral("render.png"));
    QCOMPARE(moescope({QStringLiteral("--render"), out, runA_, QStringLiteral("--size"),
                       QStringLiteral("800x300")}),
             0);
    const storage::Trace trace = load(runA_);
    RenderOptions o;
    o.size = QSize(800, 300);
    const QImage exported = paintImage(o.size, [&](QPainter& p) { paintTimelinePicture(p, trace, o); });
    QCOMPARE(differingPixels(QImage(out), exported), 0);
  }

  void compareAndBreakdownRenderMatchTheirExports() {
    const storage::Trace a = load(runA_), b = load(runB_);
    const QString compare = dir_.filePath(QStringLiteral("compare.png"));
    QCOMPARE(moescope({QStringLiteral("--render"), compare, runA_, runB_, QStringLiteral("--view"),
                       QStringLiteral("compare"), QStringLiteral("--size"), QStringLiteral("1000x300")}),
             0);
    const std::vector<const storage::Trace*> traces = {&a, &b};
    const storage::Comparison c = storage::compareRuns(
        std::vector<storage::RunSummary>{storage::summarizeRun(a), storage::summarizeRun(b)});
    ComparePictureOptions co;
    co.width = 1000;
    const QSize size = comparePictureSize(traces, c, co);
    QCOMPARE(differingPixels(QImage(compare),
                             paintImage(size, [&](QPainter& p) { paintCompare(p, size, traces, c, co); })),
             0);

    const QString breakdown = dir_.filePath(QStringLiteral("breakdown.svg"));
    QCOMPARE(moescope({QStringLiteral("--render"), breakdown, runA_, QStringLiteral("--view"),
                       QStringLiteral("breakdown")}),
             0);
    QFile file(breakdown);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QString error;
    QVERIFY(!rectsByFill(file.readAll(), &error).isEmpty());
    QVERIFY2(error.isEmpty(), qPrintable(error));
    // Compare wants two runs or more: bad input, exit 2.
    QCOMPARE(moescope({QStringLiteral("--render"), compare, runA_, QStringLiteral("--view"),
                       QStringLiteral("compare")}),
             2);
  }
};

QTEST_MAIN(PictureExportTest)
#include "picture_export_test.moc"
