// Exports from the GUI, and the menus that reach them and the analysis views:
// - the visible timeline (its time range, every row, at its width) or the breakdown as PNG or SVG
//   (by the file's suffix), painted by the same functions as `moescope --render`;
// - the run as Chrome Trace Event JSON or CSV of spans (storage's exporters);
// - any table as CSV (table_csv.h);
// - Analysis > Breakdown (the current run's panel) and Compare Runs (a window of two runs or more).
#pragma once

#include <QAbstractItemModel>
#include <QString>
#include <functional>

#include "storage/trace.h"
#include "ui/timeline_render.h"

class QMainWindow;

namespace moescope::ui {

class BreakdownView;
class CompareView;
class RunView;
class TimelineWidget;

// What the timeline shows now, as picture options: its range, collapsed ranks and width, every row.
RenderOptions visibleTimelineOptions(const TimelineWidget& timeline, const storage::Trace& trace);

bool exportTimelinePicture(const TimelineWidget& timeline, const storage::Trace& trace, const QString& path,
                           QString* error = nullptr);
bool exportBreakdownPicture(const BreakdownView& view, const QString& path, int width = 1400,
                            QString* error = nullptr);
bool exportComparePicture(const CompareView& view, const QString& path, int width = 1800,
                          QString* error = nullptr);
// format: "chrome" or "csv".
bool exportRun(const storage::Trace& trace, const QString& format, const QString& path,
               QString* error = nullptr);

// Opens the runs in a compare window (owned by parent's window system, deleted on close); reports a
// run that will not load in a dialog and returns nullptr.
CompareView* openCompareWindow(const QStringList& paths, QWidget* parent);

// The Analysis and Export menus of a main window; currentRun is the run they act on (nullptr: none),
// compareRuns what Analysis > Compare Runs does.
void addAnalysisMenus(QMainWindow* window, std::function<RunView*()> currentRun,
                      std::function<void()> compareRuns);

}  // namespace moescope::ui
