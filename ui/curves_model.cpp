#include "ui/curves_model.h"

namespace moescope::ui {

double curveValue(const storage::StepMetric& s, Curve curve) {
  switch (curve) {
    case Curve::Loss:
      return s.loss;
    case Curve::CrossEntropy:
      return s.ce_loss;
    case Curve::AuxLoss:
      return s.aux_loss;
    case Curve::TokensPerSecond:
      return s.tokens_per_s;
    case Curve::StepTime:
      return s.step_ms;
  }
  return 0;
}

QString curveName(Curve curve) {
  switch (curve) {
    case Curve::Loss:
      return QStringLiteral("loss");
    case Curve::CrossEntropy:
      return QStringLiteral("cross-entropy");
    case Curve::AuxLoss:
      return QStringLiteral("aux loss");
    case Curve::TokensPerSecond:
      return QStringLiteral("tokens/s");
    case Curve::StepTime:
      return QStringLiteral("step ms");
  }
  return {};
}

RunCurves runCurves(const storage::Trace& trace) {
  return {QString::fromStdString(trace.run.name), trace.steps};
}

CurvesModel::CurvesModel(QObject* parent) : QAbstractTableModel(parent) {}

void CurvesModel::setCurves(RunCurves curves) {
  beginResetModel();
  curves_ = std::move(curves);
  endResetModel();
}

int CurvesModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(curves_.steps.size());
}

int CurvesModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : 1 + static_cast<int>(kCurves.size());
}

QVariant CurvesModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= columnCount()) return {};
  const storage::StepMetric& s = curves_.steps[static_cast<size_t>(index.row())];
  if (index.column() == 0) {
    if (role == Qt::DisplayRole) return QString::number(s.step);
    if (role == ValueRole) return static_cast<double>(s.step);
    return {};
  }
  const Curve curve = kCurves[static_cast<size_t>(index.column() - 1)];
  const double v = curveValue(s, curve);
  if (role == ValueRole) return v;
  if (role == Qt::DisplayRole)
    return curve == Curve::TokensPerSecond ? QString::number(v, 'f', 0)
           : curve == Curve::StepTime      ? QString::number(v, 'f', 3)
                                           : QString::number(v, 'f', 4);
  if (role == Qt::TextAlignmentRole) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  return {};
}

QVariant CurvesModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal || section < 0 || section >= columnCount())
    return {};
  return section == 0 ? QStringLiteral("step") : curveName(kCurves[static_cast<size_t>(section - 1)]);
}

}  // namespace moescope::ui
