// One open run: the timeline with its vertical scroll bar, a search bar (by name, next and previous),
// and a side panel with the legend (hides categories) and the selected span's fields. Owns the
// run's reader and its trace; a run that is still being written is refreshed from its file once a
// second until it ends.
#pragma once

#include <QString>
#include <QWidget>
#include <memory>

#include "storage/run_reader.h"
#include "storage/trace.h"
#include "ui/span_search.h"

class QLabel;
class QLineEdit;
class QScrollBar;
class QTimer;

namespace moescope::ui {

class LegendModel;
class SpanDetailsModel;
class TimelineWidget;

class RunView : public QWidget {
  Q_OBJECT

 public:
  // Opens and loads the file; throws storage::StorageError (or std::exception) when it cannot.
  explicit RunView(const QString& path, QWidget* parent = nullptr);
  ~RunView() override;

  const QString& path() const { return path_; }
  QString title() const;
  const storage::Trace& trace() const { return trace_; }
  TimelineWidget* timeline() const { return timeline_; }
  bool isLive() const;

  void focusSearch();
  void findNext(bool forward = true);

 public slots:
  // Reads what was added to the file since the last load; returns whether anything was.
  bool refresh();

 signals:
  void statusMessage(const QString& text);
  void titleChanged();

 private:
  void syncScrollBar();
  void onSearchChanged(const QString& text);
  void onSpanSelected();

  QString path_;
  std::unique_ptr<storage::RunReader> reader_;
  storage::Trace trace_;
  SpanSearch search_;

  TimelineWidget* timeline_ = nullptr;
  QScrollBar* vscroll_ = nullptr;
  QLineEdit* searchEdit_ = nullptr;
  QLabel* searchStatus_ = nullptr;
  QLabel* runStatus_ = nullptr;
  LegendModel* legend_ = nullptr;
  SpanDetailsModel* details_ = nullptr;
  QTimer* refreshTimer_ = nullptr;
};

}  // namespace moescope::ui
