#include "storage/export_chrome.h"

#include <algorithm>
#include <string>

#include "storage/saturating.h"
#include "storage/text_writer.h"

namespace moescope::storage {
namespace {

// GPU streams go under a process of their own per GPU, numbered apart from the ranks.
constexpr int32_t kGpuPidBase = 1 << 20;
int32_t gpuPid(const TrackInfo& t) {
  return kGpuPidBase + std::max(t.device, 0);
}

// Events are streamed straight into a buffer rather than built as a nlohmann::json tree: a tree costs
// a dozen heap nodes per span and holds the whole export in memory before a byte is written, which
// for millions of spans means gigabytes and seconds; streaming keeps memory flat and runs at millions
// of spans per second.
class ChromeWriter {
 public:
  ChromeWriter(const Trace& trace, std::ostream& out) : trace_(trace), w_(out), origin_(trace.startTime()) {}

  int64_t write() {
    w_.raw("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"run\":").jsonString(trace_.run.name);
    w_.raw(",\"layout\":").jsonString(trace_.run.layout);
    w_.raw(",\"backend\":").jsonString(trace_.run.backend);
    w_.raw(",\"status\":").jsonString(runStatusName(trace_.run.status));
    w_.raw(",\"clock\":").jsonString(trace_.run.clock);
    w_.raw(",\"origin_ns\":").integer(origin_);
    w_.raw("},\n\"traceEvents\":[\n");
    writeMetadata();
    for (size_t t = 0; t < trace_.tracks.size() && t < trace_.spans.size(); ++t) {
      if (trace_.tracks[t].kind != TrackKind::GpuStream) writeSpans(t);  // GPU records: writeGpu
    }
    writeGpu();
    writeCounters();
    w_.raw("\n]}\n");
    w_.flush();
    return events_;
  }

 private:
  void begin(char phase, int32_t pid) {
    w_.raw(events_++ ? ",\n{\"ph\":\"" : "{\"ph\":\"").put(phase).raw("\",\"pid\":").integer(pid);
  }
  void metaName(const char* what, int32_t pid, const int32_t* tid, std::string_view name) {
    begin('M', pid);
    if (tid) w_.raw(",\"tid\":").integer(*tid);
    w_.raw(",\"name\":\"").raw(what).raw("\",\"args\":{\"name\":").jsonString(name).raw("}}");
  }
  void metaSort(const char* what, int32_t pid, const int32_t* tid, int64_t index) {
    begin('M', pid);
    if (tid) w_.raw(",\"tid\":").integer(*tid);
    w_.raw(",\"name\":\"").raw(what).raw("\",\"args\":{\"sort_index\":").integer(index).raw("}}");
  }

  void writeMetadata() {
    std::vector<int32_t> ranksSeen;
    for (const TrackInfo& t : trace_.tracks) {
      if (std::find(ranksSeen.begin(), ranksSeen.end(), t.rank) != ranksSeen.end()) continue;
      ranksSeen.push_back(t.rank);
      std::string name = "rank " + std::to_string(t.rank);
      if (const RankInfo* r = trace_.rank(t.rank)) {
        name += " (stage " + std::to_string(r->stage) + ", tp " + std::to_string(r->tp_rank) + ", dp " +
                std::to_string(r->dp_rank) + ")";
      }
      metaName("process_name", t.rank, nullptr, name);
      metaSort("process_sort_index", t.rank, nullptr, t.rank);
    }
    std::vector<int32_t> gpusSeen;
    for (const TrackInfo& t : trace_.tracks) {
      if (t.kind != TrackKind::GpuStream) continue;
      const int32_t pid = gpuPid(t);
      if (std::find(gpusSeen.begin(), gpusSeen.end(), pid) != gpusSeen.end()) continue;
      gpusSeen.push_back(pid);
      metaName("process_name", pid, nullptr,
               "GPU " + std::to_string(t.device) + " (rank " + std::to_string(t.rank) + ")");
      metaSort("process_sort_index", pid, nullptr, pid);
    }
    for (const TrackInfo& t : trace_.tracks) {
      if (t.kind == TrackKind::Counter) continue;  // counters are named by their events
      const int32_t pid = t.kind == TrackKind::GpuStream ? gpuPid(t) : t.rank;
      metaName("thread_name", pid, &t.id,
               t.kind == TrackKind::GpuStream ? "stream " + std::to_string(t.stream) : t.name);
      metaSort("thread_sort_index", pid, &t.id, t.order);
    }
  }

