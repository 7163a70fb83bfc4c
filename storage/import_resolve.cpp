#include "storage/import_resolve.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <string>

#include "storage/import_schedule.h"

namespace moescope::storage {
namespace {

// A category not given yet; every one left so at the end is `user`.
constexpr Category kUnset = static_cast<Category>(0xFF);

bool isLaunchCall(KinetoKind k) {
  return k == KinetoKind::CudaRuntime || k == KinetoKind::CudaDriver;
}

// Time windows of one rank that pass a field to the events they contain: disjoint, by start.
struct Window {
  int64_t start = 0, end = 0;
  uint32_t event = 0;
};

// Keeps the outermost of windows sorted by start (a window starting inside the last kept one is dropped).
std::vector<Window> outermost(std::vector<Window> windows) {
  std::sort(windows.begin(), windows.end(), [](const Window& a, const Window& b) {
    return a.start != b.start ? a.start < b.start : a.end > b.end;
  });
  std::vector<Window> out;
  for (const Window& w : windows) {
    if (out.empty() || w.start >= out.back().end) out.push_back(w);
  }
  return out;
}

// The window containing time t (starting at or before it and ending after it, or a zero-length window
// at t), or nullptr.
const Window* containing(const std::vector<Window>& windows, int64_t t) {
  auto it = std::upper_bound(windows.begin(), windows.end(), t,
                             [](int64_t v, const Window& w) { return v < w.start; });
  if (it == windows.begin()) return nullptr;
  --it;
  return (t < it->end || t == it->start) ? &*it : nullptr;
}

// The launch calls by CUDA correlation id. CUPTI numbers the calls of a process one after another, so
// the ids of a trace's calls fill most of their range: a table over that range costs 4 bytes an id and
// one load a lookup (a hash map cost 40 bytes and a hash per call); ids spread wider fall back to a
// sorted list.
class CorrelationIndex {
 public:
  explicit CorrelationIndex(const LargeVector<KinetoEvent>& events) {
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    size_t calls = 0;
    for (const KinetoEvent& e : events) {
      if (!isLaunchCall(e.kind) || e.correlation == 0) continue;
      lo = std::min(lo, e.correlation);
      hi = std::max(hi, e.correlation);
      ++calls;
    }
    if (calls == 0) return;
    const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;
    dense_ = range <= 4 * calls + 4096;
    low_ = lo;
    if (dense_) {
      table_.assign(range, kNoEvent);
    } else {
      sorted_.reserve(calls);
    }
    for (uint32_t i = 0; i < events.size(); ++i) {
      const KinetoEvent& e = events[i];
      if (!isLaunchCall(e.kind) || e.correlation == 0) continue;
      if (dense_) {
        uint32_t& slot = table_[static_cast<size_t>(e.correlation - low_)];
        if (slot == kNoEvent) slot = i;  // the first call of an id
      } else {
        sorted_.emplace_back(e.correlation, i);
      }
    }
    std::stable_sort(sorted_.begin(), sorted_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  uint32_t find(int64_t correlation) const {
    if (correlation == 0) return kNoEvent;
    if (dense_) {
      const uint64_t at = static_cast<uint64_t>(correlation) - static_cast<uint64_t>(low_);
      return at < table_.size() ? table_[at] : kNoEvent;
    }
    const auto it = std::lower_bound(sorted_.begin(), sorted_.end(), correlation,
                                     [](const auto& p, int64_t c) { return p.first < c; });
    return it != sorted_.end() && it->first == correlation ? it->second : kNoEvent;
  }

 private:
  bool dense_ = false;
  int64_t low_ = 0;
  LargeVector<uint32_t> table_;
  std::vector<std::pair<int64_t, uint32_t>> sorted_;
};

uint64_t flowKey(uint32_t track, int64_t ts) {
  return (static_cast<uint64_t>(track) << 44) ^ static_cast<uint64_t>(ts);
}

}  // namespace

int64_t collectiveBytes(const KinetoCollective& c) {
  const int64_t elements = std::max<int64_t>({c.in_nelems, c.out_nelems, 0});
  return elements * dtypeBytes(c.dtype);
}

RankResolution resolveRank(const KinetoFile& file, int32_t stage, const ResolveContext& ctx) {
  RankResolution r;
  r.base_ns = file.base_time_ns.value_or(0);
  const LargeVector<KinetoEvent>& events = file.events;
  const size_t n = events.size();
  r.fields.resize(n);
  r.launch.assign(n, kNoEvent);
  if (ctx.nameCache.size() < ctx.names.size()) {
    ctx.nameCache.resize(ctx.names.size());
    ctx.nameCached.resize(ctx.names.size(), false);
  }

  // 1. What each event's own name and collective fields say.
  std::vector<uint32_t> passes, stepMarks;
  std::map<int64_t, int64_t> devices;  // GPU -> records on it
  for (uint32_t i = 0; i < n; ++i) {
    const KinetoEvent& e = events[i];
    if (!ctx.nameCached[e.name]) {
      ctx.nameCache[e.name] = ctx.rules.match(ctx.names.text(e.name));
      ctx.nameCached[e.name] = true;
    }
    const NameFields& nf = ctx.nameCache[e.name];
    ResolvedFields& x = r.fields[i];
    x.step = nf.step;
    x.microbatch = nf.microbatch;
    x.layer = nf.layer;
    x.expert = nf.expert;
    x.phase = nf.phase;
    x.category = nf.category.value_or(kUnset);
    if (nf.stage != kNone && r.stage_from_names == kNone) r.stage_from_names = nf.stage;
    if (e.collective >= 0) {
      ++r.counts.collectives;
      const KinetoCollective& c = file.collectives[static_cast<size_t>(e.collective)];
      // The kind from the collective's name, or the event's where that says less: PyTorch names a
      // batch_isend_irecv "coalesced" but its kernel ncclDevKernel_SendRecv; a source or destination
      // rank makes it point to point whatever the names.
      std::string kind = c.name + " " + std::string(ctx.names.text(e.name));
      if (c.src >= 0 || c.dst >= 0) kind += " send";
      if (auto category = collectiveCategory(ctx.layout, kind, c.ranks)) x.category = *category;
      if (const int64_t b = collectiveBytes(c); b > 0) r.bytes[i] = b;
    }
    if (e.bytes > 0) r.bytes[i] = e.bytes;
    if (isGpuRecord(e.kind)) {
      ++devices[file.tracks[e.track].pid];
    } else {
      // GPU-side annotations (gpu_user_annotation) are passes too, numbered apart from their host twins.
      if (nf.pass && (nf.phase == Phase::Forward || nf.phase == Phase::Backward)) passes.push_back(i);
      if (nf.step != kNone && !isGpuKind(e.kind)) stepMarks.push_back(i);
    }
  }

  // 2. Every range (host calls and GPU-side annotations) by track, then start, the longer first.
  LargeVector<uint32_t> order;
  order.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (!isGpuRecord(events[i].kind)) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const KinetoEvent& x = events[a];
    const KinetoEvent& y = events[b];
    if (x.track != y.track) return x.track < y.track;
    if (x.ts != y.ts) return x.ts < y.ts;
    if (x.dur != y.dur) return x.dur > y.dur;
    return a < b;
  });

