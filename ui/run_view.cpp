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
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

#include "storage/activity.h"
#include "storage/analysis_bubbles.h"
#include "storage/gpu_time.h"
#include "ui/area_selection.h"
#include "ui/breakdown_view.h"
#include "ui/legend_model.h"
#include "ui/query_view.h"
#include "ui/range_summary_view.h"
#include "ui/search_results_model.h"
#include "ui/span_details_model.h"
#include "ui/time_format.h"
#include "ui/timeline_widget.h"

namespace moescope::ui {
namespace {

constexpr int kRefreshMs = 1000;
// The selection panel sums again this long after the view or the area stops changing.
constexpr int kSelectionDelayMs = 120;

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
      std::shared_ptr<const TimelineSummary> summary;
      QString error;
      try {
        full = std::make_shared<storage::Trace>(reader_->load());
        summary = std::make_shared<const TimelineSummary>(summarizeTrace(*full));
      } catch (const std::exception& e) {
        full.reset();
        error = QString::fromUtf8(e.what());
      }
      QMetaObject::invokeMethod(
          this, [this, full, summary, error] { finishLoad(full, summary, error); }, Qt::QueuedConnection);
    });
  }

  timeline_ = new TimelineWidget(this);
  vscroll_ = new QScrollBar(Qt::Vertical, this);

  searchEdit_ = new QLineEdit(this);
  searchEdit_->setObjectName(QStringLiteral("search"));
  searchEdit_->setPlaceholderText(tr("Search spans by name (Enter: next, Shift+Enter: previous)"));
  searchEdit_->setClearButtonEnabled(true);
  auto* prev = new QToolButton(this);
  prev->setText(tr("◀ Previous"));
  auto* next = new QToolButton(this);
  next->setText(tr("Next ▶"));
  auto* list = new QToolButton(this);
  list->setText(tr("List"));
  list->setToolTip(tr("Every match in a table (the Search results tab)"));
  searchStatus_ = new QLabel(this);
  searchStatus_->setObjectName(QStringLiteral("searchStatus"));
  runStatus_ = new QLabel(this);
  bubbleStatus_ = new QLabel(this);
  bubbleStatus_->setToolTip(
      tr("Idle time of each pipeline stage inside the steps (time not covered by a span "
         "other than wait), beside the schedule's theoretical share with equal stages: (p - 1) / (m + p - 1) "
         "for GPipe and 1F1B, (p - 1) / (v m + p - 1) for interleaved 1F1B, (p - 1) / (3 m + p - 1) for "
         "ZB-H1."));

  legend_ = new LegendModel(this);
  legendView_ = new QListView(this);
  legendView_->setObjectName(QStringLiteral("legend"));
  legendView_->setModel(legend_);
  legendView_->setUniformItemSizes(true);
  auto* legendNote =
      new QLabel(tr("Click a category to hide or show it. Zoomed out, each pixel shows its two "
                    "largest categories stacked, the rest grey. Rank rows show each "
                    "micro-batch's forward (light) and backward (dark) stretch. Backward spans "
                    "are darker and hatched; bubbles (idle time of a stage inside a step) "
                    "are hatched red."),
                 this);
  legendNote->setWordWrap(true);

  details_ = new SpanDetailsModel(this);
  auto* detailsView = new QTableView(this);
  detailsView->setObjectName(QStringLiteral("details"));
  detailsView->setModel(details_);
  detailsView->verticalHeader()->hide();
  detailsView->horizontalHeader()->setStretchLastSection(true);
  detailsView->setSelectionBehavior(QAbstractItemView::SelectRows);
  detailsView->setWordWrap(false);

  auto* side = new QWidget(this);
  auto* sideLayout = new QVBoxLayout(side);
  sideLayout->setContentsMargins(0, 0, 0, 0);
  sideLayout->addWidget(new QLabel(tr("<b>Legend</b>"), side));
  sideLayout->addWidget(legendView_, 2);
  sideLayout->addWidget(legendNote);
  sideLayout->addWidget(new QLabel(tr("<b>Selected span</b>"), side));
  sideLayout->addWidget(detailsView, 3);

  auto* timelineBox = new QWidget(this);
  auto* timelineLayout = new QHBoxLayout(timelineBox);
  timelineLayout->setContentsMargins(0, 0, 0, 0);
  timelineLayout->setSpacing(0);
  timelineLayout->addWidget(timeline_, 1);
  timelineLayout->addWidget(vscroll_);

  selection_ = new RangeSummaryView(this);
  breakdown_ = new BreakdownView(this);
  query_ = new QueryView(path_, this);
  resultsModel_ = new SearchResultsModel(this);
  results_ = new QTableView(this);
  results_->setObjectName(QStringLiteral("searchResults"));
  results_->setModel(resultsModel_);
  results_->verticalHeader()->hide();
  results_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  results_->horizontalHeader()->setStretchLastSection(true);
  results_->setSelectionBehavior(QAbstractItemView::SelectRows);
  results_->setSelectionMode(QAbstractItemView::SingleSelection);
  results_->setWordWrap(false);
  bottom_ = new QTabWidget(this);
  bottom_->setObjectName(QStringLiteral("bottomPanel"));
  bottom_->setDocumentMode(true);
  bottom_->addTab(selection_, tr("Selection"));
  bottom_->addTab(breakdown_, tr("Breakdown"));
  bottom_->addTab(results_, tr("Search results"));
  bottom_->addTab(query_, tr("SQL"));
  auto* timelineSplit = new QSplitter(Qt::Vertical, this);
  timelineSplit->addWidget(timelineBox);
  timelineSplit->addWidget(bottom_);
  timelineSplit->setStretchFactor(0, 3);
  timelineSplit->setStretchFactor(1, 1);
  timelineSplit->setSizes({640, 260});

  auto* splitter = new QSplitter(Qt::Horizontal, this);
  splitter->addWidget(timelineSplit);
  splitter->addWidget(side);
  splitter->setStretchFactor(0, 1);
  splitter->setStretchFactor(1, 0);
  splitter->setSizes({1200, 320});

  auto* bar = new QHBoxLayout;
  bar->addWidget(searchEdit_, 1);
  bar->addWidget(prev);
  bar->addWidget(next);
  bar->addWidget(list);
  bar->addWidget(searchStatus_);
  bar->addSpacing(16);
  bar->addWidget(runStatus_);
  bar->addSpacing(16);
  bar->addWidget(bubbleStatus_);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(bar);
  layout->addWidget(splitter, 1);

  selectionTimer_ = new QTimer(this);
  selectionTimer_->setSingleShot(true);
  selectionTimer_->setInterval(kSelectionDelayMs);
  connect(selectionTimer_, &QTimer::timeout, this, &RunView::updateSelectionPanel);

  connect(searchEdit_, &QLineEdit::textChanged, this, &RunView::onSearchChanged);
  connect(searchEdit_, &QLineEdit::returnPressed, this,
          [this] { findNext(!(QGuiApplication::keyboardModifiers() & Qt::ShiftModifier)); });
  connect(prev, &QToolButton::clicked, this, [this] { findNext(false); });
  connect(next, &QToolButton::clicked, this, [this] { findNext(true); });
  connect(list, &QToolButton::clicked, this, &RunView::showSearchResults);
  connect(results_, &QTableView::activated, this, [this](const QModelIndex& index) {
    const SpanRef span = resultsModel_->spanAt(index.row());
    if (span.valid()) timeline_->selectSpan(span, true);
  });
  connect(results_, &QTableView::clicked, this, [this](const QModelIndex& index) {
    const SpanRef span = resultsModel_->spanAt(index.row());
    if (span.valid()) timeline_->selectSpan(span, true);
  });
  connect(legend_, &LegendModel::hiddenChanged, this,
          [this] { timeline_->setHiddenCategories(legend_->hidden()); });
  // A click anywhere on a category toggles it: on its check box the view has already done so.
  auto pressedState = std::make_shared<QVariant>();
  connect(legendView_, &QListView::pressed, this,
          [pressedState](const QModelIndex& index) { *pressedState = index.data(Qt::CheckStateRole); });
  connect(legendView_, &QListView::clicked, this, [this, pressedState](const QModelIndex& index) {
    const QVariant now = index.data(Qt::CheckStateRole);
    if (now != *pressedState) return;
    legend_->setData(index, now.value<Qt::CheckState>() == Qt::Checked ? Qt::Unchecked : Qt::Checked,
                     Qt::CheckStateRole);
  });
  connect(timeline_, &TimelineWidget::spanSelected, this, &RunView::onSpanSelected);
  connect(timeline_, &TimelineWidget::viewChanged, this, &RunView::syncScrollBar);
  connect(timeline_, &TimelineWidget::layoutChanged, this, &RunView::syncScrollBar);
  connect(vscroll_, &QScrollBar::valueChanged, timeline_, &TimelineWidget::setScrollY);
  connect(timeline_, &TimelineWidget::viewChanged, selectionTimer_, qOverload<>(&QTimer::start));
  connect(timeline_, &TimelineWidget::areaChanged, selectionTimer_, qOverload<>(&QTimer::start));
  connect(bottom_, &QTabWidget::currentChanged, this, [this] {
    if (bottom_->currentWidget() == breakdown_) setBreakdownVisible(true);
    selectionTimer_->start();
  });

  timeline_->setTrace(&trace_);
  timeline_->setSearch(&search_);
  firstView_ = timeline_->visibleRange();
  selection_->setTrace(&trace_);
  countLegend();
  runStatus_->setText(runSummary(trace_));
  if (loaded_) bubbleStatus_->setText(bubbleSummary(trace_));
  updateSelectionNow();

  refreshTimer_ = new QTimer(this);
  refreshTimer_->setInterval(kRefreshMs);
  connect(refreshTimer_, &QTimer::timeout, this, &RunView::refresh);
  if (isLive() && loaded_) refreshTimer_->start();
}