  void writeSpans(size_t track) {
    const TrackInfo& info = trace_.tracks[track];
    const SpanColumns& c = trace_.spans[track];
    const RankInfo* rank = trace_.rank(info.rank);
    for (size_t i = 0; i < c.size(); ++i) {
      begin('X', info.rank);
      w_.raw(",\"tid\":").integer(info.id);
      w_.raw(",\"ts\":").micros(saturatingSub(c.start[i], origin_));
      w_.raw(",\"dur\":").micros(c.durationAt(i));
      w_.raw(",\"name\":").jsonString(trace_.name(c.name[i]));
      w_.raw(",\"cat\":\"").raw(categoryName(c.category[i])).raw("\",\"args\":{");
      bool first = true;
      auto arg = [&](const char* key, int64_t v) {
        if (v == kNone) return;
        w_.raw(first ? "\"" : ",\"").raw(key).raw("\":").integer(v);
        first = false;
      };
      arg("stage", rank ? rank->stage : kNone);
      arg("step", c.stepAt(i));
      arg("microbatch", c.microbatch[i]);
      arg("layer", c.layer[i]);
      arg("expert", c.expert[i]);
      arg("chunk", c.chunk[i]);
      if (const int64_t b = c.bytesAt(i); b > 0) arg("bytes", b);
      if (c.phase[i] != Phase::None) {
        w_.raw(first ? "\"phase\":\"" : ",\"phase\":\"").raw(phaseName(c.phase[i])).put('"');
      }
      w_.raw("}}");
    }
  }

  void writeGpu() {
    static constexpr const char* kKinds[] = {"gpu.kernel", "gpu.memcpy", "gpu.memset"};
    for (const GpuActivityRecord& g : trace_.gpu) {
      if (g.track < 0 || static_cast<size_t>(g.track) >= trace_.tracks.size()) continue;
      const TrackInfo& info = trace_.tracks[static_cast<size_t>(g.track)];
      const int32_t pid = info.kind == TrackKind::GpuStream ? gpuPid(info) : info.rank;
      begin('X', pid);
      w_.raw(",\"tid\":").integer(info.id);
      w_.raw(",\"ts\":").micros(saturatingSub(g.start, origin_));
      w_.raw(",\"dur\":").micros(saturatingSub(g.end, g.start));
      w_.raw(",\"name\":").jsonString(trace_.name(g.name));
      w_.raw(",\"cat\":\"").raw(kKinds[static_cast<size_t>(g.kind) % 3]);
      w_.raw("\",\"args\":{\"device\":").integer(g.device);
      w_.raw(",\"stream\":").integer(g.stream);
      w_.raw(",\"correlation\":").integer(g.correlation);
      if (g.span != kNone) w_.raw(",\"span\":").integer(g.span);
      if (g.bytes > 0) w_.raw(",\"bytes\":").integer(g.bytes);
      w_.raw("}}");
      if (const LinkedSpan* l = trace_.linkedSpan(g.span)) writeFlow(*l, pid, info.id, g.start);
    }
  }

  // An arrow from the span that launched a GPU record to the record: a flow start bound to the span
  // (at its start, on its thread) and a flow end bound to the enclosing slice, the record.
  void writeFlow(const LinkedSpan& l, int32_t gpuPid, int32_t gpuTid, int64_t at) {
    if (l.span.track < 0 || static_cast<size_t>(l.span.track) >= trace_.tracks.size()) return;
    const TrackInfo& host = trace_.tracks[static_cast<size_t>(l.span.track)];
    const int64_t id = ++flows_;
    begin('s', host.rank);
    w_.raw(",\"tid\":").integer(host.id);
    w_.raw(",\"ts\":").micros(saturatingSub(l.span.start, origin_));
    w_.raw(",\"id\":").integer(id).raw(",\"name\":\"launch\",\"cat\":\"launch\"}");
    begin('f', gpuPid);
    w_.raw(",\"tid\":").integer(gpuTid);
    w_.raw(",\"ts\":").micros(saturatingSub(at, origin_));
    w_.raw(",\"id\":").integer(id).raw(",\"bp\":\"e\",\"name\":\"launch\",\"cat\":\"launch\"}");
  }

  void writeCounters() {
    for (const CounterSample& s : trace_.counters) {
      if (s.track < 0 || static_cast<size_t>(s.track) >= trace_.tracks.size()) continue;
      const TrackInfo& info = trace_.tracks[static_cast<size_t>(s.track)];
      begin('C', info.rank);
      w_.raw(",\"ts\":").micros(saturatingSub(s.time, origin_));
      w_.raw(",\"name\":").jsonString(info.name);
      w_.raw(",\"args\":{\"value\":").real(s.value).raw("}}");
    }
  }

  const Trace& trace_;
  TextWriter w_;
  int64_t origin_;
  int64_t events_ = 0;
  int64_t flows_ = 0;
};

}  // namespace

int64_t exportChromeTrace(const Trace& trace, std::ostream& out) {
  return ChromeWriter(trace, out).write();
}

}  // namespace moescope::storage
