#include "ui/draw_list.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "ui/span_access.h"

namespace moescope::ui {
namespace {

using storage::Category;
using storage::Phase;

// x of a time, as TimeMapping::toX but with one multiplication: the per-span paths call it a million
// times a frame.
struct Scale {
  int64_t t0 = 0;
  double pxPerNs = 0;
  explicit Scale(const TimeMapping& m) : t0(m.range.start), pxPerNs(1.0 / m.nsPerPixel()) {}
  double x(int64_t t) const { return static_cast<double>(t - t0) * pxPerNs; }
};

float clipX(double x, double width) {
  return static_cast<float>(std::clamp(x, -2.0, width + 2.0));
}

// Emits the parts of the idle interval [a, b) that lie inside a step window and in view.
void addBubble(std::vector<BubbleItem>& out, const std::vector<TimeRange>& windows, const TimeMapping& m,
               int row, int64_t a, int64_t b, double minPx) {
  a = std::max(a, m.range.start);
  b = std::min(b, m.range.end);
  if (b <= a) return;
  auto it = std::upper_bound(windows.begin(), windows.end(), a,
                             [](int64_t t, const TimeRange& w) { return t < w.end; });
  for (; it != windows.end() && it->start < b; ++it) {
    const double x0 = m.toX(std::max(a, it->start)), x1 = m.toX(std::min(b, it->end));
    if (x1 - x0 < minPx) continue;
    const float fx0 = clipX(x0, m.width), fx1 = clipX(x1, m.width);
    if (!out.empty() && out.back().row == row && fx0 - out.back().x1 < 0.5f) {
      out.back().x1 = fx1;  // touches the previous one
    } else {
      out.push_back({fx0, fx1, row});
    }
  }
}

// Time per category and phase in each pixel column [x0, x1), summed from spans or buckets, then turned
// into PixelShares. Slots are fractions of a pixel's time.
class PixelSums {
 public:
  static constexpr size_t kOther = storage::kCategoryCount;      // busy time of no known category
  static constexpr size_t kSlots = storage::kCategoryCount + 4;  // + other, forward, backward, optimizer

  void reset(int x0, int x1) {
    x0_ = x0;
    x1_ = std::max(x0, x1);
    slots_.assign(static_cast<size_t>(x1_ - x0_), {});
  }
  int x0() const { return x0_; }
  int x1() const { return x1_; }

  // Adds [xa, xb) (pixels) of a span of category c and phase p.
  void addSpan(double xa, double xb, size_t c, Phase p) {
    xa = std::max(xa, static_cast<double>(x0_));
    xb = std::min(xb, static_cast<double>(x1_));
    const int first = static_cast<int>(xa);  // xa >= x0_ >= 0: the cast floors
    if (xb <= first + 1.0) {
      // Within one pixel, as most folded spans are.
      if (xb <= xa || first >= x1_) return;
      auto& s = slots_[static_cast<size_t>(first - x0_)];
      s[c < storage::kCategoryCount ? c : kOther] += static_cast<float>(xb - xa);
      addPhase(s, p, static_cast<float>(xb - xa));
      return;
    }
    for (int px = first; px < x1_ && px < xb; ++px) {
      const double part = std::min(xb, px + 1.0) - std::max(xa, static_cast<double>(px));
      if (part <= 0) continue;
      auto& s = slots_[static_cast<size_t>(px - x0_)];
      s[c < storage::kCategoryCount ? c : kOther] += static_cast<float>(part);
      addPhase(s, p, static_cast<float>(part));
    }
  }

  // Appends the columns [from, to) to out.
  void emit(int from, int to, std::vector<PixelShare>& out) const {
    for (int px = from; px < to; ++px) out.push_back(finish(slots_[static_cast<size_t>(px - x0_)]));
  }

  using Slots = std::array<float, kSlots>;
  // A pixel's PixelShare from its slots (fractions of the pixel's time).
  static PixelShare finish(const Slots& s) {
    PixelShare p;
    float busy = s[kOther];
    for (size_t c = 0; c < storage::kCategoryCount; ++c) {
      busy += s[c];
      p.share[c] = quantize(s[c]);
    }
    p.busy = quantize(busy);
    p.forward = quantize(s[kSlots - 3]);
    p.backward = quantize(s[kSlots - 2]);
    p.optimizer = quantize(s[kSlots - 1]);
    return p;
  }

