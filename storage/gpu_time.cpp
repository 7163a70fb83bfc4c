#include "storage/gpu_time.h"

#include <algorithm>
#include <map>
#include <string>

#include "storage/intervals.h"
#include "storage/saturating.h"

namespace moescope::storage {

std::vector<SpanGpuExtent> gpuExtents(const Trace& trace) {
  std::vector<SpanGpuExtent> out;
  out.reserve(trace.linked.size());
  for (const LinkedSpan& l : trace.linked) {
    SpanGpuExtent e;
    e.span = l.id;
    e.track = l.span.track;
    e.name = l.span.name;
    e.category = l.span.category;
    e.step = l.span.step;
    e.host_start = l.span.start;
    e.host_end = l.span.end;
    out.push_back(e);
  }
  std::vector<std::vector<Interval>> intervals(out.size());
  for (const GpuActivityRecord& g : trace.gpu) {
    if (g.span == kNone) continue;
    auto it = std::lower_bound(out.begin(), out.end(), g.span,
                               [](const SpanGpuExtent& e, int64_t id) { return e.span < id; });
    if (it == out.end() || it->span != g.span) continue;
    if (it->records == 0) {
      it->gpu_start = g.start;
      it->gpu_end = g.end;
    } else {
      it->gpu_start = std::min(it->gpu_start, g.start);
      it->gpu_end = std::max(it->gpu_end, g.end);
    }
    ++it->records;
    if (g.kind == GpuActivityKind::Kernel) ++it->kernels;
    intervals[static_cast<size_t>(it - out.begin())].push_back({g.start, g.end});
  }
  for (size_t i = 0; i < out.size(); ++i)
    out[i].gpu_busy_ns = totalLength(mergeIntervals(std::move(intervals[i])));
  std::erase_if(out, [](const SpanGpuExtent& e) { return e.records == 0; });
  return out;
}

const SpanGpuExtent* findGpuExtent(const std::vector<SpanGpuExtent>& extents, int64_t id) {
  auto it = std::lower_bound(extents.begin(), extents.end(), id,
                             [](const SpanGpuExtent& e, int64_t v) { return e.span < v; });
  return it != extents.end() && it->span == id ? &*it : nullptr;
}

std::vector<RankActivity> gpuActivity(const Trace& trace) {
  const CompletedSteps completed(trace);
  std::map<int32_t, RankActivity> byRank;
  for (const GpuActivityRecord& g : trace.gpu) {
    if (g.track < 0 || static_cast<size_t>(g.track) >= trace.tracks.size()) continue;
    const LinkedSpan* l = trace.linkedSpan(g.span);
    if (!l || !completed.counts(l->span.step)) continue;
    const int32_t rank = trace.tracks[static_cast<size_t>(g.track)].rank;
    RankActivity& ra = byRank[rank];
    ra.rank = rank;
    const RankInfo* info = trace.rank(rank);
    ra.stage = info ? info->stage : 0;
    ra.items.push_back({g.start, g.end, l->span.category, l->span.step, g.bytes});
  }
  std::vector<RankActivity> out;
  out.reserve(byRank.size());
  for (auto& [rank, ra] : byRank) {
    std::stable_sort(ra.items.begin(), ra.items.end(),
                     [](const Activity& a, const Activity& b) { return a.start < b.start; });
    out.push_back(std::move(ra));
  }
  return out;
}

GpuRecordCounts gpuRecordCounts(const Trace& trace) {
  GpuRecordCounts c;
  c.records = static_cast<int64_t>(trace.gpu.size());
  for (const GpuActivityRecord& g : trace.gpu) {
    if (!trace.linkedSpan(g.span)) ++c.unlinked;
  }
  auto it = std::find_if(trace.meta.begin(), trace.meta.end(),
                         [](const auto& kv) { return kv.first == "cupti.dropped_records"; });
  if (it != trace.meta.end()) {
    try {
      c.dropped = std::stoll(it->second);
    } catch (const std::exception&) {
      c.dropped = kNone;
    }
  }
  return c;
}

std::vector<KernelTotal> kernelTotals(const Trace& trace) {
  std::map<std::pair<uint32_t, GpuActivityKind>, KernelTotal> byName;
  int64_t all = 0;
  for (const GpuActivityRecord& g : trace.gpu) {
    const int64_t d = std::max<int64_t>(0, g.end - g.start);
    KernelTotal& k = byName[{g.name, g.kind}];
    if (k.count == 0) {
      k.name = std::string(trace.name(g.name));
      k.kind = g.kind;
      k.min_ns = k.max_ns = d;
    }
    ++k.count;
    addTo(k.total_ns, d);
    k.min_ns = std::min(k.min_ns, d);
    k.max_ns = std::max(k.max_ns, d);
    addTo(all, d);
  }
  std::vector<KernelTotal> out;
  out.reserve(byName.size());
  for (auto& [key, k] : byName) {
    k.share = all > 0 ? static_cast<double>(k.total_ns) / static_cast<double>(all) : 0.0;
    out.push_back(std::move(k));
  }
  std::sort(out.begin(), out.end(), [](const KernelTotal& a, const KernelTotal& b) {
    return a.total_ns != b.total_ns ? a.total_ns > b.total_ns : a.name < b.name;
  });
  return out;
}

}  // namespace moescope::storage
