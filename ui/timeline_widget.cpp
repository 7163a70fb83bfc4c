#include "ui/timeline_widget.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

#include "ui/label_cache.h"
#include "ui/span_access.h"
#include "ui/span_fields.h"
#include "ui/time_format.h"
#include "ui/timeline_painter.h"
#include "ui/timeline_palette.h"
#include "ui/timeline_render.h"

namespace moescope::ui {
namespace {

constexpr double kKeyZoom = 1.25;
constexpr double kKeyPanFraction = 0.125;
constexpr int kClickSlopPx = 4;
constexpr qint64 kBurstGapMs = 600;

constexpr int kLabelEdgePx = 4;
constexpr int kMinLabelWidth = 120, kMaxLabelWidth = 640;

QString fieldsHtml(const std::vector<SpanField>& fields) {
  QString html = QStringLiteral("<table cellspacing=0 cellpadding=1>");
  for (const auto& f : fields) {
    html += QStringLiteral("<tr><td><b>%1</b>&nbsp;</td><td>%2</td></tr>")
                .arg(QString::fromStdString(f.label).toHtmlEscaped(),
                     QString::fromStdString(f.value).toHtmlEscaped());
  }
  return html + QStringLiteral("</table>");
}

QString tooltipHtml(const storage::Trace& trace, const Hit& hit) {
  QString html = QStringLiteral("<table cellspacing=0 cellpadding=1>");
  for (const auto& f : spanSummary(trace, hit.span)) {
    html += QStringLiteral("<tr><td><b>%1</b>&nbsp;</td><td>%2</td></tr>")
                .arg(QString::fromStdString(f.label).toHtmlEscaped(),
                     QString::fromStdString(f.value).toHtmlEscaped());
  }
  if (hit.folded > 1) {
    html += QStringLiteral(
                "<tr><td colspan=2><i>one of %1 spans in this pixel; zoom in to see them</i></td></tr>")
                .arg(hit.folded);
  }
  return html + QStringLiteral("</table>");
}

}  // namespace

TimelineWidget::TimelineWidget(QWidget* parent) : QWidget(parent), labels_(std::make_unique<LabelCache>()) {
  setMouseTracking(true);
  setFocusPolicy(Qt::StrongFocus);
  setAttribute(Qt::WA_OpaquePaintEvent);
  setMinimumSize(400, 200);
  QFont f = font();
  f.setPixelSize(11);
  setFont(f);
  summary_ = std::make_shared<TimelineSummary>();
  layout_.metrics = metrics_;
  mapping_.width = timeAreaWidth();
}

TimelineWidget::~TimelineWidget() = default;

int TimelineWidget::timeAreaWidth() const {
  return std::max(width() - layout_.metrics.labelWidth, 1);
}

void TimelineWidget::setTrace(const storage::Trace* trace, bool keepView,
                              std::shared_ptr<const TimelineSummary> summary) {
  trace_ = trace;
  selected_.reset();
  hovered_.reset();
  flows_.clear();
  if (area_) {
    area_.reset();
    emit areaChanged();
  }
  summary_ = summary
                 ? std::move(summary)
                 : std::make_shared<TimelineSummary>(trace_ ? summarizeTrace(*trace_) : TimelineSummary{});
  extent_ = trace_ ? summary_->extent : TimeRange{0, 1};
  if (!keepView) {
    zoomStack_.clear();
    scrollY_ = 0;
  }
  relayout();
  TimeMapping m;
  m.width = timeAreaWidth();
  setMapping(keepView ? mapping_ : m.showing(extent_));
  invalidate();
}

void TimelineWidget::traceGrew() {
  if (!trace_) return;
  const TimeRange old = extent_;
  summary_ = std::make_shared<TimelineSummary>(summarizeTrace(*trace_));
  extent_ = summary_->extent;
  relayout();
  updateFlows();
  // Follow the end of a growing run when the view shows its end.
  if (mapping_.range.end >= old.end && extent_.end > old.end) {
    TimeMapping m = mapping_;
    if (mapping_.range.start <= old.start)
      m.range = extent_;
    else
      m = m.pannedBy(static_cast<double>(extent_.end - old.end) / m.nsPerPixel());
    setMapping(m);
  }
  invalidate();
}

void TimelineWidget::relayout() {
  layout_ =
      trace_ ? layoutTimeline(*trace_, *summary_, collapsed_, metrics_, expandedCounters_) : TimelineLayout{};
  layout_.metrics = metrics_;
  scrollY_ = std::clamp(scrollY_, 0, maxScrollY());
  invalidate();
  emit layoutChanged();
}

void TimelineWidget::invalidate() {
  listValid_ = false;
  update();
}

void TimelineWidget::setMapping(const TimeMapping& m) {
  TimeMapping next = m;
  next.width = timeAreaWidth();
  // Allow a little room around the trace, but never lose it from view.
  const int64_t pad = std::max<int64_t>(extent_.duration() / 20, kMinVisibleDuration);
  next = next.clampedTo({extent_.start - pad, extent_.end + pad});
  if (next == mapping_) return;
  mapping_ = next;
  invalidate();
  emit viewChanged();
}

void TimelineWidget::setVisibleRange(TimeRange r, bool remember) {
  if (remember) zoomStack_.push(mapping_.range);
  setMapping(mapping_.showing(r));
}

void TimelineWidget::undoZoom() {
  if (auto r = zoomStack_.pop()) setMapping(mapping_.showing(*r));
}

void TimelineWidget::fitAll() {
  setVisibleRange(extent_);
}

void TimelineWidget::fitSteadySteps() {
  if (auto r = trace_ ? steadySteps(*trace_) : std::nullopt)
    setVisibleRange(*r);
  else
    fitAll();
}

bool TimelineWidget::fitStep(int32_t step) {
  if (!trace_) return false;
  for (const auto& s : trace_->steps) {
    if (s.step == step && s.end_ns > s.start_ns) {
      const int64_t margin = (s.end_ns - s.start_ns) / 50;
      setVisibleRange({s.start_ns - margin, s.end_ns + margin});
      return true;
    }
  }
  return false;
}

std::optional<int32_t> TimelineWidget::stepAtCenter() const {
  if (!trace_ || trace_->steps.empty()) return std::nullopt;
  const int64_t mid = mapping_.range.start + mapping_.range.duration() / 2;
  const storage::StepMetric* best = &trace_->steps.front();
  for (const auto& s : trace_->steps) {
    if (s.start_ns <= mid) best = &s;
  }
  return best->step;
}

void TimelineWidget::rememberForBurst() {
  if (!burst_.isValid() || burst_.elapsed() > kBurstGapMs) zoomStack_.push(mapping_.range);
  burst_.restart();
}

void TimelineWidget::zoomBy(double factor, std::optional<double> x) {
  rememberForBurst();
  setMapping(mapping_.zoomedAt(x.value_or(mapping_.width / 2), factor));
}

void TimelineWidget::panBy(double dx) {
  setMapping(mapping_.pannedBy(dx));
}

void TimelineWidget::setHiddenCategories(std::bitset<storage::kCategoryCount> hidden) {
  if (hidden == hidden_) return;
  hidden_ = hidden;
  invalidate();
}

void TimelineWidget::setCollapsed(int32_t rank, bool collapsed) {
  if (collapsed == (collapsed_.count(rank) > 0)) return;
  if (collapsed)
    collapsed_.insert(rank);
  else
    collapsed_.erase(rank);
  relayout();
}

void TimelineWidget::setCountersExpanded(int32_t rank, bool expanded) {
  if (expanded == (expandedCounters_.count(rank) > 0)) return;
  if (expanded)
    expandedCounters_.insert(rank);
  else
    expandedCounters_.erase(rank);
  relayout();
}

void TimelineWidget::toggleCollapsed(int32_t rank) {
  setCollapsed(rank, collapsed_.count(rank) == 0);
}

void TimelineWidget::setAllCollapsed(bool collapsed) {
  collapsed_.clear();
  if (collapsed && trace_) {
    for (const auto& r : trace_->ranks) collapsed_.insert(r.rank);
    for (const auto& t : trace_->tracks) collapsed_.insert(t.rank);
  }
  relayout();
}

void TimelineWidget::updateFlows() {
  flows_ = trace_ && selected_ ? flowsOf(*trace_, *selected_) : std::vector<Flow>{};
}

std::vector<FlowLine> TimelineWidget::flowLinesInView() const {
  if (!trace_ || flows_.empty()) return {};
  return flowLines(*trace_, *summary_, layout_, mapping_, flows_);
}

void TimelineWidget::setArea(std::optional<AreaSelection> area) {
  if (area && area->empty()) area.reset();
  if (area == area_) return;
  area_ = std::move(area);
  update();
  emit areaChanged();
}

void TimelineWidget::zoomToArea() {
  if (area_) setVisibleRange(area_->range);
}

void TimelineWidget::setSearch(const SpanSearch* search) {
  search_ = search;
  update();
}

void TimelineWidget::setLabelWidth(int width) {
  width = std::clamp(width, kMinLabelWidth, kMaxLabelWidth);
  if (width == metrics_.labelWidth) return;
  metrics_.labelWidth = width;
  layout_.metrics.labelWidth = width;
  TimeMapping m = mapping_;
  m.width = timeAreaWidth();
  mapping_ = m;
  invalidate();
  emit viewChanged();
}

void TimelineWidget::selectSpan(std::optional<SpanRef> span, bool reveal) {
  if (span && !span->valid()) span.reset();
  if (span != selected_) {
    selected_ = span;
    updateFlows();
    update();
    emit spanSelected(selected_);
  }
  if (!reveal || !span || !trace_) return;
  const auto track = trace_->tracks.at(static_cast<size_t>(span->track));
  setCollapsed(track.rank, false);
  const int row = layout_.rowOfTrack(span->track);
  if (row >= 0) {
    const auto& r = layout_.rows[static_cast<size_t>(row)];
    const int top = r.y - layout_.metrics.rulerHeight, bottom = r.y + r.height - height();
    if (r.y - scrollY_ < layout_.metrics.rulerHeight)
      setScrollY(top);
    else if (r.y + r.height - scrollY_ > height())
      setScrollY(bottom);
  }
  // Pan, never zoom: the user chose the zoom. A span longer than the view starts a tenth into it.
  const auto& c = trace_->spans.at(static_cast<size_t>(span->track));
  const int64_t s = c.start[span->index], e = c.endAt(span->index);
  const int64_t d = mapping_.range.duration();
  if (s >= mapping_.range.start && e <= mapping_.range.end) return;
  const int64_t from = e - s > d ? s - d / 10 : s + (e - s) / 2 - d / 2;
  setVisibleRange({from, from + d});
}

int TimelineWidget::maxScrollY() const {
  return std::max(layout_.height - height(), 0);
}

void TimelineWidget::setScrollY(int y) {
  y = std::clamp(y, 0, maxScrollY());
  if (y == scrollY_) return;
  scrollY_ = y;
  invalidate();
  emit viewChanged();
}

const DrawList& TimelineWidget::drawList() {
  if (!listValid_) {
    if (trace_) {
      DrawOptions o = drawOptionsFor(layout_, size(), scrollY_);
      o.hidden = hidden_;
      list_ = buildDrawList(*trace_, *summary_, layout_, mapping_, o);
    } else {
      list_ = DrawList{};
      list_.mapping = mapping_;
    }
    listValid_ = true;
  }
  return list_;
}

void TimelineWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  if (!trace_) {
    p.fillRect(rect(), palette::kBackground);
    p.setPen(palette::kLabelText);
    p.drawText(rect(), Qt::AlignCenter, tr("Open a run file (File > Open, or drop it here)"));
    return;
  }
  const DrawList& list = drawList();
  PaintState state;
  state.scrollY = scrollY_;
  state.origin = timelineExtent(*trace_).start;
  state.selected = selected_;
  state.hovered = hovered_;
  state.rangeSelection = rangeSelection_;
  state.area = area_;
  state.flows = flowLinesInView();
  state.search = search_ && !search_->empty() ? search_ : nullptr;
  if (state.search) state.searchMarks = search_->marks(*trace_, layout_, mapping_);
  state.labels = labels_.get();
  state.summary = summary_.get();
  paintTimeline(p, size(), *trace_, layout_, list, state);
}

