// What a config needs in memory, estimated before any work starts, so that a model too large for the
// machine is refused with "needs X GiB, Y available" rather than meeting std::bad_alloc or the OOM
// killer after its run file was made. Counted in double from the config alone (no tensor list is built:
// a config within the key limits can name 10^10 tensors), so no size overflows.
#pragma once

#include <cstdint>
#include <optional>

#include "engine/config.h"

namespace moescope::engine {

// One rank's share: parameters with gradients and AdamW moments, and the activations one step keeps.
struct MemoryNeed {
  double parameters = 0;        // elements the rank holds
  double state_bytes = 0;       // parameters, gradients and two moments, fp32
  double activation_bytes = 0;  // every micro-batch's activations (GPipe's worst case), fp32
  double totalBytes() const { return state_bytes + activation_bytes; }
};

// The rank that needs the most (the stages differ in layers, embedding and head).
MemoryNeed largestRankNeed(const Config& config);

// Beyond this a config cannot run anywhere (1 PiB per rank); refused whatever the backend, which also
// keeps every backend's own estimate (int64) far from overflowing.
inline constexpr double kMaxBytesPerRank = double(int64_t{1} << 50);
// InputError "the model needs about X GiB per rank, ..." above kMaxBytesPerRank.
void checkModelSize(const Config& config);

// The CPU backend: all ranks are threads of one process. InputError "the run needs about X GiB of
// memory (...), Y GiB available" when the estimate for every rank together exceeds `available` bytes
// (MemAvailable from /proc/meminfo when not given; no check where that cannot be read).
void checkHostMemory(const Config& config, std::optional<double> available = std::nullopt);

// MemAvailable of /proc/meminfo in bytes, or nothing.
std::optional<double> availableHostMemory();

}  // namespace moescope::engine
