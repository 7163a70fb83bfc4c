// moescope: the desktop app. `moescope [RUN...]` opens runs in the main window (without a display,
// it draws each run to pictures beside it instead, and says where they are);
// `moescope --render OUT.png RUN [--size WxH] [--range T0:T1]` draws a run's timeline to a picture
// without a display (on Qt's offscreen platform unless another one is chosen).
#include <QApplication>
#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QImageWriter>
#include <QRegularExpression>
#include <cstdio>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "storage/run_reader.h"
#include "ui/main_window.h"
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
  parser.addOption({QStringLiteral("render"),
                    QStringLiteral("Draw the timeline of RUN to OUT.png without a window, and exit."),
                    QStringLiteral("OUT.png")});
  parser.addOption({QStringLiteral("size"), QStringLiteral("Picture size for --render (default 1600x900)."),
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

int render(const QCommandLineParser& parser) {
  const QStringList runs = parser.positionalArguments();
  if (runs.size() != 1) return fail(QStringLiteral("--render takes exactly one RUN"));
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
  storage::Trace trace;
  try {
    trace = storage::RunReader::open(runs.front().toStdString())->load();
  } catch (const std::exception& e) {
    return fail(QString::fromUtf8(e.what()));
  }
  if (range) {
    const int64_t origin = ui::timelineExtent(trace).start;
    options.range = ui::TimeRange{origin + range->start, origin + range->end};
  }
  const QImage image = ui::renderTimeline(trace, options);
  const QString out = parser.value(QStringLiteral("render"));
  QImageWriter writer(out);
  if (!writer.write(image)) return fail(QStringLiteral("cannot write %1: %2").arg(out, writer.errorString()));
  std::printf("wrote %s (%dx%d, %zu spans)\n", qPrintable(QFileInfo(out).absoluteFilePath()), image.width(),
              image.height(), trace.spanCount());
  return 0;
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
