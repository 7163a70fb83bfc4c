// One open run: the timeline with its vertical scroll bar, a search bar (by name, next and previous),
// and a side panel with the legend (hides categories) and the selected span's fields. Owns the
// run's reader and its trace; a run that is still being written is refreshed from its file once a
// second until it ends.
//
// A large file opens in two steps, so that the first frame comes quickly: the first step (a window
// query on the (track, start) index) is loaded and shown at once, and the whole run is loaded on a
// worker thread and replaces it when done.
#pragma once

#include <QString>
#include <QWidget>
#include <memory>
#include <thread>

#include "storage/run_reader.h"
#include "storage/trace.h"
#include "ui/span_search.h"
#include "ui/time_mapping.h"

class QLabel;
class QLineEdit;
class QScrollBar;
class QTimer;

namespace moescope::ui {

class BreakdownView;
class LegendModel;
class SpanDetailsModel;
class TimelineWidget;

struct RunViewOptions {
  // Files at least this large load the first step first and the rest on a worker thread.
  int64_t progressiveBytes = 64 << 20;
};

class RunView : public QWidget {
  Q_OBJECT

 public:
  // Opens the file and loads it (or its first step, see above); throws storage::StorageError (or
  // std::exception) when it cannot.
  explicit RunView(const QString& path, QWidget* parent = nullptr, const RunViewOptions& options = {});
  ~RunView() override;

  const QString& path() const { return path_; }
  QString title() const;
  const storage::Trace& trace() const { return trace_; }
  TimelineWidget* timeline() const { return timeline_; }
  // "bubbles: stage 0 18%, stage 1 31% (1f1b theory 20%)", empty for large runs.
  QString bubbleText() const;
  bool isLive() const;
  // False while the whole run is still loading in the background.
  bool isLoaded() const { return loaded_; }

  // The breakdown panel under the timeline (hidden at first): the steps of the range drag-selected
  // in the timeline, or every step. Runs of more than kMaxBreakdownSpans spans leave it to the CLI.
  static constexpr size_t kMaxBreakdownSpans = 2'000'000;
  void setBreakdownVisible(bool visible);
  bool isBreakdownVisible() const;
  BreakdownView* breakdown() const { return breakdown_; }

  void focusSearch();
  void findNext(bool forward = true);

 public slots:
  // Reads what was added to the file since the last load; returns whether anything was.
  bool refresh();

 signals:
  void statusMessage(const QString& text);
  void titleChanged();
  void loaded();  // the whole run is in memory

 private:
  void finishLoad(std::shared_ptr<storage::Trace> full, const QString& error);
  void traceChanged();
  void syncScrollBar();
  void onSearchChanged(const QString& text);
  void onSpanSelected();

  QString path_;
  std::unique_ptr<storage::RunReader> reader_;
  storage::Trace trace_;
  bool loaded_ = true;
  TimeRange firstView_;
  std::thread loader_;
  SpanSearch search_;

  TimelineWidget* timeline_ = nullptr;
  BreakdownView* breakdown_ = nullptr;
  QScrollBar* vscroll_ = nullptr;
  QLineEdit* searchEdit_ = nullptr;
  QLabel* searchStatus_ = nullptr;
  QLabel* runStatus_ = nullptr;
  QLabel* bubbleStatus_ = nullptr;
  LegendModel* legend_ = nullptr;
  SpanDetailsModel* details_ = nullptr;
  QTimer* refreshTimer_ = nullptr;
};

}  // namespace moescope::ui
