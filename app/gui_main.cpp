// moescope: the desktop app. `moescope [RUN...]` opens runs in the main window (without a display,
// it draws each run to pictures beside it instead, and says where they are);
// `moescope --render OUT.(png|svg) RUN... [--view timeline|breakdown|compare|moe|curves] [--size WxH]
// [--range T0:T1]` draws a run's timeline, its breakdown, several runs compared, a run's MoE load, or
// the curves of runs (overlaid), to a picture
// without a display (on Qt's offscreen platform unless another one is chosen); SVG when OUT ends in
// .svg.
#include <QApplication>
#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>
#include <cstdio>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "storage/activity.h"
#include "storage/analysis_breakdown.h"
#include "storage/analysis_compare.h"
#include "storage/analysis_moe.h"
#include "storage/run_reader.h"
#include "ui/breakdown_picture.h"
#include "ui/compare_picture.h"
#include "ui/curves_picture.h"
#include "ui/main_window.h"
#include "ui/moe_picture.h"
#include "ui/picture_export.h"
#include "ui/span_access.h"
#include "ui/time_format.h"
#include "ui/timeline_render.h"

namespace {

using namespace moescope;

void addOptions(QCommandLineParser& parser) {
  parser.setApplicationDescription(
      QStringLiteral("The moescope timeline: a pipeline Gantt chart of moescope run files."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addOption(
      {QStringLiteral("render"),
       QStringLiteral("Draw RUN (or the RUNs compared) to OUT.png, or OUT.svg, without a window, "
                      "and exit."),
       QStringLiteral("OUT.png")});
  parser.addOption(
      {QStringLiteral("view"),
       QStringLiteral("What --render draws: timeline (default), breakdown (time by category per "
                      "stage and rank over the steps in --range, or all), compare (two or more "
                      "RUNs on one step-aligned axis, with the compare table), moe (the load per "
                      "MoE layer and expert over the steps, imbalance, dropped share, waiting, aux "
                      "loss), curves (loss, cross-entropy, aux loss, tokens/s, step time; RUNs "
                      "overlaid)."),
       QStringLiteral("timeline|breakdown|compare|moe|curves"), QStringLiteral("timeline")});
  parser.addOption({QStringLiteral("size"),
                    QStringLiteral("Picture size for --render (default 1600x900; breakdown and compare: the "
                                   "width, and as tall as they need)."),
                    QStringLiteral("WxH"), QStringLiteral("1600x900")});
  parser.addOption({QStringLiteral("range"),
                    QStringLiteral("Time range for --render, from the run's first span, e.g. 120ms:180ms or "
                                   "1.5s:2s (ns, us, ms, s; plain numbers are ns). Default: all."),
                    QStringLiteral("T0:T1")});
  parser.addPositionalArgument(QStringLiteral("RUN"), QStringLiteral("Run files (*.moescope) to open."),
                               QStringLiteral("[RUN...]"));
}

int fail(const QString& message) {
  std::fprintf(stderr, "moescope: %s\n", qPrintable(message));
  return 1;
}

storage::Trace loadRun(const QString& path) {
  return storage::RunReader::open(path.toStdString())->load();
}

int writeOut(const QString& out, QSize size, const ui::PaintFunction& paint, const QString& what) {
  QString error;
  if (!ui::writePicture(out, size, paint, &error))
    return fail(QStringLiteral("cannot write %1: %2").arg(out, error));
  std::printf("wrote %s (%dx%d, %s)\n", qPrintable(QFileInfo(out).absoluteFilePath()), size.width(),
              size.height(), qPrintable(what));
  return 0;
}

int render(const QCommandLineParser& parser) {
  const QStringList runs = parser.positionalArguments();
  const QString view = parser.value(QStringLiteral("view"));
  if (view != QStringLiteral("timeline") && view != QStringLiteral("breakdown") &&
      view != QStringLiteral("compare") && view != QStringLiteral("moe") && view != QStringLiteral("curves"))
    return fail(
        QStringLiteral("--view wants timeline, breakdown, compare, moe or curves, got \"%1\"").arg(view));
  if (view == QStringLiteral("curves")    ? runs.isEmpty()
      : view == QStringLiteral("compare") ? runs.size() < 2
                                          : runs.size() != 1) {
    return fail(view == QStringLiteral("compare")  ? QStringLiteral("--view compare takes two or more RUNs")
                : view == QStringLiteral("curves") ? QStringLiteral("--view curves takes one or more RUNs")
                                                   : QStringLiteral("--render takes exactly one RUN"));
  }
  ui::RenderOptions options;
  const auto size =
      QRegularExpression(QStringLiteral("^(\\d+)x(\\d+)$")).match(parser.value(QStringLiteral("size")));
  if (!size.hasMatch() || size.captured(1).toInt() < 300 || size.captured(2).toInt() < 100 ||
      size.captured(1).toInt() > 16384 || size.captured(2).toInt() > 16384) {
    return fail(QStringLiteral("--size wants WxH between 300x100 and 16384x16384, got \"%1\"")
                    .arg(parser.value(QStringLiteral("size"))));
  }
  options.size = QSize(size.captured(1).toInt(), size.captured(2).toInt());
  std::optional<ui::TimeRange> range;
  if (parser.isSet(QStringLiteral("range"))) {
    range = ui::parseTimeRange(parser.value(QStringLiteral("range")).toStdString());
    if (!range) {
      return fail(QStringLiteral("--range wants T0:T1 with T1 > T0, e.g. 120ms:180ms, got \"%1\"")
                      .arg(parser.value(QStringLiteral("range"))));
    }
  }
  std::vector<storage::Trace> traces;
  try {
    for (const QString& run : runs) traces.push_back(loadRun(run));
  } catch (const std::exception& e) {
    return fail(QString::fromUtf8(e.what()));
  }
  const QString out = parser.value(QStringLiteral("render"));

  if (view == QStringLiteral("compare")) {
    std::vector<const storage::Trace*> pointers;
    std::vector<storage::RunSummary> summaries;
    for (const storage::Trace& t : traces) {
      pointers.push_back(&t);
      summaries.push_back(storage::summarizeRun(t));
    }
    const storage::Comparison comparison = storage::compareRuns(summaries);
    ui::ComparePictureOptions co;
    co.width = options.size.width();
    const QSize pictureSize = ui::comparePictureSize(pointers, comparison, co);
    return writeOut(
        out, pictureSize, [&](QPainter& p) { ui::paintCompare(p, pictureSize, pointers, comparison, co); },
        QStringLiteral("%1 runs compared").arg(traces.size()));
  }

  if (view == QStringLiteral("curves")) {
    std::vector<ui::RunCurves> curves;
    for (const storage::Trace& t : traces) curves.push_back(ui::runCurves(t));
    const QSize pictureSize = ui::curvesPictureSize(options.size.width());
    const QString title = QStringLiteral("curves: %1").arg(runs.join(QStringLiteral(" · ")));
    return writeOut(
        out, pictureSize, [&](QPainter& p) { ui::paintCurves(p, pictureSize, curves, title); },
        QStringLiteral("curves of %1 runs").arg(traces.size()));
  }
  const storage::Trace& trace = traces.front();
  if (view == QStringLiteral("moe")) {
    ui::MoePictureData data;
    data.title = QStringLiteral("%1 · MoE load per layer and expert, per step")
                     .arg(QString::fromStdString(trace.run.name));
    data.grid = storage::moeLoadGrid(trace, false);
    data.stats = storage::analyzeMoe(trace);
    data.steps = trace.steps;
    const QSize pictureSize = ui::moePictureSize(data.grid, options.size.width());
    return writeOut(
        out, pictureSize, [&](QPainter& p) { ui::paintMoe(p, pictureSize, data); },
        QStringLiteral("MoE load of %1 layers").arg(data.grid.layers.size()));
  }
  if (range) {
    const int64_t origin = ui::timelineExtent(trace).start;
    options.range = ui::TimeRange{origin + range->start, origin + range->end};
  }
  if (view == QStringLiteral("breakdown")) {
    const auto activity = storage::hostActivity(trace);
    std::vector<int32_t> steps;
    if (options.range)
      steps = storage::stepsIntersecting(storage::stepExtents(activity), options.range->start,
                                         options.range->end);
    const storage::Breakdown breakdown = storage::breakdownOfSteps(activity, steps);
    const QSize pictureSize = ui::breakdownPictureSize(breakdown, options.size.width());
    const QString title =
        QStringLiteral("%1 · %2").arg(QString::fromStdString(trace.run.name), ui::stepsText(breakdown.steps));
    return writeOut(
        out, pictureSize,
        [&](QPainter& p) { ui::paintBreakdown(p, pictureSize, breakdown, ui::BreakdownUnit::Time, title); },
        QStringLiteral("breakdown of %1").arg(ui::stepsText(breakdown.steps)));
  }
  return writeOut(
      out, options.size, [&](QPainter& p) { ui::paintTimelinePicture(p, trace, options); },
      QStringLiteral("%1 spans").arg(trace.spanCount()));
}

// Whether a window can be shown: a platform was chosen, or an X11 or Wayland display is there.
bool haveDisplay() {
#if defined(Q_OS_UNIX) && !defined(Q_OS_MACOS)
  return !qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM") || !qEnvironmentVariableIsEmpty("DISPLAY") ||
         !qEnvironmentVariableIsEmpty("WAYLAND_DISPLAY");
#else
  return true;
#endif
}

// Without a display, `moescope RUN...` draws each run instead: the whole run, and two steps from its
// middle, as PNG files beside the run file; it says where they are.
int picturesWithoutDisplay(const QStringList& runs) {
  if (runs.isEmpty()) {
    return fail(
        QStringLiteral("no display to open a window on; give a RUN to get pictures of it, or use --render"));
  }
  int status = 0;
  for (const QString& run : runs) {
    storage::Trace trace;
    try {
      trace = storage::RunReader::open(run.toStdString())->load();
    } catch (const std::exception& e) {
      status = fail(QString::fromUtf8(e.what()));
      continue;
    }
    const QFileInfo info(run);
    const QString base = info.dir().filePath(info.completeBaseName());
    ui::RenderOptions options;
    options.size = ui::fittedSize(trace, 2000, options.metrics);
    std::vector<std::pair<QString, std::optional<ui::TimeRange>>> pictures = {
        {base + ".timeline.png", std::nullopt}};
    if (auto steps = ui::middleSteps(trace, 2)) pictures.emplace_back(base + ".steps.png", steps);
    for (const auto& [out, range] : pictures) {
      options.range = range;
      if (!ui::renderTimeline(trace, options).save(out)) {
        status = fail(QStringLiteral("cannot write %1").arg(out));
        continue;
      }
      std::printf("wrote %s (%s)\n", qPrintable(QFileInfo(out).absoluteFilePath()),
                  range ? "two steps from the middle of the run" : "the whole run");
    }
  }
  std::printf(
      "No display, so moescope drew the runs instead; open the pictures, or run moescope where there is "
      "a display.\n");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  QCoreApplication::setApplicationName(QStringLiteral("moescope"));
  QCoreApplication::setOrganizationName(QStringLiteral("moescope"));
  QCoreApplication::setApplicationVersion(QStringLiteral("0.1.0"));

  // Parse once before the application exists: --help needs no display, and --render picks the
  // offscreen platform before Qt connects to one.
  QStringList arguments;
  for (int i = 0; i < argc; ++i) arguments << QString::fromLocal8Bit(argv[i]);
  QCommandLineParser parser;
  addOptions(parser);
  if (!parser.parse(arguments)) return fail(parser.errorText() + QStringLiteral(" (see --help)"));
  if (parser.isSet(QStringLiteral("help"))) {
    std::fputs(qPrintable(parser.helpText()), stdout);
    return 0;
  }
  if (parser.isSet(QStringLiteral("version"))) {
    std::printf("moescope %s\n", qPrintable(QCoreApplication::applicationVersion()));
    return 0;
  }
  const bool rendering = parser.isSet(QStringLiteral("render"));
  const bool pictures = !rendering && !haveDisplay();
  if ((rendering || pictures) && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
    qputenv("QT_QPA_PLATFORM", "offscreen");
  }

  QApplication app(argc, argv);
  if (rendering) return render(parser);
  if (pictures) return picturesWithoutDisplay(parser.positionalArguments());

  ui::MainWindow window;
  window.show();
  for (const QString& run : parser.positionalArguments()) window.openRun(run);
  return app.exec();
}
