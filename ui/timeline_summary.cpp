#include "ui/timeline_summary.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <string_view>

#include "ui/span_access.h"

namespace moescope::ui {
namespace {

using storage::Category;
using storage::Phase;

// Lanes beyond this many share the last one: a deeper nest is rare enough that its spans may overlap
// there, and a row 64 lanes tall already fills the screen.
constexpr int kMaxLanes = 64;

uint8_t toShare(double part, double whole) {
  if (whole <= 0) return 0;
  return static_cast<uint8_t>(std::clamp(std::lround(255.0 * part / whole), 0L, 255L));
}

// Sums one bucket's time while the spans of a lane are swept in start order (a lane's spans never
// overlap, so they are also in end order and one bucket is open at a time).
struct BucketSum {
  std::array<int64_t, storage::kCategoryCount> category{};
  int64_t forward = 0, backward = 0, optimizer = 0;

  void add(Category c, Phase p, int64_t ns) {
    const auto i = static_cast<size_t>(c);
    if (i < category.size()) category[i] += ns;
    if (p == Phase::Forward)
      forward += ns;
    else if (shadedAsBackward(p))
      backward += ns;
    else if (p == Phase::Optimizer)
      optimizer += ns;
  }

  OverviewBucket finish(int64_t width) const {
    OverviewBucket b;
    int64_t busy = 0;
    std::array<uint8_t, storage::kCategoryCount> order{};
    for (size_t i = 0; i < order.size(); ++i) {
      order[i] = static_cast<uint8_t>(i);
      busy += category[i];
    }
    std::partial_sort(order.begin(), order.begin() + kBucketCategories, order.end(),
                      [&](uint8_t a, uint8_t c) { return category[a] > category[c]; });
    const auto w = static_cast<double>(width);
    for (int k = 0; k < kBucketCategories; ++k) {
      const uint8_t c = order[static_cast<size_t>(k)];
      if (category[c] == 0) break;
      b.category[k] = c;
      b.share[k] = toShare(static_cast<double>(category[c]), w);
    }
    b.busy = toShare(static_cast<double>(busy), w);
    b.forward = toShare(static_cast<double>(forward), w);
    b.backward = toShare(static_cast<double>(backward), w);
    b.optimizer = toShare(static_cast<double>(optimizer), w);
    return b;
  }
};

// The overview of a lane whose spans (indices into c, by start) do not overlap.
template <typename IndexOf>
LaneOverview overviewOf(const storage::SpanColumns& c, size_t n, IndexOf indexOf, const SummaryOptions& o) {
  LaneOverview ov;
  if (n < o.overviewFromSpans || n == 0) return ov;
  const int64_t first = c.start[indexOf(0)];
  int64_t last = first;
  for (size_t k = n; k-- > 0 && k + 64 >= n;) last = std::max(last, c.endAt(indexOf(k)));
  last = std::max(last, c.endAt(indexOf(n - 1)));
  const double perSpan = static_cast<double>(std::max<int64_t>(last - first, 1)) / static_cast<double>(n);
  const double wanted = std::max(1.0, perSpan * o.spansPerBucket);
  ov.shift = std::clamp(static_cast<int>(std::ceil(std::log2(wanted))), 0, 40);
  ov.origin = first;
  const int64_t width = ov.width();
  const auto count = static_cast<size_t>((last - first) / width + 1);
  ov.buckets.reserve(count);
  BucketSum sum;
  size_t cur = 0;
  auto bucketEnd = [&](size_t b) { return ov.origin + static_cast<int64_t>(b + 1) * width; };
  auto close = [&] {
    ov.buckets.push_back(sum.finish(width));
    sum = {};
    ++cur;
  };
  for (size_t k = 0; k < n; ++k) {
    const uint32_t i = indexOf(k);
    int64_t s = c.start[i];
    const int64_t e = c.endAt(i);
    // Buckets before this span: closed (empty ones as they are).
    while (cur < count && s >= bucketEnd(cur)) close();
    while (s < e && cur < count) {
      const int64_t be = bucketEnd(cur);
      const int64_t piece = std::min(e, be) - s;
      sum.add(c.category[i], c.phase[i], piece);
      if (e >= be) {
        close();
        s = be;
      } else {
        s = e;
      }
    }
  }
  while (cur < count) close();
  return ov;
}

StreamRole roleOf(int64_t nccl, int64_t kernels, int64_t copies) {
  if (nccl + kernels == 0) return copies > 0 ? StreamRole::Copy : StreamRole::None;
  if (kernels * 20 <= nccl) return StreamRole::Nccl;
  if (nccl * 20 <= kernels) return StreamRole::Compute;
  return StreamRole::ComputeNccl;
}

bool isNcclKernel(std::string_view name) {
  return name.substr(0, 4) == "nccl";
}

}  // namespace

const char* streamRoleName(StreamRole role) {
  switch (role) {
    case StreamRole::Compute:
      return "compute";
    case StreamRole::Nccl:
      return "NCCL";
    case StreamRole::ComputeNccl:
      return "compute + NCCL";
    case StreamRole::Copy:
      return "copy";
    case StreamRole::None:
      break;
  }
  return "";
}

int64_t DeviceBusy::busyIn(int64_t a, int64_t b) const {
  if (b <= a || start.empty()) return 0;
  // First interval ending after a, first starting at or after b.
  const auto i = static_cast<size_t>(std::upper_bound(end.begin(), end.end(), a) - end.begin());
  const auto j = static_cast<size_t>(std::lower_bound(start.begin(), start.end(), b) - start.begin());
  if (i >= j) return 0;
  int64_t busy = before[j - 1] + (end[j - 1] - start[j - 1]) - before[i];
  busy -= std::max<int64_t>(0, a - start[i]);
  busy -= std::max<int64_t>(0, end[j - 1] - b);
  return std::max<int64_t>(busy, 0);
}

std::vector<uint8_t> packLanes(const storage::SpanColumns& c, int* laneCount) {
  const size_t n = c.size();
  std::vector<uint8_t> lane(n, 0);
  std::vector<int64_t> laneEnd;
  // Spans starting together: the longest first, so that it takes the upper lane (the columns sort
  // equal starts by end, shortest first).
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && c.start[j] == c.start[i]) ++j;
    for (size_t k = j; k-- > i;) {
      const int64_t s = c.start[k];
      size_t l = 0;
      while (l < laneEnd.size() && laneEnd[l] > s) ++l;
      if (l >= static_cast<size_t>(kMaxLanes)) l = kMaxLanes - 1;
      if (l == laneEnd.size()) laneEnd.push_back(INT64_MIN);
      laneEnd[l] = std::max(laneEnd[l], c.endAt(k));
      lane[k] = static_cast<uint8_t>(l);
    }
    i = j;
  }
  if (laneCount) *laneCount = std::max<int>(1, static_cast<int>(laneEnd.size()));
  return lane;
}

