// An area selection's summary as a picture: the table the Selection panel shows (label, count, total,
// mean, max, share with a bar), for `moescope --render --area` and exports.
#pragma once

#include <QPainter>
#include <QRect>
#include <QString>

#include "storage/analysis_range.h"
#include "ui/range_summary_model.h"

namespace moescope::ui {

// Rows of the table shown at most (the largest by total).
inline constexpr int kMaxPictureRows = 12;

// The height the table needs: a title, a header and its rows.
int rangeSummaryHeight(const storage::RangeSummary& s, RangeTable table);
void paintRangeSummary(QPainter& p, const QRect& rect, const storage::RangeSummary& s, RangeTable table,
                       const QString& title);

}  // namespace moescope::ui