void TimelineWidget::resizeEvent(QResizeEvent*) {
  TimeMapping m = mapping_;
  m.width = timeAreaWidth();
  mapping_ = m;
  scrollY_ = std::clamp(scrollY_, 0, maxScrollY());
  invalidate();
  emit viewChanged();
}

double TimelineWidget::timeX(QPointF pos) const {
  return pos.x() - layout_.metrics.labelWidth;
}

std::optional<double> TimelineWidget::cursorX() const {
  const QPoint p = mapFromGlobal(QCursor::pos());
  if (!rect().contains(p) || p.x() < layout_.metrics.labelWidth) return std::nullopt;
  return timeX(p);
}

void TimelineWidget::wheelEvent(QWheelEvent* event) {
  const QPoint angle = event->angleDelta();
  if (event->modifiers() & Qt::ShiftModifier) {
    setScrollY(scrollY_ - (angle.y() != 0 ? angle.y() : angle.x()) / 2);
  } else if (std::abs(angle.x()) > std::abs(angle.y())) {
    panBy(-angle.x() / 4.0);
  } else if (angle.y() != 0) {
    const double x = std::max(timeX(event->position()), 0.0);
    zoomBy(std::pow(1.0015, angle.y()), x);
  }
  event->accept();
}

bool TimelineWidget::onLabelEdge(QPointF pos) const {
  return std::abs(pos.x() - layout_.metrics.labelWidth) <= kLabelEdgePx;
}

