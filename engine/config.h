// The run configuration of MODEL.md: every key with its default, read from TOML, overridden by
// `--set section.key=value`, checked against the layout rules before any work starts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/schedule.h"

namespace moescope::engine {

struct ModelConfig {
  int64_t vocab_size = 256;
  int64_t seq_len = 64;
  int64_t d_model = 128;
  int64_t n_heads = 4;
  int64_t n_layers = 4;
  int64_t d_ff = 512;
  int64_t n_experts = 8;
  int64_t top_k = 2;
  double capacity_factor = 0.0;
  int64_t moe_every = 1;
  double aux_loss_coef = 0.01;

  int64_t headSize() const { return d_model / n_heads; }
  bool isMoeLayer(int64_t layer) const { return n_experts > 0 && layer % moe_every == moe_every - 1; }
  bool operator==(const ModelConfig&) const = default;
};

struct ParallelConfig {
  std::string layout = "ppmoe";  // "ppmoe" | "dpmoe"; ignored when n_experts == 0
  int64_t pp = 1;
  int64_t tp = 1;
  int64_t dp = 1;
  int64_t microbatches = 1;
  std::string schedule = "1f1b";  // "gpipe" | "1f1b" | "interleaved" | "zb-h1"
  int64_t virtual_stages = 1;     // model chunks per stage; > 1 only with "interleaved"
  bool operator==(const ParallelConfig&) const = default;
};

struct TrainConfig {
  int64_t global_batch = 8;
  int64_t steps = 10;
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  int64_t seed = 1234;
  // The CUDA backend's compute precision: "bf16" (bf16 operands, fp32 accumulation and fp32 master
  // weights, gradients and Adam state) or "fp32" (everything fp32, no TF32). The CPU backend always
  // computes in fp32.
  std::string precision = "bf16";
  bool operator==(const TrainConfig&) const = default;
};

struct DataConfig {
  std::string path;  // "" = built-in sample corpus, "random", or a file
  bool operator==(const DataConfig&) const = default;
};

struct TraceConfig {
  bool enabled = true;
  bool operator==(const TraceConfig&) const = default;
};

struct Config {
  ModelConfig model;
  ParallelConfig parallel;
  TrainConfig train;
  DataConfig data;
  TraceConfig trace;

  int64_t worldSize() const { return parallel.pp * parallel.tp * parallel.dp; }
  // Sequences per micro-batch: global_batch / (dp * microbatches).
  int64_t microbatchSize() const { return train.global_batch / (parallel.dp * parallel.microbatches); }
  int64_t tokensPerStep() const { return train.global_batch * model.seq_len; }
  bool dense() const { return model.n_experts == 0; }
  // "dense" when n_experts == 0, else parallel.layout.
  std::string layoutName() const { return dense() ? "dense" : parallel.layout; }
  bool dpmoe() const { return !dense() && parallel.layout == "dpmoe"; }
  bool operator==(const Config&) const = default;
};

// Parses TOML text (source names the file in messages). Unknown sections or keys, wrong value types:
// InputError. Does not check the layout rules; call validate().
Config parseConfig(std::string_view toml_text, std::string_view source = "config");
Config loadConfigFile(const std::string& path);

// Applies "section.key=value" (value in TOML syntax; a bare word is taken as a string).
void applyOverride(Config& config, std::string_view assignment);

// Checks value ranges and MODEL.md's layout rules; throws InputError with one line naming the problem.
// The schedule's rules are scheduleProblem's (engine/schedule.h), which the planner asks too.
void validate(const Config& config);

// The schedule's shape: schedule, pp, micro-batches and virtual stages (validated first).
PipelineShape pipelineShape(const Config& config);

// The whole configuration as TOML (every key), and the [model] section alone.
std::string toToml(const Config& config);
std::string modelToToml(const ModelConfig& model);

}  // namespace moescope::engine
