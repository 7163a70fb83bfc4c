#include "ui/run_view.h"

#include <QFileInfo>
#include <filesystem>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QLocale>
#include <QScrollBar>
#include <QSplitter>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

#include "storage/activity.h"
#include "storage/analysis_bubbles.h"
#include "storage/gpu_time.h"
#include "ui/breakdown_view.h"
#include "ui/legend_model.h"
#include "ui/span_details_model.h"
#include "ui/time_format.h"
#include "ui/timeline_widget.h"

namespace moescope::ui {
namespace {

constexpr int kRefreshMs = 1000;

// " · 8625 GPU records, 0 dropped" for a run traced on GPUs (CUPTI's dropped count from the run's
// meta), else empty.
QString gpuSummary(const storage::Trace& t) {
  if (t.gpu.empty()) return {};
  const storage::GpuRecordCounts c = storage::gpuRecordCounts(t);
  QString s = QStringLiteral(" · %1 GPU records").arg(QLocale().toString(static_cast<qlonglong>(c.records)));
  if (c.dropped != storage::kNone)
    s += QStringLiteral(", %1 dropped").arg(QLocale().toString(static_cast<qlonglong>(c.dropped)));
  return s;
}

QString runSummary(const storage::Trace& t) {
  const auto& r = t.run;
  // A prediction must never pass for a measurement.
  const QString predicted = r.predicted
                                ? QStringLiteral("PREDICTED (not measured) from %1 · ")
                                      .arg(QFileInfo(QString::fromStdString(r.calibration)).fileName())
                                : QString();
  return predicted +
         QStringLiteral("%1 · %2 · pp %3 tp %4 dp %5 · %6 micro-batches · %7 · %8 spans · %9")
             .arg(QString::fromStdString(r.layout.empty() ? std::string("?") : r.layout),
                  QString::fromStdString(std::string(storage::scheduleName(r.schedule))))
             .arg(r.pp)
             .arg(r.tp)
             .arg(r.dp)
             .arg(r.microbatches)
             .arg(QString::fromStdString(r.backend.empty() ? std::string("?") : r.backend),
                  QLocale().toString(static_cast<qulonglong>(t.spanCount())),
                  QString::fromStdString(std::string(storage::runStatusName(r.status)))) +
         gpuSummary(t);
}

// Bubble share per stage, from the storage analysis: "bubbles: stage 0 18%, stage 1 31% (theory 20%)".
// The analysis copies every span, so large runs leave it to `moescope-cli stats`.
QString bubbleSummary(const storage::Trace& t) {
  constexpr size_t kMaxSpans = 2'000'000;
  if (t.spanCount() == 0 || t.spanCount() > kMaxSpans) return {};
  const auto activity = storage::hostActivity(t);
  const auto perStage = storage::bubblesPerStage(storage::bubbles(activity, t.run));
  if (perStage.empty()) return {};
  QStringList parts;
  for (const auto& s : perStage)
    parts << QStringLiteral("stage %1 %2%").arg(s.stage).arg(s.share * 100, 0, 'f', 0);
  return QStringLiteral("bubbles: %1 (%2 theory %3%)")
      .arg(parts.join(QStringLiteral(", ")), QString::fromUtf8(storage::scheduleName(t.run.schedule)))
      .arg(perStage.front().theoretical_share * 100, 0, 'f', 0);
}

}  // namespace

RunView::RunView(const QString& path, QWidget* parent, const RunViewOptions& options)
    : QWidget(parent), path_(path) {
  reader_ = storage::RunReader::open(path.toStdString());
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path.toStdString(), ec);
  if (ec || static_cast<int64_t>(bytes) < options.progressiveBytes) {
    trace_ = reader_->load();
  } else {
    // The first step now, everything on a worker thread. Only that thread uses the reader until
    // finishLoad.
    const storage::Trace probe = reader_->loadWindow(0, 0);  // the small tables: steps, ranks, tracks
    TimeRange first{probe.run.start_ns, probe.run.start_ns + 100'000'000};
    if (!probe.steps.empty() && probe.steps.front().end_ns > probe.steps.front().start_ns) {
      first = {probe.steps.front().start_ns, probe.steps.front().end_ns};
    }
    trace_ = reader_->loadWindow(first.start, first.end);
    loaded_ = false;
    loader_ = std::thread([this] {
      std::shared_ptr<storage::Trace> full;
      QString error;
      try {
        full = std::make_shared<storage::Trace>(reader_->load());
      } catch (const std::exception& e) {
        error = QString::fromUtf8(e.what());
      }
      QMetaObject::invokeMethod(
          this, [this, full, error] { finishLoad(full, error); }, Qt::QueuedConnection);
    });
  }

  timeline_ = new TimelineWidget(this);
  vscroll_ = new QScrollBar(Qt::Vertical, this);

