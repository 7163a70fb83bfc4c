#include "ui/timeline_palette.h"

namespace moescope::ui {

QColor categoryColor(storage::Category c) {
  return QColor::fromRgba(storage::categoryColour(c));
}

QColor spanFill(storage::Category c, storage::Phase p) {
  const QColor base = categoryColor(c);
  const bool backward = p == storage::Phase::Backward || p == storage::Phase::BackwardWeight;
  return backward && c != storage::Category::Wait ? base.darker(150) : base;
}

QColor textOn(const QColor& fill) {
  const double luma = 0.299 * fill.redF() + 0.587 * fill.greenF() + 0.114 * fill.blueF();
  return luma > 0.55 ? QColor(0x15, 0x15, 0x15) : QColor(0xff, 0xff, 0xff);
}

}  // namespace moescope::ui