void RunView::setBreakdownVisible(bool visible) {
  if (visible && trace_.spanCount() > kMaxBreakdownSpans) {
    emit statusMessage(tr("This run is too large for the breakdown here; see moescope-cli stats"));
    if (bottom_->currentWidget() == breakdown_) bottom_->setCurrentWidget(selection_);
    return;
  }
  if (!visible) {
    if (bottom_->currentWidget() == breakdown_) bottom_->setCurrentWidget(selection_);
    return;
  }
  bottom_->show();
  if (bottom_->currentWidget() != breakdown_) bottom_->setCurrentWidget(breakdown_);  // comes back here
  breakdown_->setTrace(&trace_, true);
  selectionTimer_->start();
}

bool RunView::isBreakdownVisible() const {
  return bottom_->currentWidget() == breakdown_ && !bottom_->isHidden();
}

int RunView::addPanelTab(QWidget* panel, const QString& title) {
  return bottom_->addTab(panel, title);
}

void RunView::showPanelTab(QWidget* panel) {
  bottom_->setCurrentWidget(panel);
}

void RunView::showSelectionPanel() {
  bottom_->setCurrentWidget(selection_);
}

void RunView::showQueryPanel() {
  bottom_->setCurrentWidget(query_);
}

void RunView::showSearchResults() {
  bottom_->setCurrentWidget(results_);
}