  searchEdit_ = new QLineEdit(this);
  searchEdit_->setPlaceholderText(tr("Search spans by name (Enter: next, Shift+Enter: previous)"));
  searchEdit_->setClearButtonEnabled(true);
  auto* prev = new QToolButton(this);
  prev->setText(tr("◀ Previous"));
  auto* next = new QToolButton(this);
  next->setText(tr("Next ▶"));
  searchStatus_ = new QLabel(this);
  runStatus_ = new QLabel(this);
  bubbleStatus_ = new QLabel(this);
  bubbleStatus_->setToolTip(
      tr("Idle time of each pipeline stage inside the steps (time not covered by a span "
         "other than wait), beside the schedule's theoretical share with equal stages: (p - 1) / (m + p - 1) "
         "for GPipe and 1F1B, (p - 1) / (v m + p - 1) for interleaved 1F1B, (p - 1) / (3 m + p - 1) for "
         "ZB-H1."));

  legend_ = new LegendModel(this);
  auto* legendView = new QListView(this);
  legendView->setModel(legend_);
  legendView->setUniformItemSizes(true);
  auto* legendNote = new QLabel(tr("Rank rows show each micro-batch's forward (light) and backward (dark) "
                                   "stretch. Backward spans are darker and hatched; bubbles (idle time of a "
                                   "stage inside a step) are hatched red. Uncheck a category to hide it."),
                                this);
  legendNote->setWordWrap(true);

  details_ = new SpanDetailsModel(this);
  auto* detailsView = new QTableView(this);
  detailsView->setModel(details_);
  detailsView->verticalHeader()->hide();
  detailsView->horizontalHeader()->setStretchLastSection(true);
  detailsView->setSelectionBehavior(QAbstractItemView::SelectRows);
  detailsView->setWordWrap(false);

  auto* side = new QWidget(this);
  auto* sideLayout = new QVBoxLayout(side);
  sideLayout->setContentsMargins(0, 0, 0, 0);
  sideLayout->addWidget(new QLabel(tr("<b>Legend</b>"), side));
  sideLayout->addWidget(legendView, 2);
  sideLayout->addWidget(legendNote);
  sideLayout->addWidget(new QLabel(tr("<b>Selected span</b>"), side));
  sideLayout->addWidget(detailsView, 3);

  auto* timelineBox = new QWidget(this);
  auto* timelineLayout = new QHBoxLayout(timelineBox);
  timelineLayout->setContentsMargins(0, 0, 0, 0);
  timelineLayout->setSpacing(0);
  timelineLayout->addWidget(timeline_, 1);
  timelineLayout->addWidget(vscroll_);

  breakdown_ = new BreakdownView(this);
  breakdown_->hide();
  auto* timelineSplit = new QSplitter(Qt::Vertical, this);
  timelineSplit->addWidget(timelineBox);
  timelineSplit->addWidget(breakdown_);
  timelineSplit->setStretchFactor(0, 3);
  timelineSplit->setStretchFactor(1, 2);

  auto* splitter = new QSplitter(Qt::Horizontal, this);
  splitter->addWidget(timelineSplit);
  splitter->addWidget(side);
  splitter->setStretchFactor(0, 1);
  splitter->setStretchFactor(1, 0);
  splitter->setSizes({1200, 300});

  auto* bar = new QHBoxLayout;
  bar->addWidget(searchEdit_, 1);
  bar->addWidget(prev);
  bar->addWidget(next);
  bar->addWidget(searchStatus_);
  bar->addSpacing(16);
  bar->addWidget(runStatus_);
  bar->addSpacing(16);
  bar->addWidget(bubbleStatus_);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(bar);
  layout->addWidget(splitter, 1);

  connect(searchEdit_, &QLineEdit::textChanged, this, &RunView::onSearchChanged);
  connect(searchEdit_, &QLineEdit::returnPressed, this,
          [this] { findNext(!(QGuiApplication::keyboardModifiers() & Qt::ShiftModifier)); });
  connect(prev, &QToolButton::clicked, this, [this] { findNext(false); });
  connect(next, &QToolButton::clicked, this, [this] { findNext(true); });
  connect(legend_, &LegendModel::hiddenChanged, this,
          [this] { timeline_->setHiddenCategories(legend_->hidden()); });
  connect(timeline_, &TimelineWidget::spanSelected, this, &RunView::onSpanSelected);
  connect(timeline_, &TimelineWidget::viewChanged, this, &RunView::syncScrollBar);
  connect(timeline_, &TimelineWidget::layoutChanged, this, &RunView::syncScrollBar);
  connect(vscroll_, &QScrollBar::valueChanged, timeline_, &TimelineWidget::setScrollY);
  connect(timeline_, &TimelineWidget::rangeSelected, this, [this](TimeRange r) {
    if (isBreakdownVisible()) breakdown_->showRange(r);
  });

  timeline_->setTrace(&trace_);
  firstView_ = timeline_->visibleRange();
  legend_->countSpans(trace_);
  runStatus_->setText(runSummary(trace_));
  if (loaded_) bubbleStatus_->setText(bubbleSummary(trace_));

