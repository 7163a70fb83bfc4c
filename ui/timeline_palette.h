// The colours of the timeline, its legend and its pictures. Category colours come from the trace
// model's one palette (storage::categoryColour); this adds how a phase changes them (backward is a
// darker shade) and the colours of everything that is not a span.
#pragma once

#include <QColor>

#include "storage/trace_model.h"

namespace moescope::ui {

QColor categoryColor(storage::Category c);
// The fill of a span box: the category's colour, darker for the backward pass (waits excepted).
QColor spanFill(storage::Category c, storage::Phase p);
// Text drawn on a fill: black or white, whichever reads better.
QColor textOn(const QColor& fill);

namespace palette {
inline const QColor kBackground{0xfa, 0xfa, 0xfa};
inline const QColor kRowAlternate{0xf1, 0xf2, 0xf4};
inline const QColor kGroupHeader{0xe3, 0xe6, 0xeb};
inline const QColor kLabelText{0x20, 0x24, 0x2a};
inline const QColor kGrid{0xdc, 0xde, 0xe2};
inline const QColor kRulerBackground{0xee, 0xef, 0xf2};
inline const QColor kFolded{0xb4, 0xb9, 0xc1};  // a folded block of spans of several categories
inline const QColor kBubble{0xf3, 0xc6, 0xc6};  // idle time of a stage inside a step
inline const QColor kBubbleHatch{0xd9, 0x7a, 0x7a};
inline const QColor kBackwardHatch{0, 0, 0, 70};
inline const QColor kForwardStretch{0x9e, 0xc3, 0xe6};   // a rank header's forward stretch
inline const QColor kBackwardStretch{0x3b, 0x6c, 0x9e};  // ... backward
inline const QColor kOptimizerStretch{0x8c, 0xd1, 0x7d};
inline const QColor kSelection{0x10, 0x10, 0x10};
inline const QColor kSearchMatch{0xff, 0xd4, 0x00};
inline const QColor kRangeSelect{0x33, 0x77, 0xcc, 60};
inline const QColor kAreaSelect{0x33, 0x77, 0xcc, 80};  // an area selection's rows
inline const QColor kAreaEdge{0x22, 0x5e, 0xa8};
inline const QColor kUtilisation{0x4b, 0x55, 0x63};       // a GPU's busy share
inline const QColor kUtilisationTrack{0xe2, 0xe5, 0xea};  // ... over its idle share
inline const QColor kOutside{0xc9, 0xb7, 0x94};           // GPU work no span launched
inline const QColor kOutsideEdge{0x8a, 0x76, 0x52};
inline const QColor kLaunchFlow{0x1f, 0x4e, 0x96};    // host span -> kernel
inline const QColor kPipelineFlow{0xc2, 0x2b, 0x2b};  // send -> recv between stages
}  // namespace palette

}  // namespace moescope::ui
