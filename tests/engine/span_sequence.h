// What the stage pass decides about a traced run, per rank: its spans in start order as (name,
// category, phase, step, micro-batch, layer, expert, chunk), `wait` spans left out (they depend on timing).
// Two backends, or two element types of one backend, must give the same sequences for the same config.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/trainer.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"
#include "tracer/tracer.h"

namespace moescope::engine::testing {

struct SpanKey {
  std::string name;
  storage::Category category = storage::Category::Wait;
  storage::Phase phase = storage::Phase::None;
  int step = 0, microbatch = 0, layer = 0, expert = 0, chunk = 0;
  bool operator==(const SpanKey&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const SpanKey& k) {
  return os << k.name << "/" << storage::categoryName(k.category) << "/" << storage::phaseName(k.phase)
            << "/s" << k.step << "/mb" << k.microbatch << "/L" << k.layer << "/E" << k.expert << "/C"
            << k.chunk;
}

// rank -> its spans in start order (ties in program order: the file keeps each track's order).
inline std::map<int, std::vector<SpanKey>> spanSequences(const storage::Trace& trace) {
  std::map<int, std::vector<SpanKey>> out;
  for (const auto& track : trace.tracks) {
    if (track.kind != storage::TrackKind::HostThread) continue;
    const auto& cols = trace.spans[static_cast<size_t>(track.id)];
    std::vector<std::pair<int64_t, SpanKey>> spans;
    for (size_t i = 0; i < cols.size(); ++i) {
      const auto s = cols.at(i, track.id);
      if (s.category == storage::Category::Wait) continue;
      spans.push_back({s.start,
                       {std::string(trace.name(s.name)), s.category, s.phase, s.step, s.microbatch, s.layer,
                        s.expert, s.chunk}});
    }
    std::stable_sort(spans.begin(), spans.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    auto& seq = out[track.rank];
    for (auto& [start, key] : spans) seq.push_back(std::move(key));
  }
  return out;
}

// Trains c on data (traced) with the backend into the run file `path`, marked complete; the steps' reports.
inline std::vector<StepReport> trainInto(Config c, const TokenData& data, Backend& backend,
                                         const std::filesystem::path& path) {
  c.trace.enabled = true;
  validate(c);
  auto tracer = tracer::Tracer::open(path, makeRunInfo(c, backend, path.stem().string()));
  TrainOptions options;
  options.config = c;
  options.data = &data;
  options.backend = &backend;
  options.tracer = tracer.get();
  TrainResult result = train(options);
  tracer->finish(storage::RunStatus::Complete, "");
  tracer.reset();
  return std::move(result.steps);
}

// Trains c on data (traced) with the backend into a temporary run file and reads it back.
inline storage::Trace tracedRun(Config c, const TokenData& data, Backend& backend) {
  const moescope::testing::TempRunFile file("spans.moescope");
  trainInto(std::move(c), data, backend, file.path());
  return storage::RunReader::open(file.path())->load();
}

// Every rank's sequence equal between two runs; the first difference of each rank is reported.
inline void expectSameSpans(const storage::Trace& a, const storage::Trace& b, const std::string& what) {
  const auto sa = spanSequences(a), sb = spanSequences(b);
  ASSERT_EQ(sa.size(), sb.size()) << what << ": ranks";
  for (const auto& [rank, seq] : sa) {
    const auto& other = sb.at(rank);
    EXPECT_EQ(seq.size(), other.size()) << what << ": rank " << rank << " span count";
    for (size_t i = 0; i < std::min(seq.size(), other.size()); ++i) {
      if (seq[i] == other[i]) continue;
      ADD_FAILURE() << what << ": rank " << rank << " span " << i << ": " << seq[i] << " vs " << other[i];
      break;
    }
  }
}

}  // namespace moescope::engine::testing