  // 3. Each GPU record's launching call: by correlation id, else by the ac2g flow.
  const CorrelationIndex byCorrelation(events);
  std::vector<uint32_t> unlinked;
  for (uint32_t i = 0; i < n; ++i) {
    if (!isGpuRecord(events[i].kind)) continue;
    if (const uint32_t launch = byCorrelation.find(events[i].correlation); launch != kNoEvent) {
      r.launch[i] = launch;
      ++r.counts.linked_by_correlation;
    } else {
      unlinked.push_back(i);
    }
  }
  if (!unlinked.empty() && !file.flow_starts.empty()) {
    // The flow's start is bound to the launch call that starts at the flow's time on its thread.
    std::vector<size_t> trackBegin(file.tracks.size() + 1, order.size());
    for (size_t k = order.size(); k-- > 0;) trackBegin[events[order[k]].track] = k;
    for (size_t t = file.tracks.size(); t-- > 0;) trackBegin[t] = std::min(trackBegin[t], trackBegin[t + 1]);
    std::unordered_map<int64_t, uint32_t> startOf;
    for (const KinetoFlow& f : file.flow_starts) {
      if (f.track >= file.tracks.size()) continue;
      auto first = order.begin() + static_cast<std::ptrdiff_t>(trackBegin[f.track]);
      auto last = order.begin() + static_cast<std::ptrdiff_t>(trackBegin[f.track + 1]);
      for (auto it =
               std::lower_bound(first, last, f.ts, [&](uint32_t e, int64_t ts) { return events[e].ts < ts; });
           it != last && events[*it].ts == f.ts; ++it) {
        if (isLaunchCall(events[*it].kind)) {
          startOf.emplace(f.id, *it);
          break;
        }
      }
    }
    std::unordered_map<uint64_t, int64_t> endAt;
    for (const KinetoFlow& f : file.flow_ends) endAt.emplace(flowKey(f.track, f.ts), f.id);
    for (uint32_t i : unlinked) {
      const auto end = endAt.find(flowKey(events[i].track, events[i].ts));
      const auto start = end != endAt.end() ? startOf.find(end->second) : startOf.end();
      if (start != startOf.end()) {
        r.launch[i] = start->second;
        ++r.counts.linked_by_flow;
      } else {
        ++r.counts.unlinked;
      }
    }
  } else {
    r.counts.unlinked = static_cast<int64_t>(unlinked.size());
  }

  // A launch call takes the category (and payload) of a kernel that has one of its own.
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t l = r.launch[i];
    if (l == kNoEvent || r.fields[i].category == kUnset || r.fields[l].category != kUnset) continue;
    r.fields[l].category = r.fields[i].category;
    if (auto b = r.bytes.find(i); b != r.bytes.end() && events[i].collective >= 0) r.bytes[l] = b->second;
  }