  // Adds a bucket's shares weighted by part to a pixel's slots.
  static void addBucketTo(Slots& s, const OverviewBucket& b, float part,
                          const std::bitset<storage::kCategoryCount>& hidden) {
    float known = 0;
    for (int k = 0; k < kBucketCategories; ++k) {
      const uint8_t c = b.category[k];
      if (c >= storage::kCategoryCount) continue;
      const float v = part * static_cast<float>(b.share[k]) * (1.f / 255.f);
      known += v;
      if (!hidden[c]) s[c] += v;
    }
    s[kOther] += std::max(0.f, part * static_cast<float>(b.busy) * (1.f / 255.f) - known);
    s[kSlots - 3] += part * static_cast<float>(b.forward) * (1.f / 255.f);
    s[kSlots - 2] += part * static_cast<float>(b.backward) * (1.f / 255.f);
    s[kSlots - 1] += part * static_cast<float>(b.optimizer) * (1.f / 255.f);
  }

 private:
  // Rounded to the nearest of 0..255 without lround (a call into libm: 18 a pixel).
  static uint8_t quantize(float v) { return static_cast<uint8_t>(std::clamp(v * 255.f + 0.5f, 0.f, 255.f)); }
  static void addPhase(std::array<float, kSlots>& s, Phase p, float part) {
    if (p == Phase::Forward)
      s[kSlots - 3] += part;
    else if (shadedAsBackward(p))
      s[kSlots - 2] += part;
    else if (p == Phase::Optimizer)
      s[kSlots - 1] += part;
  }

  int x0_ = 0, x1_ = 0;
  std::vector<std::array<float, kSlots>> slots_;
};

// The pixel columns [x0, x1) summed from the buckets of ov (each pixel: the buckets it overlaps, by
// overlap), appended to out.pixels; pixel by pixel, so that no per-row table is filled and cleared.
void bucketColumns(const LaneOverview& ov, const TimeMapping& m, int x0, int x1, const DrawOptions& o,
                   std::vector<PixelShare>& into, DrawStats& stats) {
  // Pixels and buckets both advance left to right: one walk over each, no division per pixel.
  const double nsPerPx = m.nsPerPixel(), pxPerNs = 1.0 / nsPerPx;
  const auto w = static_cast<double>(ov.width());
  const auto nb = static_cast<int64_t>(ov.buckets.size());
  const double origin = static_cast<double>(ov.origin);
  double ta = static_cast<double>(m.range.start) + x0 * nsPerPx;
  int64_t b = std::max<int64_t>(static_cast<int64_t>(std::floor((ta - origin) / w)), 0);
  for (int px = x0; px < x1; ++px) {
    const double tb = static_cast<double>(m.range.start) + (px + 1) * nsPerPx;
    while (b < nb && origin + static_cast<double>(b + 1) * w <= ta) ++b;
    PixelSums::Slots slots{};
    for (int64_t k = b; k < nb; ++k) {
      const double bs = origin + static_cast<double>(k) * w;
      if (bs >= tb) break;
      const double part = (std::min(tb, bs + w) - std::max(ta, bs)) * pxPerNs;
      if (part <= 0) continue;
      PixelSums::addBucketTo(slots, ov.buckets[static_cast<size_t>(k)], static_cast<float>(part), o.hidden);
      ++stats.bucketsRead;
    }
    into.push_back(PixelSums::finish(slots));
    ta = tb;
  }
}

// Each overview's columns over the whole width, summed once a frame: a rank's header and its track's
// folded runs read the same buckets, and summing them once halves the frame at mid zooms.
class ColumnCache {
 public:
  ColumnCache(const TimeMapping& m, const DrawOptions& o)
      : m_(m), o_(o), w_(static_cast<int>(std::ceil(m.width))) {}
  // Appends the columns [x0, x1) of ov to out.pixels.
  void append(const LaneOverview& ov, int x0, int x1, DrawList& out) {
    auto it = columns_.find(&ov);
    if (it == columns_.end()) {
      it = columns_.emplace(&ov, std::vector<PixelShare>()).first;
      it->second.reserve(static_cast<size_t>(w_));
      bucketColumns(ov, m_, 0, w_, o_, it->second, out.stats);
    }
    x0 = std::clamp(x0, 0, w_);
    x1 = std::clamp(x1, x0, w_);
    out.pixels.insert(out.pixels.end(), it->second.begin() + x0, it->second.begin() + x1);
  }