AreaSelection TimelineWidget::areaBetween(QPointF a, QPointF b) const {
  AreaSelection area;
  if (!trace_) return area;
  TimeRange r{mapping_.toTime(std::max(timeX(a), 0.0)), mapping_.toTime(std::max(timeX(b), 0.0))};
  if (r.end < r.start) std::swap(r.start, r.end);
  area.range = r;
  auto rowNear = [&](QPointF p) {
    const int y = std::max(static_cast<int>(p.y()), layout_.metrics.rulerHeight) + scrollY_;
    const int row = layout_.rowAt(y);
    if (row >= 0) return row;
    return y >= layout_.height ? static_cast<int>(layout_.rows.size()) - 1 : 0;
  };
  area.tracks = tracksOfRows(*trace_, layout_, rowNear(a), rowNear(b));
  return area;
}

void TimelineWidget::mousePressEvent(QMouseEvent* event) {
  pressPos_ = event->position();
  pressMapping_ = mapping_;
  pressScrollY_ = scrollY_;
  moved_ = false;
  const bool inTime = pressPos_.x() >= layout_.metrics.labelWidth;
  if (event->button() == Qt::LeftButton && onLabelEdge(pressPos_)) {
    drag_ = Drag::Label;
    setCursor(Qt::SplitHCursor);
  } else if (event->button() == Qt::RightButton && inTime) {
    drag_ = Drag::Select;
  } else if (event->button() == Qt::LeftButton && (event->modifiers() & Qt::ShiftModifier) && inTime) {
    drag_ = Drag::Area;
  } else if (event->button() == Qt::LeftButton) {
    drag_ = Drag::Pan;
    setCursor(Qt::ClosedHandCursor);
  }
  event->accept();
}

