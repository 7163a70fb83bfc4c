#include "planner/predicted_run.h"

#include <system_error>
#include <vector>

#include "storage/run_writer.h"

namespace moescope::planner {

void writePrediction(const Prediction& p, const std::filesystem::path& path) {
  const storage::Trace& t = p.trace;
  std::filesystem::path partial = path;
  partial += ".partial";
  try {
    {
      std::unique_ptr<storage::RunWriter> w = storage::RunWriter::create(partial, t.run);
      for (const std::string& s : t.strings) w->intern(s);
      for (const storage::RankInfo& r : t.ranks) w->addRank(r);
      for (const storage::TrackInfo& track : t.tracks) w->addTrack(track);
      std::vector<storage::SpanRecord> batch;
      for (size_t id = 0; id < t.spans.size(); ++id) {
        const storage::SpanColumns& c = t.spans[id];
        batch.clear();
        for (size_t i = 0; i < c.size(); ++i) {
          const storage::SpanView v = c.at(i, static_cast<int32_t>(id));
          batch.push_back({v.track, v.start, v.end, v.name, v.category, v.phase, v.step, v.microbatch,
                           v.layer, v.expert, v.bytes, v.chunk});
        }
        w->addSpans(batch);
      }
      w->addCounters(t.counters);
      for (const storage::StepMetric& m : t.steps) w->addStepMetric(m);
      w->updateRun(t.run);
      w->finish();
    }
    std::filesystem::rename(partial, path);
  } catch (...) {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(partial.string() + suffix, ignored);
    throw;
  }
}

}  // namespace moescope::planner