 private:
  const TimeMapping& m_;
  const DrawOptions& o_;
  int w_;
  std::unordered_map<const LaneOverview*, std::vector<PixelShare>> columns_;
};

// Marks the columns [first, end) of out whose pixel centre lies inside a step window.
void markSteps(std::vector<PixelShare>& out, size_t first, int x0, const std::vector<TimeRange>& windows,
               const TimeMapping& m) {
  const double nsPerPx = m.nsPerPixel();
  auto it = windows.begin();
  for (size_t k = first; k < out.size(); ++k) {
    const auto t = static_cast<int64_t>(static_cast<double>(m.range.start) +
                                        (x0 + static_cast<double>(k - first) + 0.5) * nsPerPx);
    while (it != windows.end() && it->end <= t) ++it;
    out[k].inStep = it != windows.end() && it->start <= t;
  }
}

// Makes a density item of the columns out.pixels[begin, end) (pixels x0 on), trimmed of empty columns at
// both ends.
void finishItem(DrawList& out, size_t begin, int x0, int row, int32_t track, int lane, DensityKind kind,
                const std::vector<TimeRange>* windows) {
  size_t first = begin;
  while (first < out.pixels.size() && out.pixels[first].busy == 0) ++first;
  while (out.pixels.size() > first && out.pixels.back().busy == 0) out.pixels.pop_back();
  if (first == out.pixels.size()) {
    out.pixels.resize(begin);
    return;
  }
  if (first > begin) {
    out.pixels.erase(out.pixels.begin() + static_cast<std::ptrdiff_t>(begin),
                     out.pixels.begin() + static_cast<std::ptrdiff_t>(first));
    x0 += static_cast<int>(first - begin);
  }
  DensityItem d;
  d.row = row;
  d.track = track;
  d.lane = static_cast<uint8_t>(lane);
  d.kind = kind;
  d.x0 = x0;
  d.begin = static_cast<uint32_t>(begin);
  d.end = static_cast<uint32_t>(out.pixels.size());
  if (windows) markSteps(out.pixels, d.begin, x0, *windows, out.mapping);
  out.density.push_back(d);
}

struct LaneContext {
  ColumnCache* columns = nullptr;
  LaneView lane;
  const LaneOverview* overview = nullptr;  // may be null
  int row = 0, laneIndex = 0;
  int32_t track = 0;
  const std::vector<TimeRange>* windows = nullptr;  // bubbles looked for inside these; null: none
};

// The pixel columns covering the time [a, b) (clipped to the view), whole pixels.
std::pair<int, int> pixelSpan(const TimeMapping& m, int64_t a, int64_t b) {
  const double xa = std::max(m.toX(a), 0.0), xb = std::min(m.toX(b), m.width);
  return {static_cast<int>(std::floor(xa)),
          std::max(static_cast<int>(std::ceil(xb)), static_cast<int>(std::floor(xa)) + 1)};
}

// Zoomed out: every column of the lane from its overview.
void buildLaneFromOverview(const LaneContext& ctx, const TimeMapping& m, DrawList& out) {
  const LaneOverview& ov = *ctx.overview;
  const int64_t ovEnd = ov.origin + static_cast<int64_t>(ov.buckets.size()) * ov.width();
  if (ovEnd <= m.range.start || ov.origin >= m.range.end) return;
  const auto [a, b] = pixelSpan(m, ov.origin, ovEnd);
  const int w = static_cast<int>(std::ceil(m.width));
  const int x0 = std::max(a, 0), x1 = std::min(b, w);
  const size_t begin = out.pixels.size();
  ctx.columns->append(ov, x0, x1, out);
  finishItem(out, begin, x0, ctx.row, ctx.track, ctx.laneIndex, DensityKind::Categories, ctx.windows);
}

// A folded run [i, k) of the lane, ending at foldEnd: its pixel columns, summed from its spans when
// they are few per pixel, else from the overview.
void foldRun(const LaneContext& ctx, size_t i, size_t k, int64_t foldEnd, const TimeMapping& m,
             const DrawOptions& o, PixelSums& sums, DrawList& out) {
  const LaneView& lane = ctx.lane;
  const int w = static_cast<int>(std::ceil(m.width));
  auto [x0, x1] = pixelSpan(m, lane.start(i), foldEnd);
  x0 = std::max(x0, 0);
  x1 = std::min(x1, w);
  if (x1 <= x0) return;
  const size_t begin = out.pixels.size();
  const double perPixel = static_cast<double>(k - i) / (x1 - x0);
  if (ctx.overview && perPixel > o.maxSpansPerPixelWalk) {
    ctx.columns->append(*ctx.overview, x0, x1, out);
  } else {
    sums.reset(x0, x1);
    const Scale scale(m);
    for (size_t q = i; q < k; ++q) {
      const uint32_t idx = lane.at(q);
      const auto cat = static_cast<size_t>(lane.c->category[idx]);
      if (cat < storage::kCategoryCount && o.hidden.test(cat)) continue;
      // A span narrower than a pixel still shows: at least a pixel's worth (of its own pixel).
      double xa = scale.x(lane.c->start[idx]), xb = scale.x(lane.c->endAt(idx));
      if (xb - xa < 1.0 && k - i == 1) xb = xa + 1.0;
      sums.addSpan(xa, xb, cat, lane.c->phase[idx]);
    }
    out.stats.spansVisited += k - i - 1;  // the walk counted the first
    sums.emit(x0, x1, out.pixels);
  }
  finishItem(out, begin, x0, ctx.row, ctx.track, ctx.laneIndex, DensityKind::Categories, ctx.windows);
}

// Zoomed in: boxes for spans at least minSpanPx wide, folded runs of narrower ones, bubbles.
void buildLaneFromSpans(const LaneContext& ctx, const TimeMapping& m, const DrawOptions& o, PixelSums& sums,
                        DrawList& out) {
  const LaneView& lane = ctx.lane;
  const int64_t t0 = m.range.start, t1 = m.range.end;
  const double nsPerPx = m.nsPerPixel();
  const auto minNs = static_cast<int64_t>(std::ceil(o.minSpanPx * nsPerPx));
  const size_t n = lane.n;
  size_t i = lane.firstEndingAfter(t0);
  const size_t j = lane.lowerBound(t1, i, n);
  out.stats.searches += 2;
  const bool bubbles = ctx.windows != nullptr && o.bubbles;
  const storage::SpanColumns& c = *lane.c;

  // Bubbles: the time up to which the track is covered by a span other than wait.
  int64_t covered = INT64_MIN;
  if (bubbles) {
    size_t p = i;
    while (p > 0 && c.category[lane.at(p - 1)] == Category::Wait) --p;
    covered = p > 0 ? lane.end(p - 1) : INT64_MIN;
  }
  auto cover = [&](int64_t start, int64_t end) {
    if (!bubbles) return;
    if (start > covered) addBubble(out.bubbles, *ctx.windows, m, ctx.row, covered, start, o.minBubblePx);
    covered = std::max(covered, end);
  };

  while (i < j) {
    ++out.stats.spansVisited;
    const uint32_t idx = lane.at(i);
    const int64_t s = c.start[idx], e = c.endAt(idx);
    const Category cat = c.category[idx];
    if (e - s >= minNs) {
      if (cat != Category::Wait) cover(s, e);
      if (e > t0 && !o.hidden.test(static_cast<size_t>(cat) % storage::kCategoryCount)) {
        DrawItem item;
        item.x0 = clipX(m.toX(s), m.width);
        item.x1 = clipX(m.toX(e), m.width);
        item.row = ctx.row;
        item.track = ctx.track;
        item.first = idx;
        item.category = cat;
        item.phase = c.phase[idx];
        item.lane = static_cast<uint8_t>(ctx.laneIndex);
        item.microbatch = c.microbatch[idx];
        out.items.push_back(item);
      }
      ++i;
      continue;
    }
    // A narrow span: fold it with the narrow spans that follow closely, up to the view's right edge
    // (past it, nothing is drawn, and a gapless track would be walked to its end).
    int64_t foldEnd = e;
    size_t k = i + 1;
    while (k < n && foldEnd < t1) {
      size_t k2 = lane.gallop(foldEnd + minNs, k, n);
      ++out.stats.searches;
      if (k2 > k && lane.end(k2 - 1) - lane.start(k2 - 1) >= minNs) --k2;  // a wide span ends the block
      if (k2 == k) break;
      foldEnd = std::max(foldEnd, lane.end(k2 - 1));
      k = k2;
    }
    if (cat != Category::Wait || k - i > 1) cover(s, foldEnd);
    if (foldEnd > t0) foldRun(ctx, i, k, foldEnd, m, o, sums, out);
    i = k;
  }
  if (bubbles) {
    const int64_t next = j < n ? lane.start(j) : INT64_MAX;
    if (next > covered) addBubble(out.bubbles, *ctx.windows, m, ctx.row, covered, next, o.minBubblePx);
  }
}

// Returns whether the lane was drawn from its overview (every column from the buckets).
bool buildLane(const LaneContext& ctx, const TimeMapping& m, const DrawOptions& o, PixelSums& sums,
               DrawList& out) {
  if (ctx.overview && !ctx.overview->empty() &&
      m.nsPerPixel() >= 2.0 * static_cast<double>(ctx.overview->width())) {
    buildLaneFromOverview(ctx, m, out);
    return true;
  }
  buildLaneFromSpans(ctx, m, o, sums, out);
  return false;
}

// A rank header: the stretches of its first track while at most maxPhaseWalk spans are in view, else
// the phases' share of each pixel: from the overview's buckets (a bucket may then be a few pixels wide:
// a summary row may be coarse, and walking every span of every rank a second time would double the
// frame), or from the spans of a track too small to have buckets.
// fromOverview: the density item of the track's first lane when this frame drew it from the overview;
// its columns hold the phases too, and are copied rather than summed again.
void buildPhaseRow(const storage::Trace& trace, const TimelineSummary& summary, int32_t track, int row,
                   const TimeMapping& m, const DrawOptions& o, PixelSums& sums, ColumnCache& columns,
                   DrawList& out, std::optional<DensityItem> fromOverview) {
  const storage::SpanColumns& c = trace.spans[static_cast<size_t>(track)];
  const int64_t t0 = m.range.start, t1 = m.range.end;
  const size_t n = c.size();
  const size_t i = firstSpanEndingAfter(c, t0);
  const size_t j = firstSpanStartingAt(c, t1, i, n);
  out.stats.searches += 2;
  if (j - i > o.maxPhaseWalk) {
    // The phases' share of each pixel: from the overview's buckets (a bucket may be a few pixels wide:
    // a summary row may be coarse, and walking every span of every rank a second time would double
    // the frame), or from the spans of a track too small to have buckets.
    const TrackSummary* ts = summary.track(track);
    const LaneOverview* ov = ts && !ts->overview.empty() ? &ts->overview.front() : nullptr;
    const int w = static_cast<int>(std::ceil(m.width));
    const size_t begin = out.pixels.size();
    if (fromOverview) {
      DensityItem d = *fromOverview;
      d.row = row;
      d.track = -1;
      d.kind = DensityKind::Phases;
      d.begin = static_cast<uint32_t>(begin);
      out.pixels.insert(out.pixels.end(), out.pixels.begin() + fromOverview->begin,
                        out.pixels.begin() + fromOverview->end);
      d.end = static_cast<uint32_t>(out.pixels.size());
      out.density.push_back(d);
      return;
    }
    if (ov) {
      columns.append(*ov, 0, w, out);
    } else {
      const LaneView lane = laneView(trace, summary, track, 0);
      const Scale scale(m);
      sums.reset(0, w);
      const size_t a = lane.firstEndingAfter(t0), b = lane.lowerBound(t1, a, lane.n);
      for (size_t k = a; k < b; ++k) {
        const uint32_t idx = lane.at(k);
        sums.addSpan(scale.x(c.start[idx]), scale.x(c.endAt(idx)), static_cast<size_t>(c.category[idx]),
                     c.phase[idx]);
      }
      out.stats.spansVisited += b - a;
      sums.emit(0, w, out.pixels);
    }
    finishItem(out, begin, 0, row, -1, 0, DensityKind::Phases, nullptr);
    return;
  }
  bool open = false;
  int64_t curStart = 0, curEnd = 0;
  int32_t curStep = 0;
  PhaseItem cur;
  cur.row = row;
  auto close = [&] {
    if (open && curEnd > t0) {
      PhaseItem item = cur;
      const double x0 = m.toX(curStart), x1 = std::max(m.toX(curEnd), x0 + 1.0);
      item.x0 = clipX(x0, m.width);
      item.x1 = clipX(x1, m.width);
      out.phases.push_back(item);
    }
    open = false;
  };
  for (size_t k = i; k < j; ++k) {
    ++out.stats.spansVisited;
    const storage::Phase phase = c.phase[k];
    // Waits inside a stretch (for a tensor-parallel peer, say) leave it whole; a stretch starts and
    // ends with work, so the waits before and after it (the pipeline's bubbles) stay outside.
    if (c.category[k] == Category::Wait) continue;
    if (phase == storage::Phase::None) {
      close();
      continue;
    }
    const int64_t s = c.start[k], e = c.endAt(k);
    if (open && phase == cur.phase && c.microbatch[k] == cur.microbatch && c.chunk[k] == cur.chunk &&
        c.stepAt(k) == curStep) {
      curEnd = std::max(curEnd, e);
      continue;
    }
    close();
    open = true;
    curStart = s;
    curEnd = e;
    curStep = c.stepAt(k);
    cur.phase = phase;
    cur.microbatch = c.microbatch[k];
    cur.chunk = c.chunk[k];
  }
  close();
}

// A GPU's utilisation: its busy share per pixel, from the merged intervals' prefix sums.
void buildUtilisationRow(const DeviceBusy& busy, int row, const TimeMapping& m, DrawList& out) {
  const int w = static_cast<int>(std::ceil(m.width));
  const double nsPerPx = m.nsPerPixel();
  DensityItem d;
  d.row = row;
  d.kind = DensityKind::Utilisation;
  d.x0 = 0;
  d.begin = static_cast<uint32_t>(out.pixels.size());
  for (int px = 0; px < w; ++px) {
    const auto a = static_cast<int64_t>(std::floor(static_cast<double>(m.range.start) + px * nsPerPx));
    const auto b = static_cast<int64_t>(std::floor(static_cast<double>(m.range.start) + (px + 1) * nsPerPx));
    PixelShare p;
    const double share = b > a ? static_cast<double>(busy.busyIn(a, b)) / static_cast<double>(b - a) : 0.0;
    p.busy = static_cast<uint8_t>(std::clamp(std::lround(share * 255), 0L, 255L));
    // A kernel narrower than a pixel still shows.
    if (p.busy == 0 && busy.busyIn(a, b) > 0) p.busy = 1;
    out.pixels.push_back(p);
  }
  d.end = static_cast<uint32_t>(out.pixels.size());
  out.density.push_back(d);
}

// GPU records no span launched, merged where they are closer than a pixel.
void buildOutsideRow(const storage::Trace& trace, const TrackSummary& ts, int32_t track, int row,
                     const TimeMapping& m, DrawList& out) {
  const auto& u = ts.unlinked;
  if (u.empty()) return;
  auto startOf = [&](uint32_t k) { return trace.gpu[u[k]].start; };
  // Records of a stream do not overlap, so the first that may end after the view's start is at most
  // one before the first that starts after it.
  size_t k =
      static_cast<size_t>(std::lower_bound(u.begin(), u.end(), m.range.start,
                                           [&](uint32_t g, int64_t t) { return trace.gpu[g].start < t; }) -
                          u.begin());
  if (k > 0) --k;
  for (; k < u.size() && startOf(static_cast<uint32_t>(k)) < m.range.end; ++k) {
    const storage::GpuActivityRecord& g = trace.gpu[u[k]];
    if (g.end <= m.range.start) continue;
    const double x0 = m.toX(g.start), x1 = std::max(m.toX(g.end), x0 + 1.0);
    if (!out.outside.empty() && out.outside.back().row == row && x0 - out.outside.back().x1 < 1.0) {
      out.outside.back().x1 = clipX(x1, m.width);
      ++out.outside.back().count;
      continue;
    }
    out.outside.push_back({clipX(x0, m.width), clipX(x1, m.width), row, track, static_cast<uint32_t>(k), 1});
  }
}

}  // namespace

std::string phaseLabel(storage::Phase phase, int microbatch, int chunk) {
  if (phase == storage::Phase::Optimizer) return "opt";
  if (microbatch < 0) return {};
  std::string s(1, phase == storage::Phase::Backward         ? 'B'
                   : phase == storage::Phase::BackwardWeight ? 'W'
                                                             : 'F');
  s += std::to_string(microbatch);
  if (chunk >= 0) {
    s += '.';
    s += std::to_string(chunk);
  }
  return s;
}

size_t LaneView::lowerBound(int64_t t, size_t from, size_t to) const {
  if (!index)
    return static_cast<size_t>(std::lower_bound(c->start.begin() + static_cast<std::ptrdiff_t>(from),
                                                c->start.begin() + static_cast<std::ptrdiff_t>(to), t) -
                               c->start.begin());
  size_t lo = from, hi = to;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (start(mid) < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

size_t LaneView::gallop(int64_t t, size_t from, size_t to) const {
  size_t lo = from, step = 1;
  while (lo + step < to && start(lo + step) < t) {
    lo += step;
    step *= 2;
  }
  return lowerBound(t, lo, std::min(lo + step, to));
}

size_t LaneView::firstEndingAfter(int64_t t) const {
  return lowerBound(t - std::max<int64_t>(c->maxDuration, 0), 0, n);
}

LaneView laneView(const storage::Trace& trace, const TimelineSummary& summary, int32_t track, int lane) {
  LaneView v;
  if (track < 0 || static_cast<size_t>(track) >= trace.spans.size()) return v;
  v.c = &trace.spans[static_cast<size_t>(track)];
  const TrackSummary* ts = summary.track(track);
  if (ts && !ts->lanes.empty()) {
    if (lane < 0 || static_cast<size_t>(lane) >= ts->lanes.size()) return LaneView{v.c, nullptr, 0};
    const auto& idx = ts->lanes[static_cast<size_t>(lane)];
    v.index = idx.data();
    v.n = idx.size();
  } else {
    v.n = lane == 0 ? v.c->size() : 0;
  }
  return v;
}

std::span<const DrawItem> DrawList::itemsOfRow(int row) const {
  if (row < 0 || static_cast<size_t>(row) >= rowItems.size()) return {};
  const auto [b, e] = rowItems[static_cast<size_t>(row)];
  return std::span<const DrawItem>(items.data() + b, e - b);
}

std::vector<const DensityItem*> DrawList::densityOfRow(int row) const {
  std::vector<const DensityItem*> out;
  for (const auto& d : density)
    if (d.row == row) out.push_back(&d);
  return out;
}

std::bitset<storage::kCategoryCount> DrawList::categoriesShown() const {
  std::bitset<storage::kCategoryCount> shown;
  for (const auto& item : items) shown.set(static_cast<size_t>(item.category) % storage::kCategoryCount);
  for (const auto& d : density) {
    if (d.kind != DensityKind::Categories) continue;
    for (const PixelShare& p : columnsOf(d)) {
      for (size_t c = 0; c < storage::kCategoryCount; ++c) {
        if (p.share[c] > 0) shown.set(c);
      }
    }
  }
  return shown;
}

std::vector<TimeRange> bubbleWindows(const storage::Trace& trace) {
  std::vector<TimeRange> w;
  for (const auto& s : trace.steps) {
    if (s.end_ns > s.start_ns) w.push_back({s.start_ns, s.end_ns});
  }
  if (w.empty()) {
    const TimeRange r = spanExtent(trace);
    if (r.duration() > 0) w.push_back(r);
    return w;
  }
  std::sort(w.begin(), w.end(), [](const TimeRange& a, const TimeRange& b) { return a.start < b.start; });
  std::vector<TimeRange> merged;
  for (const auto& r : w) {
    if (!merged.empty() && r.start <= merged.back().end)
      merged.back().end = std::max(merged.back().end, r.end);
    else
      merged.push_back(r);
  }
  return merged;
}

DrawList buildDrawList(const storage::Trace& trace, const TimelineSummary& summary,
                       const TimelineLayout& layout, const TimeMapping& mapping, const DrawOptions& options) {
  DrawList list;
  list.mapping = mapping;
  list.rowItems.assign(layout.rows.size(), {0, 0});
  const std::vector<TimeRange> windows = options.bubbles ? bubbleWindows(trace) : std::vector<TimeRange>{};
  PixelSums sums;
  ColumnCache columns(mapping, options);
  // Each rank's first track (lowest order), for the header stretches.
  std::map<int32_t, const storage::TrackInfo*> firstTrack;
  for (const auto& t : trace.tracks) {
    if (t.kind == storage::TrackKind::Counter) continue;
    auto& f = firstTrack[t.rank];
    if (!f || std::tie(t.order, t.id) < std::tie(f->order, f->id)) f = &t;
  }
  const auto [r0, r1] = layout.rowsIn(options.yTop, options.yBottom);
  // At most a column per pixel of each row in view (two lanes or more are rare): grown once, not by
  // doubling through a few megabytes.
  list.pixels.reserve(static_cast<size_t>(std::max(r1 - r0, 0)) *
                      static_cast<size_t>(std::ceil(mapping.width) + 2));
  // Tracks first, then the rank headers, which reuse a track's columns drawn from its overview.
  std::map<int32_t, DensityItem> fromOverview;  // track -> its first lane's density item
  for (int r = r0; r < r1; ++r) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
    if (row.kind == TimelineRow::Kind::Utilisation) {
      for (const DeviceBusy& d : summary.devices) {
        if (d.device == row.device) buildUtilisationRow(d, r, mapping, list);
      }
    }
    const auto begin = static_cast<uint32_t>(list.items.size());
    if (row.kind == TimelineRow::Kind::Track && row.track >= 0 &&
        static_cast<size_t>(row.track) < trace.spans.size()) {
      ++list.stats.rows;
      const TrackSummary* ts = summary.track(row.track);
      // Bubbles are a stage sitting idle: on host tracks and compute streams, not on a stream of copies
      // or NCCL kernels, nor on one that ran nothing inside a span (start-up copies, a library's own).
      const auto& spans = trace.spans[static_cast<size_t>(row.track)];
      const bool stream = static_cast<size_t>(row.track) < trace.tracks.size() &&
                          trace.tracks[static_cast<size_t>(row.track)].kind == storage::TrackKind::GpuStream;
      const bool idleMeansBubble =
          options.bubbles &&
          !(stream && (spans.size() == 0 || row.role == StreamRole::Nccl || row.role == StreamRole::Copy));
      if (ts) buildOutsideRow(trace, *ts, row.track, r, mapping, list);
      for (int lane = 0; lane < row.lanes; ++lane) {
        LaneContext ctx;
        ctx.lane = laneView(trace, summary, row.track, lane);
        if (ctx.lane.n == 0) continue;
        ctx.overview = ts && static_cast<size_t>(lane) < ts->overview.size() &&
                               !ts->overview[static_cast<size_t>(lane)].empty()
                           ? &ts->overview[static_cast<size_t>(lane)]
                           : nullptr;
        ctx.columns = &columns;
        ctx.row = r;
        ctx.laneIndex = lane;
        ctx.track = row.track;
        ctx.windows = idleMeansBubble && lane == 0 ? &windows : nullptr;
        const size_t items = list.density.size();
        if (buildLane(ctx, mapping, options, sums, list) && lane == 0 && list.density.size() == items + 1 &&
            row.lanes == 1)
          fromOverview[row.track] = list.density.back();
      }
    }
    list.rowItems[static_cast<size_t>(r)] = {begin, static_cast<uint32_t>(list.items.size())};
  }
  for (int r = r0; r < r1; ++r) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
    if (row.kind != TimelineRow::Kind::Group) continue;
    auto it = firstTrack.find(row.rank);
    if (it == firstTrack.end() || static_cast<size_t>(it->second->id) >= trace.spans.size()) continue;
    const auto reuse = fromOverview.find(it->second->id);
    buildPhaseRow(trace, summary, it->second->id, r, mapping, options, sums, columns, list,
                  reuse == fromOverview.end() ? std::nullopt : std::optional<DensityItem>(reuse->second));
  }
  return list;
}

}  // namespace moescope::ui