  refreshTimer_ = new QTimer(this);
  refreshTimer_->setInterval(kRefreshMs);
  connect(refreshTimer_, &QTimer::timeout, this, &RunView::refresh);
  if (isLive() && loaded_) refreshTimer_->start();
}

void RunView::setBreakdownVisible(bool visible) {
  if (visible && trace_.spanCount() > kMaxBreakdownSpans) {
    emit statusMessage(tr("This run is too large for the breakdown here; see moescope-cli stats"));
    return;
  }
  breakdown_->setVisible(visible);
  if (visible) breakdown_->setTrace(&trace_);
}

bool RunView::isBreakdownVisible() const {
  return breakdown_->isVisible();
}

RunView::~RunView() {
  if (loader_.joinable()) loader_.join();
}

void RunView::finishLoad(std::shared_ptr<storage::Trace> full, const QString& error) {
  if (loader_.joinable()) loader_.join();
  loaded_ = true;
  if (full) {
    // Span indices differ between the first step and the whole run: the selection goes.
    timeline_->selectSpan(std::nullopt);
    trace_ = std::move(*full);
    const bool untouched = timeline_->visibleRange() == firstView_;
    timeline_->setTrace(&trace_, !untouched);
    search_.setQuery(trace_, search_.query());
    legend_->countSpans(trace_);
    runStatus_->setText(runSummary(trace_));
    bubbleStatus_->setText(bubbleSummary(trace_));
    if (isBreakdownVisible()) breakdown_->setTrace(&trace_);
    full.reset();
#if defined(__GLIBC__)
    // The loader grew its columns in its own malloc arena; hand the freed growth back to the system,
    // or it stays resident (about 5 bytes per span on a 10M-span run).
    malloc_trim(0);
#endif
  } else {
    emit statusMessage(tr("Loading %1 stopped after the first step: %2").arg(path_, error));
  }
  emit titleChanged();
  if (isLive()) refreshTimer_->start();
  emit loaded();
}

QString RunView::title() const {
  QString t = QFileInfo(path_).fileName();
  if (!loaded_)
    t += tr(" (loading)");
  else if (isLive())
    t += tr(" (running)");
  return t;
}

QString RunView::bubbleText() const {
  return bubbleStatus_->text();
}

bool RunView::isLive() const {
  return trace_.run.status == storage::RunStatus::Running;
}

bool RunView::refresh() {
  if (!loaded_) return false;  // the loader thread owns the reader until then
  bool grew = false;
  try {
    const storage::RunStatus before = trace_.run.status;
    grew = reader_->refresh(trace_);
    const bool ended = trace_.run.status != before;
    if (grew) {
      timeline_->traceGrew();
      legend_->countSpans(trace_);
    }
    if (grew || ended) {
      runStatus_->setText(runSummary(trace_));
      bubbleStatus_->setText(bubbleSummary(trace_));
      if (isBreakdownVisible()) breakdown_->setTrace(&trace_, true);
      emit titleChanged();
    }
    if (!isLive()) refreshTimer_->stop();
  } catch (const std::exception& e) {
    refreshTimer_->stop();
    emit statusMessage(tr("Refreshing %1 failed: %2").arg(path_, QString::fromUtf8(e.what())));
  }
  return grew;
}

void RunView::syncScrollBar() {
  const QSignalBlocker block(vscroll_);
  vscroll_->setRange(0, timeline_->maxScrollY());
  vscroll_->setPageStep(timeline_->height());
  vscroll_->setSingleStep(timeline_->layout().metrics.trackHeight);
  vscroll_->setValue(timeline_->scrollY());
}

void RunView::focusSearch() {
  searchEdit_->setFocus();
  searchEdit_->selectAll();
}

void RunView::onSearchChanged(const QString& text) {
  search_.setQuery(trace_, text.toStdString());
  if (text.isEmpty()) {
    searchStatus_->clear();
    return;
  }
  const size_t n = search_.count(trace_);
  searchStatus_->setText(n == 0 ? tr("no match")
                                : tr("%1 matches").arg(QLocale().toString(static_cast<qulonglong>(n))));
}

void RunView::findNext(bool forward) {
  if (searchEdit_->text().isEmpty()) {
    focusSearch();  // nothing to look for yet: type it first
    return;
  }
  if (search_.query() != searchEdit_->text().toStdString()) onSearchChanged(searchEdit_->text());
  const auto from = timeline_->selected().value_or(SpanRef{});
  if (auto hit = search_.next(trace_, from, forward)) {
    timeline_->selectSpan(*hit, true);
  } else {
    emit statusMessage(tr("No span matches \"%1\"").arg(searchEdit_->text()));
  }
}

void RunView::onSpanSelected() {
  details_->setSpan(&trace_, timeline_->selected());
}

}  // namespace moescope::ui
