// The timeline: paints the prepared draw list of the current view and turns input into navigation.
// Wheel or W/S zoom at the cursor, drag or A/D pan (drag also scrolls rows), shift-drag selects an
// area (a time range over the rows dragged across; Enter zooms to it, Esc clears it), right-drag
// zooms to a range, double-click zooms to a span, Backspace undoes a zoom, F fits all, Shift+F fits the
// steady steps. A click selects a span and draws its flows (or folds a rank's rows when on its
// header); hovering shows a tooltip; dragging the label column's edge resizes it. Everything it draws
// comes from buildDrawList and the flows and search it is given; it only paints and forwards input.
#pragma once

#include <QElapsedTimer>
#include <QWidget>
#include <bitset>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "storage/trace.h"
#include "ui/area_selection.h"
#include "ui/draw_list.h"
#include "ui/flows.h"
#include "ui/hit_test.h"
#include "ui/span_search.h"
#include "ui/time_mapping.h"
#include "ui/timeline_layout.h"
#include "ui/timeline_summary.h"
#include "ui/zoom_stack.h"

namespace moescope::ui {

class LabelCache;

class TimelineWidget : public QWidget {
  Q_OBJECT

 public:
  explicit TimelineWidget(QWidget* parent = nullptr);
  ~TimelineWidget() override;

  // trace must outlive the widget or the next call. Shows the whole trace, or keeps the view. The
  // summary is made here when not given (one made on a loader thread saves the GUI thread the work).
  void setTrace(const storage::Trace* trace, bool keepView = false,
                std::shared_ptr<const TimelineSummary> summary = nullptr);
  // The trace has grown (live refresh): summarizes and lays out again and keeps the view, following
  // the end when the view reached it.
  void traceGrew();
  const TimelineSummary& summary() const { return *summary_; }

  TimeRange visibleRange() const { return mapping_.range; }
  TimeRange extent() const { return extent_; }
  // Shows r; remember pushes the current range on the zoom stack first.
  void setVisibleRange(TimeRange r, bool remember = true);
  void undoZoom();
  void fitAll();
  // Every step after the first (warm-up); fits all when there are fewer than two steps.
  void fitSteadySteps();
  // Shows step's extent; false when the trace has no such step.
  bool fitStep(int32_t step);
  // The step at the middle of the view, or the first one.
  std::optional<int32_t> stepAtCenter() const;
  // factor > 1 zooms in, around x (time-area pixels; the middle when not given).
  void zoomBy(double factor, std::optional<double> x = std::nullopt);
  void panBy(double dx);

  void setHiddenCategories(std::bitset<storage::kCategoryCount> hidden);
  void setCollapsed(int32_t rank, bool collapsed);
  void toggleCollapsed(int32_t rank);
  void setAllCollapsed(bool collapsed);
  // A rank's counter rows (collapsed at first under one "counters" row).
  void setCountersExpanded(int32_t rank, bool expanded);

  std::optional<SpanRef> selected() const { return selected_; }
  // Selects span and finds its flows; reveal scrolls its row into view and pans, keeping the zoom,
  // so that it shows (a span narrower than 3 px stays as narrow, at the middle of the view).
  void selectSpan(std::optional<SpanRef> span, bool reveal = false);
  const std::vector<Flow>& flows() const { return flows_; }
  // The flows as this view draws them.
  std::vector<FlowLine> flowLinesInView() const;

  const std::optional<AreaSelection>& area() const { return area_; }
  void setArea(std::optional<AreaSelection> area);
  // Zooms to the area selection's time range.
  void zoomToArea();

  // The search whose matches are marked (nullptr: none); it must outlive the widget or the next call.
  void setSearch(const SpanSearch* search);
  // Called when the search's query changed.
  void searchChanged() { update(); }

  // The label column's width (dragging its edge sets it too).
  void setLabelWidth(int width);
  int labelWidth() const { return metrics_.labelWidth; }

  int scrollY() const { return scrollY_; }
  void setScrollY(int y);
  int maxScrollY() const;

  const TimelineLayout& layout() const { return layout_; }
  const TimeMapping& mapping() const { return mapping_; }
  const ZoomStack& zoomStack() const { return zoomStack_; }
  // The draw list of the current view, prepared if it is out of date.
  const DrawList& drawList();
  int timeAreaWidth() const;

 signals:
  void spanSelected(std::optional<moescope::ui::SpanRef> span);
  // A range was drag-selected with the right button; the view then zooms to it.
  void rangeSelected(moescope::ui::TimeRange range);
  // The area selection changed (set, dragged, cleared).
  void areaChanged();
  void viewChanged();    // the visible range or the vertical scroll changed
  void layoutChanged();  // rows were added, collapsed or expanded

 protected:
  void paintEvent(QPaintEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void mouseDoubleClickEvent(QMouseEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void leaveEvent(QEvent* event) override;

 private:
  enum class Drag { None, Pan, Select, Area, Label };
  void setMapping(const TimeMapping& m);
  void relayout();
  void invalidate();
  void rememberForBurst();  // pushes the range on the zoom stack at the start of a wheel/key burst
  std::optional<Hit> hitAt(QPointF pos);
  std::optional<BubbleItem> bubbleAt(QPointF pos);
  void updateFlows();
  AreaSelection areaBetween(QPointF a, QPointF b) const;
  bool onLabelEdge(QPointF pos) const;
  void updateHover(QPointF pos, QPoint globalPos);
  double timeX(QPointF pos) const;  // widget x to time-area x
  std::optional<double> cursorX() const;

  const storage::Trace* trace_ = nullptr;
  std::shared_ptr<const TimelineSummary> summary_;
  const SpanSearch* search_ = nullptr;
  LayoutMetrics metrics_;
  TimeRange extent_{0, 1};
  TimeMapping mapping_;
  TimelineLayout layout_;
  std::set<int32_t> collapsed_;
  std::set<int32_t> expandedCounters_;
  std::bitset<storage::kCategoryCount> hidden_;
  DrawList list_;
  bool listValid_ = false;
  std::unique_ptr<LabelCache> labels_;
  int scrollY_ = 0;
  ZoomStack zoomStack_;
  QElapsedTimer burst_;
  std::optional<SpanRef> selected_, hovered_;
  std::vector<Flow> flows_;
  std::optional<AreaSelection> area_;

  Drag drag_ = Drag::None;
  QPointF pressPos_;
  TimeMapping pressMapping_;
  int pressScrollY_ = 0;
  bool moved_ = false;
  std::optional<TimeRange> rangeSelection_;
};

}  // namespace moescope::ui

Q_DECLARE_METATYPE(moescope::ui::SpanRef)
Q_DECLARE_METATYPE(std::optional<moescope::ui::SpanRef>)