  // 4. Nesting: a range passes what it has to the ranges inside it on its track.
  std::vector<uint32_t> stack;
  uint32_t track = UINT32_MAX;
  for (uint32_t i : order) {
    const KinetoEvent& e = events[i];
    if (e.track != track) {
      stack.clear();
      track = e.track;
    }
    while (!stack.empty()) {
      const KinetoEvent& top = events[stack.back()];
      if (top.ts == e.ts || top.ts + top.dur > e.ts) break;
      stack.pop_back();
    }
    if (!stack.empty()) {
      const ResolvedFields& p = r.fields[stack.back()];
      ResolvedFields& x = r.fields[i];
      if (x.category == kUnset) x.category = p.category;
      if (x.phase == Phase::None) x.phase = p.phase;
      if (x.step == kNone) x.step = p.step;
      if (x.microbatch == kNone) x.microbatch = p.microbatch;
      if (x.layer == kNone) x.layer = p.layer;
      if (x.expert == kNone) x.expert = p.expert;
    }
    stack.push_back(i);
  }

  // 5. Steps: the step markers pass their step to everything of the rank's threads inside them.
  std::vector<Window> stepWindows;
  std::map<int32_t, StepWindow> steps;
  for (uint32_t i : stepMarks) {
    const KinetoEvent& e = events[i];
    stepWindows.push_back({e.ts, e.ts + e.dur, i});
    const int32_t s = r.fields[i].step;
    const int64_t start = r.base_ns + e.ts, end = start + e.dur;
    auto [it, added] = steps.try_emplace(s, StepWindow{s, start, end});
    if (!added) {
      it->second.start = std::min(it->second.start, start);
      it->second.end = std::max(it->second.end, end);
    }
  }
  for (const auto& [s, w] : steps) r.steps.push_back(w);
  stepWindows = outermost(std::move(stepWindows));
  auto isHostRange = [&](uint32_t i) { return !isGpuKind(events[i].kind); };
  if (!stepWindows.empty()) {
    for (uint32_t i : order) {
      if (r.fields[i].step != kNone || !isHostRange(i)) continue;
      if (const Window* w = containing(stepWindows, events[i].ts)) r.fields[i].step = r.fields[w->event].step;
    }
  }

  // 6. Passes: the outermost forward and backward passes of each step, numbered from the schedule where
  //    their names carry no micro-batch, then passing phase and micro-batch to what runs inside them.
  //    Host ranges and their GPU-side twins (gpu_user_annotation) are kept and numbered apart: each side
  //    runs the step's passes once, in the same order, and the GPU's run later, overlapping the host's.
  std::vector<Window> passWindows, gpuPassWindows;
  for (uint32_t i : passes)
    (isHostRange(i) ? passWindows : gpuPassWindows)
        .push_back({events[i].ts, events[i].ts + events[i].dur, i});
  passWindows = outermost(std::move(passWindows));
  gpuPassWindows = outermost(std::move(gpuPassWindows));
  r.counts.passes = static_cast<int64_t>(passWindows.size());
  std::map<std::pair<int32_t, bool>, std::vector<uint32_t>> byStep;
  for (const auto* windows : {&passWindows, &gpuPassWindows})
    for (const Window& w : *windows)
      byStep[{r.fields[w.event].step, windows != &passWindows}].push_back(w.event);
  for (auto& [key, list] : byStep) {
    std::vector<Phase> phases;
    for (uint32_t i : list) phases.push_back(r.fields[i].phase);
    const std::vector<int32_t> mb = microbatchesOfPasses(ctx.schedule, ctx.layout.pp, stage, phases);
    for (size_t k = 0; k < list.size(); ++k) {
      if (r.fields[list[k]].microbatch == kNone && mb[k] != kNone) {
        r.fields[list[k]].microbatch = mb[k];
        ++r.counts.numbered_passes;
      }
    }
  }
  if (!passWindows.empty()) {
    for (uint32_t i : order) {
      ResolvedFields& x = r.fields[i];
      if ((x.microbatch != kNone && x.phase != Phase::None) || !isHostRange(i)) continue;
      if (const Window* w = containing(passWindows, events[i].ts)) {
        const ResolvedFields& p = r.fields[w->event];
        if (x.microbatch == kNone) x.microbatch = p.microbatch;
        if (x.phase == Phase::None) x.phase = p.phase;
      }
    }
  }

  // 7. What nothing named is `user`.
  for (uint32_t i = 0; i < n; ++i) {
    ResolvedFields& x = r.fields[i];
    if (x.category == kUnset) {
      x.category = Category::User;
      if (!isGpuRecord(events[i].kind)) ++r.counts.user_spans;
    }
    if (x.microbatch != kNone) r.microbatches = std::max(r.microbatches, x.microbatch + 1);
  }
  const auto most = std::max_element(devices.begin(), devices.end(),
                                     [](const auto& x, const auto& y) { return x.second < y.second; });
  if (most != devices.end() && most->first >= 0 && most->first <= INT32_MAX)
    r.device = static_cast<int32_t>(most->first);
  return r;
}

}  // namespace moescope::storage
