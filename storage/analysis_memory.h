// Peak memory, from what each rank recorded per step on a counter track:
// - activations: the bytes of saved activations it held at the step's worst moment
//   (kPeakActivationCounter). What a schedule costs in memory, beside its bubble.
// - device memory: the most the engine's allocations held on its device since the run started
//   (kPeakDeviceMemoryCounter; backends that count it, CUDA), with the step metrics' per-step peak
//   (StepMetric::peak_memory_bytes) beside it for runs whose ranks recorded no counter.
// A stage's peak is the largest sample of any of its ranks in any step.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/trace.h"

namespace moescope::storage {

struct StagePeak {
  int32_t stage = 0;
  int64_t bytes = 0;
  bool operator==(const StagePeak&) const = default;
};

// Sorted by stage; stages whose ranks recorded no such counter are left out. A rank the rank table does
// not list counts as stage 0 (as in activity.h).
std::vector<StagePeak> peakActivationPerStage(const Trace& trace);

// The largest over every stage; 0 when none was recorded.
int64_t peakActivation(const Trace& trace);

// As peakActivationPerStage, from the device memory counters.
std::vector<StagePeak> peakDeviceMemoryPerStage(const Trace& trace);

// The run's device memory peak: the largest of every rank's counter and every step metric's peak; 0
// when the run counted none (a CPU run, an import, a file written before version 6).
int64_t peakDeviceMemory(const Trace& trace);

}  // namespace moescope::storage
