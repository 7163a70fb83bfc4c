// The MoE view's models (storage/analysis_moe.h). MoeLoadModel is the heatmap: a row per (MoE layer,
// expert), a column per step or per (step, micro-batch); its value is the tokens the expert kept over
// the balanced share (the column's assignments / experts: 1 balanced, 0 idle), its tooltip the
// numbers. MoeLayerModel has a row per MoE layer: imbalance (max / mean), its worst group, CV, dropped
// share, the hot expert, the waiting at the layer's collective and the part of it from imbalance, and
// the rank waited for.
#pragma once

#include <QAbstractTableModel>
#include <optional>

#include "storage/analysis_moe.h"
#include "storage/trace.h"

namespace moescope::ui {

class MoeLoadModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Role {
    RelativeRole = Qt::UserRole,  // double: kept over the balanced share
    KeptRole,                     // qint64: kept assignments
  };
  explicit MoeLoadModel(QObject* parent = nullptr);

  void setGrid(storage::MoeLoadGrid grid);
  const storage::MoeLoadGrid& grid() const { return grid_; }
  bool perMicrobatch() const;

  // The (layer, expert) of a row, and the row of one.
  std::pair<int32_t, int32_t> rowKey(int row) const;
  std::optional<int> rowOf(int32_t layer, int32_t expert) const;
  // The expert with the most kept assignments of the layer over every column (kNone: none kept).
  int32_t hottestExpert(int32_t layer) const;
  // Largest value of RelativeRole (the colour scale's top).
  double maxRelative() const { return maxRelative_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  storage::MoeLoadGrid grid_;
  double maxRelative_ = 0;
};

class MoeLayerModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    Layer,
    Imbalance,
    Worst,
    Cv,
    Dropped,
    HotExpert,
    WaitMs,
    ImbalanceWaitMs,
    WaitedFor,
    ColumnCount
  };
  enum Role { ValueRole = Qt::UserRole };  // the number behind the text (share 0..1, ms, rank)
  explicit MoeLayerModel(QObject* parent = nullptr);

  void setStats(storage::MoeStats stats);
  const storage::MoeStats& stats() const { return stats_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  storage::MoeStats stats_;
};

// "step 4" or "step 4 · micro-batch 1".
QString moeColumnText(const storage::MoeGridColumn& column);

}  // namespace moescope::ui
