// The run configuration of MODEL.md: every key with its type, default, limits, choices and a one-line
// doc, declared once (configKeys()), read from TOML, overridden by `--set section.key=value`, checked
// against its limits and the layout rules before any work starts. `moescope-cli config --json` prints
// the same table, so the GUI's run dialog reads the keys from here rather than keeping its own copy.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/schedule.h"
#include "storage/trace_model.h"

namespace moescope::engine {

// How experts are placed (MODEL.md): over the tensor-parallel group, or over the data-parallel ranks.
enum class MoeLayout : uint8_t { PPMoE = 0, DPMoE };
std::string_view moeLayoutName(MoeLayout layout);  // "ppmoe", "dpmoe"

// The CUDA backend's compute precision: bf16 operands with fp32 accumulation, master weights,
// gradients and Adam state; or fp32 everywhere (no TF32). The CPU backend always computes in fp32.
enum class Precision : uint8_t { Bf16 = 0, Fp32 };
std::string_view precisionName(Precision precision);  // "bf16", "fp32"

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
  MoeLayout layout = MoeLayout::PPMoE;  // ignored when n_experts == 0
  int64_t pp = 1;
  int64_t tp = 1;
  int64_t dp = 1;
  int64_t microbatches = 1;
  storage::Schedule schedule = storage::Schedule::OneFOneB;
  int64_t virtual_stages = 1;   // model chunks per stage; > 1 only with Schedule::Interleaved
  bool split_backward = false;  // each backward as B then W (PipelineShape::split_backward)
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
  Precision precision = Precision::Bf16;
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

  // Products of validated values: validate() has checked that none overflows.
  int64_t worldSize() const { return parallel.pp * parallel.tp * parallel.dp; }
  // Sequences per micro-batch: global_batch / (dp * microbatches).
  int64_t microbatchSize() const { return train.global_batch / (parallel.dp * parallel.microbatches); }
  int64_t tokensPerStep() const { return train.global_batch * model.seq_len; }
  bool dense() const { return model.n_experts == 0; }
  // "dense" when n_experts == 0, else the layout's name.
  std::string layoutName() const { return dense() ? "dense" : std::string(moeLayoutName(parallel.layout)); }
  bool dpmoe() const { return !dense() && parallel.layout == MoeLayout::DPMoE; }
  bool operator==(const Config&) const = default;
};

// One key of the schema. Numbers outside [min, max] are refused by validate() with the limit named;
// a key with choices takes one of them (an enum, parsed once).
enum class ConfigType { Int, Float, String, Bool };
std::string_view configTypeName(ConfigType type);  // "int", "float", "string", "bool"
struct ConfigKey {
  std::string_view name;  // "model.vocab_size"
  ConfigType type = ConfigType::Int;
  std::optional<double> min, max;             // inclusive
  std::span<const std::string_view> choices;  // empty: any value of the type
  std::string_view doc;                       // one line
};
using ConfigValue = std::variant<int64_t, double, std::string, bool>;

// Every key, in file order ([model], [parallel], [train], [data], [trace]).
std::span<const ConfigKey> configKeys();
// The value of a key (an enum as its name); InputError for an unknown key.
ConfigValue configValue(const Config& config, std::string_view key);

// Parses TOML text (source names the file in messages). Unknown sections or keys, wrong value types,
// a value that is not one of its key's choices: InputError. Does not check limits or the layout rules;
// call validate(). set_keys, when given, receives the keys the text sets, in the table's order.
Config parseConfig(std::string_view toml_text, std::string_view source = "config",
                   std::vector<std::string>* set_keys = nullptr);
// Reads a regular file of at most kMaxConfigBytes; anything else (a folder, a device, a FIFO, a file
// too large to be a config) is InputError naming it.
inline constexpr int64_t kMaxConfigBytes = int64_t{1} << 20;
Config loadConfigFile(const std::string& path, std::vector<std::string>* set_keys = nullptr);

// Applies "section.key=value" (value in TOML syntax; a bare word is taken as a string).
void applyOverride(Config& config, std::string_view assignment);

// Checks every key's limits and MODEL.md's layout rules with overflow-checked arithmetic; throws
// InputError with one line naming the problem (and the limit, where one was passed). The schedule's
// rules are scheduleProblem's (engine/schedule.h), which the planner asks too.
void validate(const Config& config);

// The schedule's shape: schedule, pp, micro-batches, virtual stages and the split backward.
PipelineShape pipelineShape(const Config& config);

// The whole configuration as TOML (every key), and the [model] section alone.
std::string toToml(const Config& config);
std::string modelToToml(const ModelConfig& model);

}  // namespace moescope::engine