void TimelineWidget::mouseMoveEvent(QMouseEvent* event) {
  const QPointF pos = event->position();
  if ((pos - pressPos_).manhattanLength() >= kClickSlopPx) moved_ = true;
  if (drag_ == Drag::Label) {
    setLabelWidth(static_cast<int>(pos.x()));
  } else if (drag_ == Drag::Pan && moved_) {
    // A drag that starts on the labels scrolls the rows only: the labels are not time.
    if (pressPos_.x() >= layout_.metrics.labelWidth)
      setMapping(pressMapping_.pannedBy(-(pos.x() - pressPos_.x())));
    setScrollY(pressScrollY_ - static_cast<int>(pos.y() - pressPos_.y()));
  } else if (drag_ == Drag::Select && moved_) {
    rangeSelection_ =
        TimeRange{mapping_.toTime(timeX(pressPos_)), mapping_.toTime(std::max(timeX(pos), 0.0))};
    update();
  } else if (drag_ == Drag::Area && moved_) {
    area_ = areaBetween(pressPos_, pos);
    update();
  } else if (drag_ == Drag::None) {
    if (onLabelEdge(pos))
      setCursor(Qt::SplitHCursor);
    else
      unsetCursor();
    updateHover(pos, event->globalPosition().toPoint());
  }
}

