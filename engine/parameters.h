// The model's parameters as MODEL.md names them, their initialisation from the seed, and how a
// tensor-parallel rank holds a shard of each.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/config.h"

namespace moescope::engine {

enum class InitKind { Normal, Zeros, Ones };

struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  InitKind init = InitKind::Zeros;
  double stddev = 0;   // InitKind::Normal
  bool decay = false;  // weight decay: tensors of two or more dimensions
  int64_t numel() const;
  bool operator==(const ParamSpec&) const = default;
};

// Every parameter of the full model, in checkpoint order: wte, wpe, h.0..., ln_f, lm_head.
std::vector<ParamSpec> modelParameters(const ModelConfig& model);
// The parameters of one layer (h.{layer}.*), of the embeddings (wte, wpe) and of the head (ln_f, lm_head).
std::vector<ParamSpec> layerParameters(const ModelConfig& model, int layer);
std::vector<ParamSpec> embeddingParameters(const ModelConfig& model);
std::vector<ParamSpec> headParameters(const ModelConfig& model);

// The initial values of a full tensor: a function of (seed, name, index) only, so the same seed gives
// the same model whatever the layout. Normal values come from a counter-based generator keyed by the
// seed and the tensor's name.
std::vector<float> initialValues(const ParamSpec& spec, uint64_t seed);

// How a rank's local tensor relates to the full one.
struct Shard {
  enum class Split {
    Full,     // the whole tensor (replicated)
    Rows,     // rows [part * rows / parts, ...): column-parallel weights and biases
    Cols,     // columns of a [out, in] weight: row-parallel weights
    QkvRows,  // c_attn: the part's rows of each of the q, k and v blocks
  };
  Split split = Split::Full;
  int part = 0, parts = 1;
  bool operator==(const Shard&) const = default;
};

// Shape of the local tensor.
std::vector<int64_t> shardShape(const std::vector<int64_t>& full, const Shard& shard);
// The local values cut from a full tensor, and the full tensor's region filled from local values.
std::vector<float> sliceShard(const std::vector<float>& full, const std::vector<int64_t>& shape,
                              const Shard& shard);
void placeShard(std::vector<float>& full, const std::vector<int64_t>& shape, const Shard& shard,
                const std::vector<float>& local);

}  // namespace moescope::engine
