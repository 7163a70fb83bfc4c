// PyTorch profiler (Kineto) traces, one file per rank, into one run file: every rank's host threads and
// GPU streams as tracks, its ranges as spans with the meaning the naming rules, the nesting and the
// schedule give them (import_resolve.h), its kernels, copies and memsets as GPU records tied to the
// calls that launched them, the step markers as steps, and what was seen and how it was read in the
// run's meta ("import.*").
//
// Clock: every event is placed at its file's baseTimeNanoseconds plus its ts, so the ranks are aligned
// by the clocks of the hosts that wrote them (each host's wall clock as Kineto read it; no
// synchronisation between hosts is attempted). The run says so (RunInfo::clock, "import.clock").
//
// Files are read one at a time, streamed (import_json.h), resolved and written before the next is read:
// an import holds one rank's events at a time, about 60 bytes each.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/import_layout.h"
#include "storage/import_rank_writer.h"  // ImportedRank
#include "storage/trace_model.h"

namespace moescope::storage {

struct ImportOptions {
  std::vector<std::filesystem::path> traces;
  std::filesystem::path output;
  // The layout: sizes not given follow from the traces' world size (dp takes what pp and tp leave).
  std::optional<int32_t> pp, tp, dp;
  std::string order = "tp-dp-pp";
  Schedule schedule = Schedule::OneFOneB;
  std::vector<std::filesystem::path> rules;  // user rule files, before the shipped sets
  std::optional<int32_t> rank;               // the rank of a single trace that does not say
  // Bytes of the trace files read so far and in all; called often, from the importing thread.
  std::function<void(uint64_t done, uint64_t total)> progress;
  const std::atomic<bool>* cancel = nullptr;  // raised: stop, write nothing (ImportCancelled)
};

struct ImportSummary {
  ParallelLayout layout;
  std::vector<ImportedRank> ranks;  // in the order of the traces
  int64_t spans = 0, gpu_records = 0;
  int32_t steps = 0, microbatches = 0;
  // Anomalies worth a line to the user ("a.json: 3 events of unknown categories kept as user").
  std::vector<std::string> notes;
};

// Imports the traces into options.output, replacing a file of that name only once the import is whole.
// Throws ImportError (a trace that is not JSON, not a Kineto trace, truncated, traces of different runs,
// a layout that does not fit them), RulesError (a bad rules file), ImportCancelled, or StorageError (the
// output cannot be written). On any of them nothing is left under the output's name or beside it.
ImportSummary importTraces(const ImportOptions& options);

// The rank a trace's file name gives ("rank3.json", "rank-3.json.gz", "trace_rank_12.pt.trace.json"), if any.
std::optional<int32_t> rankFromFileName(const std::filesystem::path& path);

}  // namespace moescope::storage
