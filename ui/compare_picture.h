// Runs compared in one picture: their timelines stacked on one time axis, each from the start of a
// steady-state step (the middle measured step; the first step is warm-up), all showing the same
// duration, so equal lengths are equal times and a faster layout ends its step further left; then one
// legend for all, and the compare table (storage/analysis_compare.h) with ratios to the baseline and
// the largest differences highlighted. The compare view and `moescope --render --view compare` paint
// this.
#pragma once

#include <QPainter>
#include <QSize>
#include <span>
#include <vector>

#include "storage/analysis_compare.h"
#include "storage/trace.h"
#include "ui/time_mapping.h"
#include "ui/timeline_layout.h"

namespace moescope::ui {

struct ComparePictureOptions {
  int width = 1800;
  int steps = 1;      // steps shown from the aligned one
  bool table = true;  // the compare table under the timelines
  LayoutMetrics metrics{40, 20, 20, 3, 250};
};

// The step each run is aligned at and the window it shows (see above). Runs without steps show
// their whole extent.
struct AlignedWindow {
  int32_t step = -1;
  int64_t stepStart = 0;  // time 0 of the run's ruler
  TimeRange range;
  bool operator==(const AlignedWindow&) const = default;
};
std::vector<AlignedWindow> alignedWindows(std::span<const storage::Trace* const> traces, int steps = 1);

QSize comparePictureSize(std::span<const storage::Trace* const> traces, const storage::Comparison& comparison,
                         const ComparePictureOptions& options = {});

// traces and comparison.runs in the same order.
void paintCompare(QPainter& p, QSize size, std::span<const storage::Trace* const> traces,
                  const storage::Comparison& comparison, const ComparePictureOptions& options = {});

}  // namespace moescope::ui
