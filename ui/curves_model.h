// The run's curves over steps, from its step metrics: loss, cross-entropy, aux loss, tokens/s and
// step time. CurvesModel is one run's table (a row per step, a column per curve); RunCurves is what
// the curves picture overlays, one per run.
#pragma once

#include <QAbstractTableModel>
#include <QString>
#include <array>
#include <vector>

#include "storage/trace.h"

namespace moescope::ui {

enum class Curve { Loss, CrossEntropy, AuxLoss, TokensPerSecond, StepTime };
inline constexpr std::array<Curve, 5> kCurves = {Curve::Loss, Curve::CrossEntropy, Curve::AuxLoss,
                                                 Curve::TokensPerSecond, Curve::StepTime};

double curveValue(const storage::StepMetric& step, Curve curve);
QString curveName(Curve curve);  // "loss", "cross-entropy", "aux loss", "tokens/s", "step ms"

struct RunCurves {
  QString name;
  std::vector<storage::StepMetric> steps;  // by step
};
RunCurves runCurves(const storage::Trace& trace);

class CurvesModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Role { ValueRole = Qt::UserRole };  // double
  // Column 0 is the step; column 1 + i is kCurves[i].
  explicit CurvesModel(QObject* parent = nullptr);

  void setCurves(RunCurves curves);
  const RunCurves& curves() const { return curves_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  RunCurves curves_;
};

}  // namespace moescope::ui