void TimelineWidget::mouseReleaseEvent(QMouseEvent* event) {
  const Drag drag = drag_;
  drag_ = Drag::None;
  unsetCursor();
  if (drag == Drag::Label) return;
  if (drag == Drag::Select && rangeSelection_) {
    TimeRange r = *rangeSelection_;
    rangeSelection_.reset();
    if (r.end < r.start) std::swap(r.start, r.end);
    if (moved_ && r.duration() > 0) {
      setVisibleRange(r);
      emit rangeSelected(r);
    }
    update();
    return;
  }
  if (drag == Drag::Area) {
    if (moved_) {
      std::optional<AreaSelection> a = areaBetween(pressPos_, event->position());
      if (a->empty()) a.reset();
      area_.reset();  // so that setArea sees a change and tells the panel
      setArea(a);
      return;
    }
  }
  rangeSelection_.reset();
  if (moved_ || event->button() != Qt::LeftButton) return;
  // A click: fold a rank's rows on its header, else select the span under the pointer; it clears an
  // area selection, as in Perfetto.
  setArea(std::nullopt);
  if (auto rank = groupAt(layout_, static_cast<int>(event->position().y()) + scrollY_);
      rank && event->position().y() >= layout_.metrics.rulerHeight) {
    toggleCollapsed(*rank);
    return;
  }
  if (auto rank = countersAt(layout_, static_cast<int>(event->position().y()) + scrollY_);
      rank && event->position().y() >= layout_.metrics.rulerHeight) {
    setCountersExpanded(*rank, expandedCounters_.count(*rank) == 0);
    return;
  }
  auto hit = hitAt(event->position());
  selectSpan(hit ? std::optional<SpanRef>(hit->span) : std::nullopt);
}

void TimelineWidget::mouseDoubleClickEvent(QMouseEvent* event) {
  // On a span: zoom to it. Elsewhere (a header, empty time) it is a second click.
  auto hit = event->button() == Qt::LeftButton ? hitAt(event->position()) : std::nullopt;
  if (!hit || !trace_) {
    mousePressEvent(event);
    return;
  }
  const auto& c = trace_->spans[static_cast<size_t>(hit->span.track)];
  const int64_t s = c.start[hit->span.index], e = c.endAt(hit->span.index);
  const int64_t margin = std::max<int64_t>((e - s) / 10, 1);
  setVisibleRange({s - margin, e + margin});
  drag_ = Drag::None;
  moved_ = true;  // the release that follows is not a click
}

