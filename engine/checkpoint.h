// safetensors checkpoints of the full model (MODEL.md): 8-byte little-endian header length, JSON header,
// raw F32 row-major data; __metadata__ holds {"format": "moescope", "config": <[model] as TOML>}.
#pragma once

#include <cstdint>
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

// Writes to path + ".tmp" and renames it over path when complete.
void saveCheckpoint(const std::string& path, const ModelConfig& model, const ModelWeights& weights);

// Reads a checkpoint and checks it against the model: every expected tensor present as F32 with the
// expected shape, nothing else. Any problem: InputError naming the file and the tensor.
ModelWeights loadCheckpoint(const std::string& path, const ModelConfig& model);

}  // namespace moescope::engine
