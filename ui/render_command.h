// `moescope --render` and `moescope RUN...` without a display: the view logic behind the GUI's
// command line (app/gui_main.cpp only parses the arguments). Pictures of a run's timeline (with a
// selected span's flows, an area selection and its summary, search marks), its breakdown in host or
// GPU time, several runs compared, a run's MoE load, or the curves of runs overlaid.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdio>

namespace moescope::ui {

struct RenderRequest {
  QString out;                                // OUT.png or OUT.svg
  QStringList runs;                           // one run; two or more for compare; one or more for curves
  QString view = QStringLiteral("timeline");  // timeline | breakdown | compare | moe | curves
  QString size = QStringLiteral("1600x900");  // WxH
  QString range;                              // T0:T1 from the run's first span, e.g. 120ms:180ms; empty: all
  bool steady = false;                        // the steady steps (all but the first) when no range is given
  QString select;  // NAME[@T]: the first span so named starting at or after T; its flows
  QString area;    // T0:T1: an area selection over every row, and its summary below
  QString search;  // mark the spans whose name holds this
  QString time;    // host | gpu: the breakdown's and the area summary's time; empty: gpu
                   // for runs traced on GPUs
};

// Writes the picture; returns 0, 2 with one line on err for bad input (an argument, a run file that
// will not load), as moescope-cli does, or 1 when the picture cannot be written.
int renderPicture(const RenderRequest& request, std::FILE* out = stdout, std::FILE* err = stderr);

// Without a display, each run drawn to pictures beside it (the whole run, and two steps from its
// middle); says where they are. Returns 0, 2 when a run will not load or 1 when a picture cannot be
// written (the others are still drawn).
int picturesWithoutDisplay(const QStringList& runs, std::FILE* out = stdout, std::FILE* err = stderr);

// One line "moescope: message" on err; returns 2.
int badInput(std::FILE* err, const QString& message);

}  // namespace moescope::ui
