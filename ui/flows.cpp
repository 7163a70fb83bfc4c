#include "ui/flows.h"

#include <algorithm>
#include <optional>
#include <string_view>

namespace moescope::ui {
namespace {

using storage::Category;
using storage::Phase;

bool validRef(const storage::Trace& trace, SpanRef r) {
  return r.valid() && static_cast<size_t>(r.track) < trace.spans.size() &&
         r.index < trace.spans[static_cast<size_t>(r.track)].size();
}

bool isStream(const storage::Trace& trace, int32_t track) {
  return track >= 0 && static_cast<size_t>(track) < trace.tracks.size() &&
         trace.tracks[static_cast<size_t>(track)].kind == storage::TrackKind::GpuStream;
}

// The span of track with this start, end and name.
std::optional<SpanRef> findSpan(const storage::Trace& trace, int32_t track, int64_t start, int64_t end,
                                uint32_t name) {
  if (track < 0 || static_cast<size_t>(track) >= trace.spans.size()) return std::nullopt;
  const auto& c = trace.spans[static_cast<size_t>(track)];
  auto i = static_cast<size_t>(std::lower_bound(c.start.begin(), c.start.end(), start) - c.start.begin());
  for (; i < c.size() && c.start[i] == start; ++i) {
    if (c.endAt(i) == end && c.name[i] == name) return SpanRef{track, static_cast<uint32_t>(i)};
  }
  return std::nullopt;
}

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

struct Transfer {
  SpanRef ref;
  int32_t rank = 0;
  Phase phase = Phase::None;
  int32_t chunk = storage::kNone;
  int64_t start = 0, end = 0;
};

// Where a send goes: the stage and model chunk of its receive. Forward, stage s to s + 1 in the same
// chunk; backward, s to s - 1. With an interleaved schedule's chunks the pipeline wraps: the last
// stage's chunk c feeds stage 0's chunk c + 1, and stage 0's backward of chunk c goes to the last
// stage's chunk c - 1. Chunks unrecorded (kNone) stay so.
struct Hop {
  int32_t stage = 0, chunk = storage::kNone;
};
std::optional<Hop> hopOf(const storage::RunInfo& run, int32_t stage, Phase phase, int32_t chunk) {
  const bool forward = phase == Phase::Forward;
  if (phase != Phase::Forward && phase != Phase::Backward) return std::nullopt;
  Hop h{stage + (forward ? 1 : -1), chunk};
  if (run.virtual_stages > 1 && chunk >= 0 && run.pp > 0) {
    if (h.stage == run.pp) h = {0, chunk + 1};
    if (h.stage == -1) h = {run.pp - 1, chunk - 1};
    if (h.chunk < 0 || h.chunk >= run.virtual_stages) return std::nullopt;
  }
  return h;
}

// The rank of the given stage with the same tensor- and data-parallel ranks as `like`.
const storage::RankInfo* peerRank(const storage::Trace& trace, const storage::RankInfo& like, int32_t stage) {
  for (const auto& r : trace.ranks) {
    if (r.stage == stage && r.tp_rank == like.tp_rank && r.dp_rank == like.dp_rank) return &r;
  }
  return nullptr;
}

void pipelineFlows(const storage::Trace& trace, int32_t step, int32_t microbatch, std::vector<Flow>& out) {
  int64_t t0 = INT64_MIN / 2, t1 = INT64_MAX / 2;
  for (const auto& s : trace.steps) {
    if (s.step == step && s.end_ns > s.start_ns) {
      t0 = s.start_ns;
      t1 = s.end_ns;
    }
  }
  std::vector<Transfer> sends, recvs;
  for (size_t t = 0; t < trace.spans.size() && t < trace.tracks.size(); ++t) {
    if (trace.tracks[t].kind != storage::TrackKind::HostThread) continue;
    const auto& c = trace.spans[t];
    const auto [a, b] = c.window(t0, t1);
    for (size_t k = a; k < b; ++k) {
      if (c.category[k] != Category::CommPpSendrecv || c.stepAt(k) != step || c.microbatch[k] != microbatch)
        continue;
      Transfer x{{static_cast<int32_t>(t), static_cast<uint32_t>(k)},
                 trace.tracks[t].rank,
                 c.phase[k],
                 c.chunk[k],
                 c.start[k],
                 c.endAt(k)};
      (contains(trace.name(c.name[k]), "recv") ? recvs : sends).push_back(x);
    }
  }
  for (const Transfer& send : sends) {
    const storage::RankInfo* from = trace.rank(send.rank);
    if (!from) continue;
    const std::optional<Hop> hop = hopOf(trace.run, from->stage, send.phase, send.chunk);
    if (!hop) continue;
    const storage::RankInfo* to = peerRank(trace, *from, hop->stage);
    if (!to) continue;
    const Transfer* best = nullptr;
    for (const Transfer& r : recvs) {
      if (r.rank != to->rank || r.phase != send.phase || r.chunk != hop->chunk) continue;
      // The receive that completes first after the send starts.
      if (r.end >= send.start && (!best || r.end < best->end)) best = &r;
    }
    if (best) {
      out.push_back({send.ref, best->ref, FlowKind::Pipeline});
      continue;
    }
    // No receive spans: the peer's first work on this micro-batch and phase after the send.
    std::optional<SpanRef> target;
    int64_t targetStart = INT64_MAX;
    for (size_t t = 0; t < trace.spans.size() && t < trace.tracks.size(); ++t) {
      if (trace.tracks[t].kind != storage::TrackKind::HostThread || trace.tracks[t].rank != to->rank)
        continue;
      const auto& c = trace.spans[t];
      const auto [a, b] = c.window(send.start, t1);
      for (size_t k = a; k < b; ++k) {
        if (c.start[k] < send.start || c.start[k] >= targetStart || c.category[k] == Category::Wait) continue;
        if (c.stepAt(k) != step || c.microbatch[k] != microbatch || c.phase[k] != send.phase ||
            c.chunk[k] != hop->chunk)
          continue;
        target = SpanRef{static_cast<int32_t>(t), static_cast<uint32_t>(k)};
        targetStart = c.start[k];
        break;
      }
    }
    if (target) out.push_back({send.ref, *target, FlowKind::Pipeline});
  }
}

}  // namespace

std::optional<size_t> gpuRecordOf(const storage::Trace& trace, SpanRef span) {
  if (!validRef(trace, span) || !isStream(trace, span.track)) return std::nullopt;
  const auto& c = trace.spans[static_cast<size_t>(span.track)];
  const int64_t start = c.start[span.index], end = c.endAt(span.index);
  const uint32_t name = c.name[span.index];
  auto it = std::lower_bound(trace.gpu.begin(), trace.gpu.end(), std::make_pair(span.track, start),
                             [](const storage::GpuActivityRecord& g, const std::pair<int32_t, int64_t>& key) {
                               return g.track != key.first ? g.track < key.first : g.start < key.second;
                             });
  for (; it != trace.gpu.end() && it->track == span.track && it->start == start; ++it) {
    if (it->end == end && it->name == name) return static_cast<size_t>(it - trace.gpu.begin());
  }
  return std::nullopt;
}

std::optional<SpanRef> launchingSpan(const storage::Trace& trace, const storage::GpuActivityRecord& record) {
  const storage::LinkedSpan* l = trace.linkedSpan(record.span);
  if (!l) return std::nullopt;
  return findSpan(trace, l->span.track, l->span.start, l->span.end, l->span.name);
}

std::vector<Flow> flowsOf(const storage::Trace& trace, SpanRef selected) {
  std::vector<Flow> out;
  if (!validRef(trace, selected)) return out;
  const auto& c = trace.spans[static_cast<size_t>(selected.track)];
  if (isStream(trace, selected.track)) {
    if (auto g = gpuRecordOf(trace, selected)) {
      if (auto host = launchingSpan(trace, trace.gpu[*g])) out.push_back({*host, selected, FlowKind::Launch});
    }
  } else {
    // The span's id, from the spans GPU records point at.
    const int64_t start = c.start[selected.index], end = c.endAt(selected.index);
    const uint32_t name = c.name[selected.index];
    int64_t id = storage::kNone;
    for (const auto& l : trace.linked) {
      if (l.span.track == selected.track && l.span.start == start && l.span.end == end &&
          l.span.name == name) {
        id = l.id;
        break;
      }
    }
    if (id != storage::kNone) {
      for (const auto& g : trace.gpu) {
        if (g.span != id) continue;
        if (auto to = findSpan(trace, g.track, g.start, g.end, g.name))
          out.push_back({selected, *to, FlowKind::Launch});
      }
    }
  }
  const int32_t step = c.stepAt(selected.index), microbatch = c.microbatch[selected.index];
  if (step != storage::kNone && microbatch != storage::kNone) pipelineFlows(trace, step, microbatch, out);
  return out;
}

std::vector<FlowLine> flowLines(const storage::Trace& trace, const TimelineSummary& summary,
                                const TimelineLayout& layout, const TimeMapping& mapping,
                                const std::vector<Flow>& flows) {
  std::vector<FlowLine> lines;
  // Top, bottom and middle of a span's box, or of its rank's header when the rank is collapsed.
  struct Box {
    double top = 0, bottom = 0;
  };
  auto boxOf = [&](SpanRef ref) -> std::optional<Box> {
    const int r = layout.rowOfTrack(ref.track);
    if (r >= 0) {
      const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
      const TrackSummary* ts = summary.track(ref.track);
      const int lane = ts ? ts->laneOfSpan(ref.index) : 0;
      return Box{static_cast<double>(layout.laneTop(row, lane)),
                 static_cast<double>(layout.laneBottom(row, lane))};
    }
    const int32_t rank = trace.tracks[static_cast<size_t>(ref.track)].rank;
    for (const TimelineRow& row : layout.rows) {
      if (row.kind == TimelineRow::Kind::Group && row.rank == rank)
        return Box{static_cast<double>(row.y + 3), static_cast<double>(row.y + row.height - 3)};
    }
    return std::nullopt;
  };
  for (const Flow& f : flows) {
    if (!validRef(trace, f.from) || !validRef(trace, f.to)) continue;
    const auto from = boxOf(f.from), to = boxOf(f.to);
    if (!from || !to) continue;
    const auto& cf = trace.spans[static_cast<size_t>(f.from.track)];
    const auto& ct = trace.spans[static_cast<size_t>(f.to.track)];
    FlowLine line;
    line.kind = f.kind;
    if (f.kind == FlowKind::Launch) {
      const int64_t target = ct.start[f.to.index];
      const int64_t at = std::clamp(target, cf.start[f.from.index], cf.endAt(f.from.index));
      line.x0 = mapping.toX(at);
      line.x1 = mapping.toX(target);
      const bool down = to->top >= from->bottom;
      line.y0 = down ? from->bottom : from->top;
      line.y1 = down ? to->top : to->bottom;
    } else {
      line.x0 = mapping.toX(cf.endAt(f.from.index));
      line.x1 = mapping.toX(ct.endAt(f.to.index));
      line.y0 = (from->top + from->bottom) / 2;
      line.y1 = (to->top + to->bottom) / 2;
    }
    lines.push_back(line);
  }
  return lines;
}

}  // namespace moescope::ui
