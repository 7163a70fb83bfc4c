// Writes traces built in memory (test_traces.h) to run files, for the tests that open files.
#pragma once

#include <filesystem>
#include <vector>

#include "storage/run_writer.h"
#include "storage/trace.h"

namespace moescope::ui::test {

// Writes every rank, track, span and step of trace; leaves the writer open when keepOpen (for a run
// that is still growing), else marks the run complete.
inline std::unique_ptr<storage::RunWriter> writeRun(
    const std::filesystem::path& path, const storage::Trace& trace,
    storage::RunStatus status = storage::RunStatus::Complete) {
  storage::RunInfo run = trace.run;
  run.name = "test run";
  run.layout = "ppmoe";
  run.backend = "cpu";
  auto writer = storage::RunWriter::create(path, run);
  std::vector<uint32_t> ids;
  for (const auto& s : trace.strings) ids.push_back(writer->intern(s));
  for (const auto& r : trace.ranks) writer->addRank(r);
  for (const auto& t : trace.tracks) writer->addTrack(t);
  std::vector<storage::SpanRecord> spans;
  for (size_t t = 0; t < trace.spans.size(); ++t) {
    const auto& c = trace.spans[t];
    for (size_t i = 0; i < c.size(); ++i) {
      const storage::SpanView v = c.at(i, static_cast<int32_t>(t));
      storage::SpanRecord r;
      r.track = v.track;
      r.start = v.start;
      r.end = v.end;
      r.name = ids.at(v.name);
      r.category = v.category;
      r.phase = v.phase;
      r.step = v.step;
      r.microbatch = v.microbatch;
      r.layer = v.layer;
      r.expert = v.expert;
      r.bytes = v.bytes;
      spans.push_back(r);
    }
  }
  writer->addSpans(spans);
  for (const auto& s : trace.steps) writer->addStepMetric(s);
  if (status != storage::RunStatus::Running) writer->setStatus(status, "", trace.run.end_ns);
  writer->commit();
  return writer;
}

}  // namespace moescope::ui::test
