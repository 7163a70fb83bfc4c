#include "storage/export_csv.h"

#include "storage/text_writer.h"

namespace moescope::storage {

int64_t exportSpansCsv(const Trace& trace, std::ostream& out) {
  TextWriter w(out);
  w.raw(
      "track,rank,stage,start_ns,end_ns,duration_ns,name,category,phase,step,microbatch,layer,expert,"
      "bytes,chunk\n");
  int64_t rows = 0;
  auto optional = [&w](int64_t v) -> TextWriter& {
    if (v != kNone) w.integer(v);
    return w.put(',');
  };
  for (size_t t = 0; t < trace.tracks.size() && t < trace.spans.size(); ++t) {
    const TrackInfo& info = trace.tracks[t];
    const RankInfo* rank = trace.rank(info.rank);
    const SpanColumns& c = trace.spans[t];
    for (size_t i = 0; i < c.size(); ++i) {
      w.integer(info.id).put(',').integer(info.rank).put(',');
      optional(rank ? rank->stage : kNone);
      w.integer(c.start[i]).put(',').integer(c.endAt(i)).put(',').integer(c.durationAt(i)).put(',');
      w.csvField(trace.name(c.name[i])).put(',');
      w.raw(categoryName(c.category[i])).put(',').raw(phaseName(c.phase[i])).put(',');
      optional(c.stepAt(i));
      optional(c.microbatch[i]);
      optional(c.layer[i]);
      optional(c.expert[i]);
      w.integer(c.bytesAt(i)).put(',');
      if (c.chunk[i] != kNone) w.integer(c.chunk[i]);
      w.put('\n');
      ++rows;
    }
  }
  w.flush();
  return rows;
}

}  // namespace moescope::storage
