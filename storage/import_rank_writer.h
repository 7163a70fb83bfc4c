// Writes one rank of a trace read into KinetoFile columns (an imported Kineto trace, or a recorded
// process's NVTX ranges, launch calls and GPU records): its tracks, its ranges as spans with the
// meaning resolveRank gave them, and its GPU records tied to the spans of their launching calls.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/import_kineto.h"
#include "storage/import_resolve.h"
#include "storage/run_writer.h"

namespace moescope::storage {

// What was written of one rank.
struct ImportedRank {
  int32_t rank = 0;
  std::string trace;
  int32_t stage = 0, tp_rank = 0, dp_rank = 0;
  int32_t device = kNone;
  std::string host;
  int64_t spans = 0;
  int64_t kernels = 0, memcpys = 0, memsets = 0;
  int64_t annotations = 0;  // user_annotation and gpu_user_annotation
  int64_t linked = 0;       // GPU records tied to their launch call
  int64_t unlinked = 0;
  bool operator==(const ImportedRank&) const = default;
};

class RankWriter {
 public:
  // writerNames: the writer's string id per name id of `names`, filled as names are written.
  RankWriter(RunWriter& writer, const NameTable& names, std::vector<uint32_t>& writerNames)
      : writer_(writer), names_(names), writerNames_(writerNames) {}

  // keep: per event, whether to write it (nullptr: every event). A GPU record whose launching call is
  // left out is left out too.
  void write(const KinetoFile& file, const RankResolution& res, int32_t rank, ImportedRank& out,
             const std::vector<bool>* keep = nullptr);

 private:
  uint32_t nameId(uint32_t name);
  // The rank's tracks that hold kept events: host threads first (the process's main thread, then by
  // thread id), then GPU streams by device and stream. Returns the run's track id per file track.
  std::vector<int32_t> addTracks(const KinetoFile& file, int32_t rank, const std::vector<bool>* keep);

  RunWriter& writer_;
  const NameTable& names_;
  std::vector<uint32_t>& writerNames_;
};

}  // namespace moescope::storage
