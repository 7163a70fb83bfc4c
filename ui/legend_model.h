// The legend: one checkable row per category, with its colour, in the trace model's order; an
// unchecked category is hidden from the timeline. Optionally counts each category's spans.
#pragma once

#include <QAbstractListModel>
#include <array>
#include <bitset>

#include "storage/trace.h"

namespace moescope::ui {

class LegendModel : public QAbstractListModel {
  Q_OBJECT

 public:
  explicit LegendModel(QObject* parent = nullptr);

  std::bitset<storage::kCategoryCount> hidden() const { return hidden_; }
  void setHidden(std::bitset<storage::kCategoryCount> hidden);
  // Span counts per category (shown after the name); a scan of the category columns.
  void countSpans(const storage::Trace& trace);
  storage::Category categoryAt(int row) const { return static_cast<storage::Category>(row); }
  // The spans of the category at row (after countSpans; 0 before).
  int64_t count(int row) const {
    return row >= 0 && static_cast<size_t>(row) < counts_.size() ? counts_[static_cast<size_t>(row)] : 0;
  }

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;

 signals:
  void hiddenChanged();

 private:
  std::bitset<storage::kCategoryCount> hidden_;
  std::array<int64_t, storage::kCategoryCount> counts_{};
  bool counted_ = false;
};

}  // namespace moescope::ui
