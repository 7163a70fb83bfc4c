#include "storage/import_rank_writer.h"

#include <algorithm>

namespace moescope::storage {
namespace {

constexpr size_t kBatch = 1 << 16;

}  // namespace

void RankWriter::write(const KinetoFile& file, const RankResolution& res, int32_t rank, ImportedRank& out,
                       const std::vector<bool>* keep) {
  const LargeVector<KinetoEvent>& events = file.events;
  const std::vector<int32_t> tracks = addTracks(file, rank, keep);
  auto kept = [&](uint32_t i) { return !keep || (*keep)[i]; };

  // Spans, in file order; ids follow on from the first (RunWriter::addSpans).
  LargeVector<uint32_t> ordinal(events.size(), kNoEvent);
  std::vector<SpanRecord> batch;
  batch.reserve(kBatch);
  int64_t firstId = -1;
  uint32_t count = 0;
  auto flushSpans = [&] {
    if (batch.empty()) return;
    const int64_t id = writer_.addSpans(batch);
    if (firstId < 0) firstId = id;
    batch.clear();
  };
  for (uint32_t i = 0; i < events.size(); ++i) {
    const KinetoEvent& e = events[i];
    if (isGpuRecord(e.kind) || !kept(i)) continue;
    const ResolvedFields& f = res.fields[i];
    SpanRecord s;
    s.track = tracks[e.track];
    s.start = res.base_ns + e.ts;
    s.end = s.start + e.dur;
    s.name = nameId(e.name);
    s.category = f.category;
    s.phase = f.phase;
    s.step = f.step;
    s.microbatch = f.microbatch;
    s.layer = f.layer;
    s.expert = f.expert;
    if (auto b = res.bytes.find(i); b != res.bytes.end()) s.bytes = b->second;
    batch.push_back(s);
    ordinal[i] = count++;
    if (e.kind == KinetoKind::UserAnnotation || e.kind == KinetoKind::GpuUserAnnotation) ++out.annotations;
    if (batch.size() == kBatch) flushSpans();
  }
  flushSpans();
  out.spans = count;

  std::vector<GpuActivityRecord> gpu;
  gpu.reserve(kBatch);
  for (uint32_t i = 0; i < events.size(); ++i) {
    const KinetoEvent& e = events[i];
    if (!isGpuRecord(e.kind) || !kept(i)) continue;
    const uint32_t l = res.launch[i];
    if (keep && l != kNoEvent && !(*keep)[l]) continue;
    GpuActivityRecord g;
    g.track = tracks[e.track];
    g.start = res.base_ns + e.ts;
    g.end = g.start + e.dur;
    g.name = nameId(e.name);
    g.kind = e.kind == KinetoKind::Kernel   ? GpuActivityKind::Kernel
             : e.kind == KinetoKind::Memcpy ? GpuActivityKind::Memcpy
                                            : GpuActivityKind::Memset;
    g.device = static_cast<int32_t>(file.tracks[e.track].pid);
    g.stream = file.tracks[e.track].tid;
    g.correlation = e.correlation;
    g.span = l != kNoEvent && ordinal[l] != kNoEvent ? firstId + ordinal[l] : kNone;
    if (auto b = res.bytes.find(i); b != res.bytes.end()) g.bytes = b->second;
    if (g.kind == GpuActivityKind::Kernel) ++out.kernels;
    if (g.kind == GpuActivityKind::Memcpy) ++out.memcpys;
    if (g.kind == GpuActivityKind::Memset) ++out.memsets;
    (g.span == kNone ? out.unlinked : out.linked) += 1;
    gpu.push_back(g);
    if (gpu.size() == kBatch) {
      writer_.addGpuActivity(gpu);
      gpu.clear();
    }
  }
  writer_.addGpuActivity(gpu);
}

uint32_t RankWriter::nameId(uint32_t name) {
  if (name >= writerNames_.size()) writerNames_.resize(names_.size(), kNoEvent);
  uint32_t& id = writerNames_[name];
  if (id == kNoEvent) id = writer_.intern(names_.text(name));
  return id;
}

std::vector<int32_t> RankWriter::addTracks(const KinetoFile& file, int32_t rank,
                                           const std::vector<bool>* keep) {
  std::vector<bool> used(file.tracks.size(), false);
  for (uint32_t i = 0; i < file.events.size(); ++i) {
    if (!keep || (*keep)[i]) used[file.events[i].track] = true;
  }
  std::vector<uint32_t> order;
  for (uint32_t t = 0; t < file.tracks.size(); ++t) {
    if (used[t]) order.push_back(t);
  }
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const KinetoTrack& x = file.tracks[a];
    const KinetoTrack& y = file.tracks[b];
    if (x.gpu != y.gpu) return !x.gpu;
    if (x.pid != y.pid) return x.pid < y.pid;
    const bool xMain = !x.gpu && x.tid == x.pid, yMain = !y.gpu && y.tid == y.pid;
    if (xMain != yMain) return xMain;
    return x.tid < y.tid;
  });
  std::vector<int32_t> ids(file.tracks.size(), kNone);
  int32_t position = 0;
  for (uint32_t t : order) {
    const KinetoTrack& k = file.tracks[t];
    TrackInfo info;
    info.rank = rank;
    info.order = position++;
    if (k.gpu) {
      info.kind = TrackKind::GpuStream;
      info.device = static_cast<int32_t>(k.pid);
      info.stream = k.tid;
      info.name = "GPU " + std::to_string(k.pid) + " stream " + std::to_string(k.tid);
    } else {
      info.kind = TrackKind::HostThread;
      const auto it = file.thread_names.find({k.pid, k.tid});
      info.name = it != file.thread_names.end() ? it->second : "thread " + std::to_string(k.tid);
    }
    ids[t] = writer_.addTrack(info);
  }
  return ids;
}

}  // namespace moescope::storage