size_t TimelineSummary::residentBytes() const {
  size_t n = sizeof(*this) + tracks.capacity() * sizeof(TrackSummary);
  for (const auto& t : tracks) {
    for (const auto& l : t.lanes) n += l.capacity() * sizeof(uint32_t) + sizeof(l);
    n += t.laneOf.capacity() + t.unlinked.capacity() * sizeof(uint32_t);
    for (const auto& o : t.overview) n += o.buckets.capacity() * sizeof(OverviewBucket) + sizeof(o);
  }
  for (const auto& d : devices) n += (d.start.capacity() + d.end.capacity() + d.before.capacity()) * 8;
  return n;
}

TimelineSummary summarizeTrace(const storage::Trace& trace, const SummaryOptions& options) {
  TimelineSummary s;
  s.tracks.resize(std::max(trace.tracks.size(), trace.spans.size()));
  for (size_t t = 0; t < trace.spans.size(); ++t) {
    const storage::SpanColumns& c = trace.spans[t];
    TrackSummary& ts = s.tracks[t];
    int lanes = 1;
    std::vector<uint8_t> laneOf = packLanes(c, &lanes);
    if (lanes == 1) {
      ts.overview.push_back(overviewOf(
          c, c.size(), [](size_t k) { return static_cast<uint32_t>(k); }, options));
      if (ts.overview.back().empty()) ts.overview.clear();
      continue;
    }
    ts.lanes.resize(static_cast<size_t>(lanes));
    for (size_t i = 0; i < c.size(); ++i) ts.lanes[laneOf[i]].push_back(static_cast<uint32_t>(i));
    ts.laneOf = std::move(laneOf);
    bool any = false;
    for (const auto& lane : ts.lanes) {
      ts.overview.push_back(overviewOf(
          c, lane.size(), [&lane](size_t k) { return lane[k]; }, options));
      any = any || !ts.overview.back().empty();
    }
    if (!any) ts.overview.clear();
  }

  // GPU records: stream roles (by count), records no span launched, each device's busy intervals.
  struct StreamTime {
    int64_t nccl = 0, kernel = 0, copy = 0;
  };
  std::vector<StreamTime> time(s.tracks.size());
  std::vector<std::vector<std::pair<int64_t, int64_t>>> byDevice;
  std::vector<int32_t> rankOfDevice;
  TimeRange extent = spanExtent(trace);
  bool haveExtent = extent.duration() > 0 || trace.spanCount() > 0;
  for (size_t i = 0; i < trace.gpu.size(); ++i) {
    const storage::GpuActivityRecord& g = trace.gpu[i];
    if (g.track < 0 || static_cast<size_t>(g.track) >= trace.tracks.size() || g.end < g.start) continue;
    const storage::TrackInfo& info = trace.tracks[static_cast<size_t>(g.track)];
    if (info.kind != storage::TrackKind::GpuStream) continue;
    StreamTime& st = time[static_cast<size_t>(g.track)];
    if (g.kind != storage::GpuActivityKind::Kernel)
      ++st.copy;
    else if (isNcclKernel(trace.name(g.name)))
      ++st.nccl;
    else
      ++st.kernel;
    if (!trace.linkedSpan(g.span)) {
      s.tracks[static_cast<size_t>(g.track)].unlinked.push_back(static_cast<uint32_t>(i));
      extent = haveExtent ? TimeRange{std::min(extent.start, g.start), std::max(extent.end, g.end)}
                          : TimeRange{g.start, g.end};
      haveExtent = true;
    }
    if (g.device >= 0 && g.device < (1 << 16)) {
      const auto dev = static_cast<size_t>(g.device);
      if (dev >= byDevice.size()) {
        byDevice.resize(dev + 1);
        rankOfDevice.resize(dev + 1, storage::kNone);
      }
      byDevice[dev].emplace_back(g.start, g.end);
      if (rankOfDevice[dev] == storage::kNone) rankOfDevice[dev] = info.rank;
    }
  }
  for (size_t t = 0; t < s.tracks.size() && t < trace.tracks.size(); ++t) {
    if (trace.tracks[t].kind == storage::TrackKind::GpuStream)
      s.tracks[t].role = roleOf(time[t].nccl, time[t].kernel, time[t].copy);
  }
  for (size_t dev = 0; dev < byDevice.size(); ++dev) {
    auto& iv = byDevice[dev];
    if (iv.empty()) continue;
    std::sort(iv.begin(), iv.end());
    DeviceBusy busy;
    busy.device = static_cast<int32_t>(dev);
    busy.rank = rankOfDevice[dev];
    for (const auto& [a, b] : iv) {
      if (!busy.end.empty() && a <= busy.end.back()) {
        busy.end.back() = std::max(busy.end.back(), b);
      } else {
        busy.start.push_back(a);
        busy.end.push_back(b);
      }
    }
    busy.before.resize(busy.start.size());
    int64_t sum = 0;
    for (size_t k = 0; k < busy.start.size(); ++k) {
      busy.before[k] = sum;
      sum += busy.end[k] - busy.start[k];
    }
    s.devices.push_back(std::move(busy));
  }
  s.extent = haveExtent ? extent : timelineExtent(trace);
  if (s.extent.duration() <= 0) s.extent = timelineExtent(trace);
  return s;
}

}  // namespace moescope::ui
