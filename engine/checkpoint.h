// safetensors checkpoints of the full model (MODEL.md): 8-byte little-endian header length, JSON header,
// raw F32 row-major data; __metadata__ holds {"format": "moescope", "config": <[model] as TOML>}.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "engine/config.h"

namespace moescope::engine {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
  bool operator==(const NamedTensor&) const = default;
};

// The full model's weights, in modelParameters() order.
using ModelWeights = std::vector<NamedTensor>;

// Writes the checkpoint to a stream. The caller makes it a file (moescope-cli through storage's
// OutputFile, so that a checkpoint appears whole under its name or not at all).
void writeCheckpoint(std::ostream& out, const ModelConfig& model, const ModelWeights& weights);

// Reads a checkpoint and checks it against the model: a regular file, a JSON header of at most
// kMaxHeaderBytes, every expected tensor present as F32 with the expected shape and its data inside
// the file, nothing else. Any problem: InputError naming the file (and the tensor).
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;  // safetensors' own limit
ModelWeights loadCheckpoint(const std::string& path, const ModelConfig& model);
ModelWeights loadCheckpoint(const std::string& path, const ModelConfig& model);

}  // namespace moescope::engine