void TimelineWidget::keyPressEvent(QKeyEvent* event) {
  const double panStep = mapping_.width * kKeyPanFraction;
  switch (event->key()) {
    case Qt::Key_W:
    case Qt::Key_Plus:
    case Qt::Key_Equal:
      zoomBy(kKeyZoom, cursorX());
      break;
    case Qt::Key_S:
    case Qt::Key_Minus:
      zoomBy(1 / kKeyZoom, cursorX());
      break;
    case Qt::Key_A:
    case Qt::Key_Left:
      panBy(-panStep);
      break;
    case Qt::Key_D:
    case Qt::Key_Right:
      panBy(panStep);
      break;
    case Qt::Key_Up:
      setScrollY(scrollY_ - layout_.metrics.trackHeight);
      break;
    case Qt::Key_Down:
      setScrollY(scrollY_ + layout_.metrics.trackHeight);
      break;
    case Qt::Key_Backspace:
    case Qt::Key_Z:
      undoZoom();
      break;
    case Qt::Key_F:
      if (event->modifiers() & Qt::ShiftModifier)
        fitSteadySteps();
      else
        fitAll();
      break;
    case Qt::Key_Return:
    case Qt::Key_Enter:
      zoomToArea();
      break;
    case Qt::Key_Escape:
      if (area_)
        setArea(std::nullopt);
      else
        selectSpan(std::nullopt);
      break;
    default:
      QWidget::keyPressEvent(event);
      return;
  }
  event->accept();
}

void TimelineWidget::leaveEvent(QEvent*) {
  if (hovered_) {
    hovered_.reset();
    update();
  }
}

std::optional<Hit> TimelineWidget::hitAt(QPointF pos) {
  if (!trace_ || pos.x() < layout_.metrics.labelWidth || pos.y() < layout_.metrics.rulerHeight)
    return std::nullopt;
  return hitTest(*trace_, *summary_, layout_, drawList(), timeX(pos), static_cast<int>(pos.y()) + scrollY_,
                 2.0);
}

std::optional<BubbleItem> TimelineWidget::bubbleAt(QPointF pos) {
  if (!trace_ || pos.x() < layout_.metrics.labelWidth || pos.y() < layout_.metrics.rulerHeight)
    return std::nullopt;
  const int row = layout_.rowAt(static_cast<int>(pos.y()) + scrollY_);
  const double x = timeX(pos);
  for (const auto& b : drawList().bubbles) {
    if (b.row == row && x >= b.x0 && x < b.x1) return b;
  }
  return std::nullopt;
}

void TimelineWidget::updateHover(QPointF pos, QPoint globalPos) {
  const auto hit = hitAt(pos);
  const std::optional<SpanRef> span = hit ? std::optional<SpanRef>(hit->span) : std::nullopt;
  if (span != hovered_) {
    hovered_ = span;
    update();
  }
  std::optional<uint32_t> outside;
  if (!hit && pos.x() >= layout_.metrics.labelWidth && pos.y() >= layout_.metrics.rulerHeight)
    outside =
        outsideHit(*trace_, *summary_, layout_, drawList(), timeX(pos), static_cast<int>(pos.y()) + scrollY_);
  if (hit) {
    QToolTip::showText(globalPos, tooltipHtml(*trace_, *hit), this);
  } else if (outside) {
    QToolTip::showText(globalPos, fieldsHtml(gpuRecordFields(*trace_, trace_->gpu[*outside])), this);
  } else if (auto bubble = bubbleAt(pos)) {
    const DrawList& list = drawList();
    const int64_t ns = list.mapping.toTime(bubble->x1) - list.mapping.toTime(bubble->x0);
    const auto& row = layout_.rows[static_cast<size_t>(bubble->row)];
    const storage::RankInfo* rank = trace_->rank(row.rank);
    const bool clipped = bubble->x0 <= 0 || bubble->x1 >= list.mapping.width;
    QToolTip::showText(globalPos,
                       tr("<b>bubble</b>: %1 idle on stage %2%3")
                           .arg(QString::fromStdString(formatDuration(ns)))
                           .arg(rank ? rank->stage : 0)
                           .arg(clipped ? tr(" in view (it goes on beyond)") : QString()),
                       this);
  } else {
    QToolTip::hideText();
  }
}

}  // namespace moescope::ui
