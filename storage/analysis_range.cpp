#include "storage/analysis_range.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

namespace moescope::storage {
namespace {

struct Sum {
  int64_t count = 0, total = 0, max = 0;
  void add(int64_t ns) {
    ++count;
    total += ns;
    max = std::max(max, ns);
  }
};

template <typename Key, typename LabelOf>
std::vector<RangeRow> table(const std::vector<std::pair<Key, Sum>>& sums, LabelOf labelOf) {
  std::vector<RangeRow> rows;
  int64_t all = 0;
  for (const auto& [key, s] : sums) all += s.total;
  for (const auto& [key, s] : sums) {
    if (s.count == 0) continue;
    RangeRow r;
    r.label = labelOf(key);
    r.count = s.count;
    r.total_ns = s.total;
    r.max_ns = s.max;
    r.mean_ns = static_cast<double>(s.total) / static_cast<double>(s.count);
    r.share = all > 0 ? static_cast<double>(s.total) / static_cast<double>(all) : 0.0;
    rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [](const RangeRow& a, const RangeRow& b) {
    return a.total_ns != b.total_ns ? a.total_ns > b.total_ns : a.label < b.label;
  });
  return rows;
}

bool isTrack(const Trace& trace, int32_t t, TrackKind kind) {
  return t >= 0 && static_cast<size_t>(t) < trace.tracks.size() &&
         static_cast<size_t>(t) < trace.spans.size() && trace.tracks[static_cast<size_t>(t)].kind == kind;
}

int64_t inside(int64_t s, int64_t e, int64_t t0, int64_t t1) {
  return std::max<int64_t>(0, std::min(e, t1) - std::max(s, t0));
}

}  // namespace

int64_t spansInRange(const Trace& trace, std::span<const int32_t> tracks, int64_t t0, int64_t t1) {
  int64_t n = 0;
  for (int32_t t : tracks) {
    if (!isTrack(trace, t, TrackKind::HostThread)) continue;
    const auto [a, b] = trace.spans[static_cast<size_t>(t)].window(t0, t1);
    n += static_cast<int64_t>(b - a);
  }
  return n;
}

RangeSummary summarizeRange(const Trace& trace, std::span<const int32_t> tracks, int64_t t0, int64_t t1) {
  RangeSummary out;
  out.t0 = t0;
  out.t1 = t1;
  if (t1 <= t0) return out;
  std::vector<std::pair<int, Sum>> hostCat(kCategoryCount), gpuCat(kCategoryCount);
  for (int c = 0; c < kCategoryCount; ++c)
    hostCat[static_cast<size_t>(c)].first = gpuCat[static_cast<size_t>(c)].first = c;
  std::unordered_map<uint32_t, Sum> names, kernels;
  std::vector<bool> streams(trace.tracks.size(), false);
  for (int32_t t : tracks) {
    if (isTrack(trace, t, TrackKind::GpuStream)) streams[static_cast<size_t>(t)] = true;
    if (!isTrack(trace, t, TrackKind::HostThread)) continue;
    const SpanColumns& c = trace.spans[static_cast<size_t>(t)];
    const auto [a, b] = c.window(t0, t1);
    for (size_t i = a; i < b; ++i) {
      const int64_t s = c.start[i], e = c.endAt(i);
      if (e <= t0 || s >= t1) continue;
      const int64_t ns = inside(s, e, t0, t1);
      const auto cat = static_cast<size_t>(c.category[i]);
      if (cat < hostCat.size()) hostCat[cat].second.add(ns);
      names[c.name[i]].add(ns);
      ++out.hostSpans;
    }
  }
  // GPU records: every record of a chosen stream, with a launching span or not.
  for (const GpuActivityRecord& g : trace.gpu) {
    if (g.track < 0 || static_cast<size_t>(g.track) >= streams.size() ||
        !streams[static_cast<size_t>(g.track)])
      continue;
    if (g.end <= t0 || g.start >= t1) continue;
    const int64_t ns = inside(g.start, g.end, t0, t1);
    kernels[g.name].add(ns);
    if (const LinkedSpan* l = trace.linkedSpan(g.span)) {
      const auto cat = static_cast<size_t>(l->span.category);
      if (cat < gpuCat.size()) gpuCat[cat].second.add(ns);
    }
    ++out.gpuRecords;
  }
  auto categoryLabel = [](int c) { return std::string(categoryName(static_cast<Category>(c))); };
  auto nameLabel = [&](uint32_t id) { return std::string(trace.name(id)); };
  out.hostCategories = table(hostCat, categoryLabel);
  out.gpuCategories = table(gpuCat, categoryLabel);
  out.names = table(std::vector<std::pair<uint32_t, Sum>>(names.begin(), names.end()), nameLabel);
  out.kernels = table(std::vector<std::pair<uint32_t, Sum>>(kernels.begin(), kernels.end()), nameLabel);
  return out;
}

}  // namespace moescope::storage
