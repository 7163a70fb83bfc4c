#include "ui/range_summary_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

#include "storage/analysis_range.h"
#include "ui/span_access.h"
#include "ui/time_format.h"

namespace moescope::ui {

RangeSummaryView::RangeSummaryView(QWidget* parent) : QWidget(parent) {
  model_ = new RangeSummaryModel(this);
  caption_ = new QLabel(this);
  caption_->setObjectName(QStringLiteral("selectionCaption"));
  caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  tableBox_ = new QComboBox(this);
  tableBox_->setObjectName(QStringLiteral("selectionTable"));
  tableBox_->addItem(tr("Host time by category"), static_cast<int>(RangeTable::HostCategories));
  tableBox_->addItem(tr("GPU time by category"), static_cast<int>(RangeTable::GpuCategories));
  tableBox_->addItem(tr("Host spans by name"), static_cast<int>(RangeTable::Names));
  tableBox_->addItem(tr("GPU records by kernel"), static_cast<int>(RangeTable::Kernels));
  auto* proxy = new QSortFilterProxyModel(this);
  proxy->setSourceModel(model_);
  proxy->setSortRole(RangeSummaryModel::ValueRole);
  view_ = new QTableView(this);
  view_->setModel(proxy);
  view_->setSortingEnabled(true);
  view_->sortByColumn(RangeSummaryModel::Total, Qt::DescendingOrder);
  view_->verticalHeader()->hide();
  view_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  view_->horizontalHeader()->setSectionResizeMode(RangeSummaryModel::Label, QHeaderView::Stretch);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setWordWrap(false);

  auto* bar = new QHBoxLayout;
  bar->addWidget(caption_, 1);
  bar->addWidget(tableBox_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(bar);
  layout->addWidget(view_, 1);
  connect(tableBox_, &QComboBox::currentIndexChanged, this,
          [this](int i) { model_->setTable(static_cast<RangeTable>(tableBox_->itemData(i).toInt())); });
}

void RangeSummaryView::setTrace(const storage::Trace* trace) {
  trace_ = trace;
  // A GPU run's question is first where the GPU's time went.
  setTable(trace && !trace->gpu.empty() ? RangeTable::GpuCategories : RangeTable::HostCategories);
}

void RangeSummaryView::setTable(RangeTable table) {
  const int i = tableBox_->findData(static_cast<int>(table));
  if (i >= 0) tableBox_->setCurrentIndex(i);
  model_->setTable(table);
}

void RangeSummaryView::showArea(const AreaSelection& area, bool wholeView) {
  if (!trace_) return;
  const int64_t origin = timelineExtent(*trace_).start;
  const QString where =
      wholeView ? tr("In view (%1 to %2, every row)")
                      .arg(QString::fromStdString(formatDuration(area.range.start - origin)),
                           QString::fromStdString(formatDuration(area.range.end - origin)))
                : tr("Area selection: %1 from %2 on %n row(s)", nullptr, static_cast<int>(area.tracks.size()))
                      .arg(QString::fromStdString(formatDuration(area.range.duration())),
                           QString::fromStdString(formatExact(area.range.start - origin)));
  const int64_t n = storage::spansInRange(*trace_, area.tracks, area.range.start, area.range.end);
  if (n > kMaxSpans) {
    model_->setSummary({});
    caption_->setText(tr("%1: %2 spans, too many to sum as the view moves; zoom in or shift-drag an area")
                          .arg(where, QLocale().toString(static_cast<qlonglong>(n))));
    return;
  }
  storage::RangeSummary s = storage::summarizeRange(*trace_, area.tracks, area.range.start, area.range.end);
  caption_->setText(tr("%1 · %2 host spans, %3 GPU records")
                        .arg(where, QLocale().toString(static_cast<qlonglong>(s.hostSpans)),
                             QLocale().toString(static_cast<qlonglong>(s.gpuRecords))));
  model_->setSummary(std::move(s));
}

QString RangeSummaryView::caption() const {
  return caption_->text();
}

}  // namespace moescope::ui
