#include "ui/span_fields.h"

#include <algorithm>
#include <cstdio>

#include "ui/flows.h"
#include "ui/span_access.h"
#include "ui/time_format.h"

namespace moescope::ui {
namespace {

std::string optionalInt(int32_t v) {
  return v == storage::kNone ? std::string("-") : std::to_string(v);
}

std::string triple(int32_t x, int32_t y, int32_t z) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "(%d, %d, %d)", x, y, z);
  return buf;
}

bool isNccl(std::string_view name) {
  return name.substr(0, 4) == "nccl";
}

// A GPU record's own fields: kind, stream, correlation id, launching span, kernel launch, and bytes
// (an NCCL kernel's are its launching span's payload).
void addRecordFields(const storage::Trace& trace, const storage::GpuActivityRecord& g,
                     std::vector<SpanField>& f) {
  auto add = [&](std::string label, std::string value) { f.push_back({std::move(label), std::move(value)}); };
  add("record", std::string(storage::gpuActivityKindName(g.kind)));
  add("stream", std::to_string(g.stream));
  add("correlation id", std::to_string(g.correlation));
  const storage::LinkedSpan* l = trace.linkedSpan(g.span);
  if (l) {
    std::string track = static_cast<size_t>(l->span.track) < trace.tracks.size()
                            ? trace.tracks[static_cast<size_t>(l->span.track)].name
                            : std::to_string(l->span.track);
    std::string by(trace.name(l->span.name));
    by.append(" (").append(track).append(", span ").append(std::to_string(l->id)).append(")");
    add("launched by", std::move(by));
  } else {
    add("launched by", "no span (outside the engine's spans)");
  }
  const storage::KernelLaunch& k = g.launch;
  if (g.kind == storage::GpuActivityKind::Kernel && k.grid_x > 0) {
    add("grid", triple(k.grid_x, k.grid_y, k.grid_z));
    add("block", triple(k.block_x, k.block_y, k.block_z));
    add("registers", std::to_string(k.registers) + " per thread");
    std::string shared = formatBytes(int64_t(k.shared_static) + k.shared_dynamic);
    shared.append(" per block (").append(formatBytes(k.shared_static)).append(" static, ");
    shared.append(formatBytes(k.shared_dynamic)).append(" dynamic)");
    add("shared memory", std::move(shared));
  }
  int64_t bytes = g.bytes;
  if (bytes == 0 && l && isNccl(trace.name(g.name))) bytes = l->span.bytes;
  if (bytes > 0) {
    add("bytes", formatBytes(bytes));
    add("bandwidth", formatBandwidth(bytes, g.end - g.start));
  }
}

}  // namespace

std::vector<SpanField> gpuRecordFields(const storage::Trace& trace, const storage::GpuActivityRecord& g) {
  const int64_t origin = timelineExtent(trace).start;
  std::vector<SpanField> f;
  f.push_back({"name", std::string(trace.name(g.name))});
  f.push_back({"device", "GPU " + std::to_string(g.device)});
  f.push_back({"start", formatExact(g.start - origin)});
  f.push_back({"end", formatExact(g.end - origin)});
  f.push_back({"duration", formatDuration(g.end - g.start)});
  addRecordFields(trace, g, f);
  return f;
}

storage::SpanView spanAt(const storage::Trace& trace, SpanRef ref) {
  return trace.spans.at(static_cast<size_t>(ref.track)).at(ref.index, ref.track);
}

const storage::RankInfo* rankOf(const storage::Trace& trace, int32_t track) {
  if (track < 0 || static_cast<size_t>(track) >= trace.tracks.size()) return nullptr;
  return trace.rank(trace.tracks[static_cast<size_t>(track)].rank);
}

std::string formatBytes(int64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string formatBandwidth(int64_t bytes, int64_t ns) {
  if (ns <= 0) return "-";
  const double gbps = static_cast<double>(bytes) / static_cast<double>(ns);  // bytes per ns = GB/s
  char buf[48];
  if (gbps >= 1)
    std::snprintf(buf, sizeof buf, "%.2f GB/s", gbps);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB/s", gbps * 1e3);
  return buf;
}

std::vector<SpanField> spanFields(const storage::Trace& trace, SpanRef ref, bool all) {
  const storage::SpanView s = spanAt(trace, ref);
  const storage::RankInfo* rank = rankOf(trace, ref.track);
  const int64_t origin = timelineExtent(trace).start;
  std::vector<SpanField> f;
  auto add = [&](std::string label, std::string value) { f.push_back({std::move(label), std::move(value)}); };
  auto addOptional = [&](std::string label, int32_t v) {
    if (all || v != storage::kNone) add(std::move(label), optionalInt(v));
  };
  add("name", std::string(trace.name(s.name)));
  add("category", std::string(storage::categoryName(s.category)));
  add("phase", s.phase == storage::Phase::None ? std::string("-") : std::string(storage::phaseName(s.phase)));
  if (rank) {
    add("rank", std::to_string(rank->rank));
    add("stage", std::to_string(rank->stage));
    add("tp rank", std::to_string(rank->tp_rank));
    add("dp rank", std::to_string(rank->dp_rank));
    add("device",
        rank->device == storage::kNone ? std::string("cpu") : "GPU " + std::to_string(rank->device));
  }
  add("track", static_cast<size_t>(ref.track) < trace.tracks.size()
                   ? trace.tracks[static_cast<size_t>(ref.track)].name
                   : std::to_string(ref.track));
  addOptional("step", s.step);
  addOptional("micro-batch", s.microbatch);
  addOptional("layer", s.layer);
  addOptional("expert", s.expert);
  add("start", formatExact(s.start - origin));
  add("end", formatExact(s.end - origin));
  add("duration", formatDuration(s.duration()));
  // The other end of a send or receive; for a wait, the rank it waited for (SpanRecord::peer).
  if (s.peer != storage::kNone)
    add(s.category == storage::Category::Wait ? "waited for" : "peer", "rank " + std::to_string(s.peer));
  if (auto g = gpuRecordOf(trace, ref)) {
    addRecordFields(trace, trace.gpu[*g], f);
    return f;
  }
  if (storage::isCommunication(s.category) || s.bytes > 0) {
    add("bytes", formatBytes(s.bytes));
    add("bandwidth", formatBandwidth(s.bytes, s.duration()));
  }
  return f;
}

std::vector<SpanField> spanSummary(const storage::Trace& trace, SpanRef ref) {
  static const char* keep[] = {"name",   "category", "phase", "stage",     "micro-batch", "layer",
                               "expert", "duration", "bytes", "bandwidth", "waited for"};
  std::vector<SpanField> out;
  for (auto& field : spanFields(trace, ref, false)) {
    if (std::find_if(std::begin(keep), std::end(keep), [&](const char* k) { return field.label == k; }) !=
        std::end(keep))
      out.push_back(std::move(field));
  }
  return out;
}

}  // namespace moescope::ui
