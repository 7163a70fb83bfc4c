// moescope: the desktop app. `moescope [RUN...]` opens runs in the main window (without a display,
// it draws each run to pictures beside it instead, and says where they are);
// `moescope --render OUT.(png|svg) RUN... [--view timeline|breakdown|compare|moe|curves] [--size WxH]
// [--range T0:T1 | --steady] [--select NAME[@T]] [--area T0:T1] [--search TEXT] [--time host|gpu]`
// draws a run's timeline, its breakdown, several runs compared, a run's MoE load, or the curves of runs
// (overlaid), to a picture without a display (on Qt's offscreen platform unless another one is chosen);
// SVG when OUT ends in .svg. This file parses the arguments; what they draw is ui/render_command.h.
#include <QApplication>
#include <QCommandLineParser>
#include <QCoreApplication>
#include <cstdio>

#include "ui/main_window.h"
#include "ui/render_command.h"

namespace {

using namespace moescope;

void addOptions(QCommandLineParser& parser) {
  parser.setApplicationDescription(
      QStringLiteral("The moescope timeline: a pipeline Gantt chart of moescope run files."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addOption(
      {QStringLiteral("render"),
       QStringLiteral("Draw RUN (or the RUNs compared) to OUT.png, or OUT.svg, without a window, and exit."),
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
  parser.addOption(
      {QStringLiteral("range"),
       QStringLiteral("Time range for --render, from the run's first span, with units ns, us, ms "
                      "or s (a plain number is ns): 0.21s:0.25s, 210ms:250ms. Default: all."),
       QStringLiteral("T0:T1")});
  parser.addOption(
      {QStringLiteral("steady"),
       QStringLiteral("Without --range: the steady steps, every step but the first (warm-up).")});
  parser.addOption({QStringLiteral("select"),
                    QStringLiteral("Select the first span named NAME (starting at or after T, from the run's "
                                   "first span) and draw its flows: launched GPU work, pipeline sends."),
                    QStringLiteral("NAME[@T]")});
  parser.addOption({QStringLiteral("area"),
                    QStringLiteral("An area selection over every row from T0 to T1 (units as --range), and "
                                   "under the timeline what it holds, by category and by name or kernel."),
                    QStringLiteral("T0:T1")});
  parser.addOption({QStringLiteral("search"), QStringLiteral("Mark the spans whose name holds TEXT."),
                    QStringLiteral("TEXT")});
  parser.addOption(
      {QStringLiteral("time"),
       QStringLiteral("Host or GPU time for the breakdown and the area summary (default: gpu for "
                      "runs traced on GPUs, else host)."),
       QStringLiteral("host|gpu")});
  parser.addPositionalArgument(QStringLiteral("RUN"), QStringLiteral("Run files (*.moescope) to open."),
                               QStringLiteral("[RUN...]"));
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
  if (!parser.parse(arguments))
    return ui::badInput(stderr, parser.errorText() + QStringLiteral(" (see --help)"));
  if (parser.isSet(QStringLiteral("help"))) {
    // Without an application object Qt cannot name the program ("<executable_name>").
    QString help = parser.helpText();
    help.replace(QStringLiteral("<executable_name>"), QStringLiteral("moescope"));
    std::fputs(qPrintable(help), stdout);
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
  if (rendering) {
    ui::RenderRequest r;
    r.out = parser.value(QStringLiteral("render"));
    r.runs = parser.positionalArguments();
    r.view = parser.value(QStringLiteral("view"));
    r.size = parser.value(QStringLiteral("size"));
    r.range = parser.value(QStringLiteral("range"));
    r.steady = parser.isSet(QStringLiteral("steady"));
    r.select = parser.value(QStringLiteral("select"));
    r.area = parser.value(QStringLiteral("area"));
    r.search = parser.value(QStringLiteral("search"));
    r.time = parser.value(QStringLiteral("time"));
    return ui::renderPicture(r);
  }
  if (pictures) return ui::picturesWithoutDisplay(parser.positionalArguments());

  ui::MainWindow window;
  window.show();
  for (const QString& run : parser.positionalArguments()) window.openRun(run);
  return app.exec();
}