RunView::~RunView() {
  if (loader_.joinable()) loader_.join();
  loaded_ = true;
  releaseFile();
}

void RunView::countLegend() {
  legend_->countSpans(trace_);
  // Categories the run has no span of are not listed.
  for (int row = 0; row < legend_->rowCount(); ++row)
    legendView_->setRowHidden(row, legend_->count(row) == 0);
}

void RunView::finishLoad(std::shared_ptr<storage::Trace> full, std::shared_ptr<const TimelineSummary> summary,
                         const QString& error) {
  if (loader_.joinable()) loader_.join();
  loaded_ = true;
  if (full) {
    // Span indices differ between the first step and the whole run: the selection goes.
    timeline_->selectSpan(std::nullopt);
    trace_ = std::move(*full);
    const bool untouched = timeline_->visibleRange() == firstView_;
    timeline_->setTrace(&trace_, !untouched, std::move(summary));
    search_.setQuery(trace_, search_.query());
    resultsModel_->setSearch(&trace_, &search_);
    updateSearchStatus();
    countLegend();
    runStatus_->setText(runSummary(trace_));
    bubbleStatus_->setText(bubbleSummary(trace_));
    selection_->setTrace(&trace_);
    if (isBreakdownVisible()) breakdown_->setTrace(&trace_);
    full.reset();
#if defined(__GLIBC__)
    // The loader grew its columns in its own malloc arena; hand the freed growth back to the system,
    // or it stays resident (about 5 bytes per span on a 10M-span run).
    malloc_trim(0);
#endif
    selectionTimer_->start();
    emit contentChanged();
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

void RunView::releaseFile() {
  if (!loaded_ || isLive()) return;
  // Nothing more will be read. The view never writes the file: the writer folded its WAL in when it
  // finished (docs/RELIABILITY.md).
  reader_.reset();
}

bool RunView::refresh() {
  if (!loaded_ || !reader_) return false;  // the loader thread owns the reader until loaded
  bool grew = false;
  try {
    const storage::RunStatus before = trace_.run.status;
    grew = reader_->refresh(trace_);
    const bool ended = trace_.run.status != before;
    if (grew) {
      timeline_->traceGrew();
      countLegend();
      if (!search_.query().empty()) {
        search_.setQuery(trace_, search_.query());
        resultsModel_->setSearch(&trace_, &search_);
        updateSearchStatus();
      }
      selectionTimer_->start();
    }
    if (grew || ended) {
      runStatus_->setText(runSummary(trace_));
      bubbleStatus_->setText(bubbleSummary(trace_));
      if (isBreakdownVisible()) breakdown_->setTrace(&trace_, true);
      emit titleChanged();
      emit contentChanged();
    }
    if (!isLive()) {
      refreshTimer_->stop();
      releaseFile();
    }
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

void RunView::updateSelectionNow() {
  selectionTimer_->stop();
  updateSelectionPanel();
}

void RunView::updateSelectionPanel() {
  const std::optional<AreaSelection>& area = timeline_->area();
  AreaSelection shown = area ? *area : AreaSelection{timeline_->visibleRange(), allTracks(trace_)};
  if (!area) {
    // The view, clipped to the run: beyond it there is nothing to sum.
    shown.range.start = std::max(shown.range.start, timeline_->extent().start);
    shown.range.end = std::min(shown.range.end, timeline_->extent().end);
  }
  if (bottom_->currentWidget() == selection_) selection_->showArea(shown, !area);
  if (isBreakdownVisible()) breakdown_->showRange(shown.range);
}

void RunView::focusSearch() {
  searchEdit_->setFocus();
  searchEdit_->selectAll();
}

void RunView::onSearchChanged(const QString& text) {
  search_.setQuery(trace_, text.toStdString());
  resultsModel_->setSearch(&trace_, &search_);
  timeline_->searchChanged();
  updateSearchStatus();
}

void RunView::updateSearchStatus() {
  searchStatus_->setText(searchStatus());
}

QString RunView::searchStatus() const {
  if (search_.query().empty()) return {};
  const size_t n = search_.count();
  if (n == 0) return tr("no match");
  const QString total = QLocale().toString(static_cast<qulonglong>(n));
  if (auto sel = timeline_->selected()) {
    if (auto i = search_.indexOf(trace_, *sel))
      return tr("%1 of %2").arg(QLocale().toString(static_cast<qulonglong>(*i + 1)), total);
  }
  return n == 1 ? tr("1 match") : tr("%1 matches").arg(total);
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
  updateSearchStatus();
  if (auto sel = timeline_->selected()) {
    const int row = resultsModel_->rowOf(*sel);
    if (row >= 0) {
      const QSignalBlocker block(results_);
      results_->selectRow(row);
      results_->scrollTo(resultsModel_->index(row, 0));
    }
  }
}

}  // namespace moescope::ui
