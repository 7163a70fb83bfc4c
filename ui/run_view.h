// One open run: the timeline with its vertical scroll bar, a search bar (by name, next and previous,
// "i of N"), a side panel with the legend (click a category to hide it) and the selected span's fields,
// and a bottom panel: the selection (what the area selection or the view holds, summed), the
// breakdown, the search results and a read-only SQL query on the run file. Owns the run's reader and
// its trace; a run that is still being written is refreshed from its file once a second until it ends.
//
// A large file opens in two steps, so that the first frame comes quickly: the first step (a window
// query on the (track, start) index) is loaded and shown at once, and the whole run is loaded and
// summarized (timeline_summary.h) on a worker thread and replaces it when done.
#pragma once

#include <QString>
#include <QWidget>
#include <memory>
#include <thread>

#include "storage/run_reader.h"
#include "storage/trace.h"
#include "ui/span_search.h"
#include "ui/time_mapping.h"
#include "ui/timeline_summary.h"

class QLabel;
class QLineEdit;
class QListView;
class QScrollBar;
class QTabWidget;
class QTableView;
class QTimer;

namespace moescope::ui {

class BreakdownView;
class LegendModel;
class QueryView;
class RangeSummaryView;
class SearchResultsModel;
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

  // The breakdown tab of the bottom panel: the steps of the area selection (or of the view), or every
  // step. Runs of more than kMaxBreakdownSpans spans leave it to the CLI.
  static constexpr size_t kMaxBreakdownSpans = 2'000'000;
  void setBreakdownVisible(bool visible);
  bool isBreakdownVisible() const;
  BreakdownView* breakdown() const { return breakdown_; }
  RangeSummaryView* selectionPanel() const { return selection_; }
  QueryView* queryPanel() const { return query_; }
  QTableView* searchResults() const { return results_; }
  // Adds a view of this run as a tab of the bottom panel, after the built-in ones (Selection,
  // Breakdown, Search results, SQL), and takes ownership of it. The view reads trace() and follows the
  // run through loaded() and contentChanged(). Returns the tab's index.
  int addPanelTab(QWidget* panel, const QString& title);
  // Shows a tab of the bottom panel.
  void showPanelTab(QWidget* panel);
  void showSelectionPanel();
  void showQueryPanel();
  void showSearchResults();
  // Sums the area selection (or the view) now rather than after the short pause it waits for.
  void updateSelectionNow();

  void focusSearch();
  void findNext(bool forward = true);
  // "3 of 120", "120 matches", "no match", or empty without a query.
  QString searchStatus() const;
  const SpanSearch& search() const { return search_; }

 public slots:
  // Reads what was added to the file since the last load; returns whether anything was.
  bool refresh();

 signals:
  void statusMessage(const QString& text);
  void titleChanged();
  void loaded();          // the whole run is in memory
  void contentChanged();  // spans were added (refresh, the end of a progressive load)

 private:
  void finishLoad(std::shared_ptr<storage::Trace> full, std::shared_ptr<const TimelineSummary> summary,
                  const QString& error);
  void syncScrollBar();
  void onSearchChanged(const QString& text);
  void onSpanSelected();
  void updateSearchStatus();
  void updateSelectionPanel();
  void countLegend();
  // A run no longer written: lets go of the file (the writer has folded its WAL into it).
  void releaseFile();

  QString path_;
  std::unique_ptr<storage::RunReader> reader_;
  storage::Trace trace_;
  bool loaded_ = true;
  TimeRange firstView_;
  std::thread loader_;
  SpanSearch search_;

  TimelineWidget* timeline_ = nullptr;
  QTabWidget* bottom_ = nullptr;
  BreakdownView* breakdown_ = nullptr;
  RangeSummaryView* selection_ = nullptr;
  QueryView* query_ = nullptr;
  QTableView* results_ = nullptr;
  SearchResultsModel* resultsModel_ = nullptr;
  QScrollBar* vscroll_ = nullptr;
  QLineEdit* searchEdit_ = nullptr;
  QLabel* searchStatus_ = nullptr;
  QLabel* runStatus_ = nullptr;
  QLabel* bubbleStatus_ = nullptr;
  LegendModel* legend_ = nullptr;
  QListView* legendView_ = nullptr;
  SpanDetailsModel* details_ = nullptr;
  QTimer* refreshTimer_ = nullptr;
  QTimer* selectionTimer_ = nullptr;
};

}  // namespace moescope::ui
