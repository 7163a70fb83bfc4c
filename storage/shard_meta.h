// The words of a run recorded by several processes: each process writes an ordinary run file, its
// shard, into `RUN.moescope.shards/shard-<index>.moescope`, with these run_meta keys, and a merge
// (storage/shard_merge.h) makes them one run file. Part of the vocabulary, so that the engine (which
// writes shards through the tracer) and storage (which merges them) share one spelling.
//
// Clocks: every process measures its clock against rank 0's (engine/mpi_clock.h) and stores the
// correction that maps its own time onto rank 0's:
//     t_rank0 = t + offset_ns + (t - reference_ns) × drift_ppb / 1e9
// with the uncertainty of that mapping (half the best ping-pong round trip). Processes of one host
// share CLOCK_MONOTONIC: their correction is 0/0/0 and clock.source says "host".
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace moescope::storage {

inline constexpr std::string_view kShardIndexKey = "shard.index";   // 0-based, the process's index
inline constexpr std::string_view kShardCountKey = "shard.count";   // processes of the run
inline constexpr std::string_view kShardRunIdKey = "shard.run_id";  // the same in every shard of a run
inline constexpr std::string_view kShardRanksKey = "shard.ranks";   // the global ranks it holds: "2,3"
inline constexpr std::string_view kClockOffsetKey = "clock.offset_ns";
inline constexpr std::string_view kClockDriftKey = "clock.drift_ppb";
inline constexpr std::string_view kClockUncertaintyKey = "clock.uncertainty_ns";
inline constexpr std::string_view kClockReferenceKey = "clock.reference_ns";  // where offset_ns was measured
inline constexpr std::string_view kClockSourceKey = "clock.source";           // "host", "mpi ping-pong"
// Set on a merged run: how many processes recorded it.
inline constexpr std::string_view kRunProcessesKey = "run.processes";

// The folder of a run's shards and a shard's file name.
inline std::string shardsFolderName(std::string_view runFile) {
  return std::string(runFile) + ".shards";
}
inline std::string shardFileName(int index) {
  return "shard-" + std::to_string(index) + ".moescope";
}

// A merged run keeps every rank's clock correction as "rank.<r>.<clock key>", e.g.
// "rank.3.clock.uncertainty_ns", and the process that recorded the rank as "rank.<r>.process".
inline std::string rankMetaKey(int32_t rank, std::string_view key) {
  return "rank." + std::to_string(rank) + "." + std::string(key);
}

struct ClockCorrection {
  int64_t offset_ns = 0;
  double drift_ppb = 0;  // the local clock runs this many ns per second slow against rank 0's
  int64_t uncertainty_ns = 0;
  int64_t reference_ns = 0;
  std::string source = "host";

  // This process's time t on rank 0's clock.
  int64_t apply(int64_t t) const {
    return t + offset_ns +
           static_cast<int64_t>(std::llround(static_cast<double>(t - reference_ns) * drift_ppb * 1e-9));
  }
  bool operator==(const ClockCorrection&) const = default;
};

}  // namespace moescope::storage
