// The fields of the selected span as a two-column table (field, value): what the side panel shows.
#pragma once

#include <QAbstractTableModel>
#include <optional>
#include <vector>

#include "storage/trace.h"
#include "ui/span_fields.h"

namespace moescope::ui {

class SpanDetailsModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  explicit SpanDetailsModel(QObject* parent = nullptr);

  // trace must outlive the model or the next call; an empty span clears the table.
  void setSpan(const storage::Trace* trace, std::optional<SpanRef> span);
  std::optional<SpanRef> span() const { return span_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  std::optional<SpanRef> span_;
  std::vector<SpanField> fields_;
};

}  // namespace moescope::ui
