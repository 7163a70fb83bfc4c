#include "engine/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "engine/engine_error.h"

namespace moescope::engine {
namespace {

constexpr std::array<std::string_view, 2> kLayoutNames = {"ppmoe", "dpmoe"};
// storage::Schedule order (a test checks each against storage::scheduleFromName).
constexpr std::array<std::string_view, 4> kScheduleNames = {"gpipe", "1f1b", "interleaved", "zb-h1"};
constexpr std::array<std::string_view, 2> kPrecisionNames = {"bf16", "fp32"};

// Limits. Sizes are capped where a larger value cannot be a model this engine trains (the memory
// estimate refuses most of what passes them long before); ranks at 1024, the threads one process runs.
constexpr double kMaxRanks = 1024;
constexpr double kMaxSize = double(int64_t{1} << 24);  // d_model, d_ff, global_batch: 16 M
constexpr double kMaxCount = 65536;                    // heads, micro-batches
// Layers and experts: a backend lists every tensor of a rank (layers x experts x 4), so their product
// must stay a list that fits in memory; 4096 each is beyond any model trained today (hundreds).
constexpr double kMaxLayersOrExperts = 4096;

// One row of the schema: the public description and how to read and write the field.
struct KeyDef {
  ConfigKey key;
  std::function<ConfigValue(const Config&)> get;
  std::function<void(Config&, const ConfigValue&)> set;
};

template <typename Section, typename T>
KeyDef number(std::string_view name, Section Config::*section, T Section::*field, std::optional<double> min,
              std::optional<double> max, std::string_view doc) {
  constexpr ConfigType type = std::is_same_v<T, double> ? ConfigType::Float : ConfigType::Int;
  return {{name, type, min, max, {}, doc},
          [=](const Config& c) { return ConfigValue(c.*section.*field); },
          [=](Config& c, const ConfigValue& v) { c.*section.*field = std::get<T>(v); }};
}

template <typename Section, typename T>
KeyDef plain(std::string_view name, Section Config::*section, T Section::*field, std::string_view doc) {
  constexpr ConfigType type = std::is_same_v<T, bool> ? ConfigType::Bool : ConfigType::String;
  return {{name, type, {}, {}, {}, doc},
          [=](const Config& c) { return ConfigValue(c.*section.*field); },
          [=](Config& c, const ConfigValue& v) { c.*section.*field = std::get<T>(v); }};
}

// An enum stored as the index of its name in `choices`.
template <typename Section, typename E, size_t N>
KeyDef choice(std::string_view name, Section Config::*section, E Section::*field,
              const std::array<std::string_view, N>& choices, std::string_view doc) {
  return {{name, ConfigType::String, {}, {}, choices, doc},
          [=, &choices](const Config& c) {
            return ConfigValue(std::string(choices[static_cast<size_t>(c.*section.*field)]));
          },
          [=, &choices](Config& c, const ConfigValue& v) {
            for (size_t i = 0; i < N; ++i) {
              if (choices[i] == std::get<std::string>(v)) c.*section.*field = static_cast<E>(i);
            }
          }};
}

const std::vector<KeyDef>& keyDefs() {
  using C = Config;
  static const std::vector<KeyDef> defs = {
      number("model.vocab_size", &C::model, &ModelConfig::vocab_size, 1, double(INT32_MAX),
             "V: token ids are below it (the byte corpus and raw files need 256)"),
      number("model.seq_len", &C::model, &ModelConfig::seq_len, 1, 1 << 20, "T: tokens per sequence"),
      number("model.d_model", &C::model, &ModelConfig::d_model, 1, kMaxSize,
             "C: the residual width, a multiple of n_heads"),
      number("model.n_heads", &C::model, &ModelConfig::n_heads, 1, kMaxCount,
             "H: attention heads, a multiple of tp"),
      number("model.n_layers", &C::model, &ModelConfig::n_layers, 1, kMaxLayersOrExperts,
             "L: transformer layers, at least pp"),
      number("model.d_ff", &C::model, &ModelConfig::d_ff, 1, kMaxSize,
             "F: hidden size of the dense FFN and of every expert, a multiple of tp"),
      number("model.n_experts", &C::model, &ModelConfig::n_experts, 0, kMaxLayersOrExperts,
             "E: experts per MoE layer; 0 is the dense backbone"),
      number("model.top_k", &C::model, &ModelConfig::top_k, 1, kMaxLayersOrExperts,
             "K: experts each token picks, at most n_experts"),
      number("model.capacity_factor", &C::model, &ModelConfig::capacity_factor, {}, 1e6,
             "cf: each expert takes at most ceil(cf N K / E) assignments per group; <= 0 drops nothing"),
      number("model.moe_every", &C::model, &ModelConfig::moe_every, 1, kMaxLayersOrExperts,
             "layer i is MoE when i % moe_every == moe_every - 1"),
      number("model.aux_loss_coef", &C::model, &ModelConfig::aux_loss_coef, 0, 1e6,
             "alpha: weight of the Switch load-balancing loss"),
      choice("parallel.layout", &C::parallel, &ParallelConfig::layout, kLayoutNames,
             "ppmoe: experts over the tp group (index slicing); dpmoe: experts over dp (all-to-all)"),
      number("parallel.pp", &C::parallel, &ParallelConfig::pp, 1, kMaxRanks, "pipeline stages"),
      number("parallel.tp", &C::parallel, &ParallelConfig::tp, 1, kMaxRanks,
             "tensor-parallel ranks per stage"),
      number("parallel.dp", &C::parallel, &ParallelConfig::dp, 1, kMaxRanks, "data-parallel replicas"),
      number("parallel.microbatches", &C::parallel, &ParallelConfig::microbatches, 1, kMaxCount,
             "micro-batches per replica and step"),
      choice("parallel.schedule", &C::parallel, &ParallelConfig::schedule, kScheduleNames,
             "the order of forward and backward passes on each stage (docs/SCHEDULES.md)"),
      number("parallel.virtual_stages", &C::parallel, &ParallelConfig::virtual_stages, 1, kMaxRanks,
             "model chunks per stage; above 1 only with the interleaved schedule"),
      plain("parallel.split_backward", &C::parallel, &ParallelConfig::split_backward,
            "run each backward as its input gradient then its weight gradients (B, W): measures ZB-H1's "
            "split for the planner; same order and numbers"),
      number("train.global_batch", &C::train, &TrainConfig::global_batch, 1, kMaxSize,
             "sequences per optimizer step, a multiple of dp x microbatches"),
      number("train.steps", &C::train, &TrainConfig::steps, 0, double(INT32_MAX), "optimizer steps"),
      number("train.lr", &C::train, &TrainConfig::lr, 0, 1e6, "AdamW learning rate (constant)"),
      number("train.beta1", &C::train, &TrainConfig::beta1, 0, 1, "AdamW beta1, below 1"),
      number("train.beta2", &C::train, &TrainConfig::beta2, 0, 1, "AdamW beta2, below 1"),
      number("train.eps", &C::train, &TrainConfig::eps, 0, 1, "AdamW epsilon, above 0"),
      number("train.weight_decay", &C::train, &TrainConfig::weight_decay, 0, 1e6,
             "AdamW weight decay on tensors of two or more dimensions"),
      number("train.grad_clip", &C::train, &TrainConfig::grad_clip, {}, 1e12,
             "clip the global gradient norm to this; <= 0 is off"),
      number("train.seed", &C::train, &TrainConfig::seed, {}, {},
             "seed of the initial weights and random data"),
      choice("train.precision", &C::train, &TrainConfig::precision, kPrecisionNames,
             "CUDA compute precision: bf16 (fp32 master weights) or fp32; the CPU is always fp32"),
      plain("data.path", &C::data, &DataConfig::path,
            "token data: \"\" the built-in corpus, \"random\", a .npy array or a raw byte file"),
      plain("trace.enabled", &C::trace, &TraceConfig::enabled, "record spans into the run file"),
  };
  return defs;
}

const KeyDef* findKey(std::string_view name) {
  for (const auto& def : keyDefs()) {
    if (def.key.name == name) return &def;
  }
  return nullptr;
}

bool knownSection(std::string_view section) {
  for (const auto& def : keyDefs()) {
    const std::string_view name = def.key.name;
    if (name.substr(0, name.find('.')) == section) return true;
  }
  return false;
}

std::string describeType(const ConfigKey& key) {
  if (!key.choices.empty()) {
    std::string out = "one of";
    for (size_t i = 0; i < key.choices.size(); ++i) {
      out.append(i == 0 ? " \"" : i + 1 == key.choices.size() ? " or \"" : ", \"");
      out.append(key.choices[i]);
      out.push_back('"');
    }
    return out;
  }
  switch (key.type) {
    case ConfigType::Int:
      return "an integer";
    case ConfigType::Float:
      return "a number";
    case ConfigType::String:
      return "a string";
    case ConfigType::Bool:
      return "true or false";
  }
  return "";
}

// The TOML node as the key's type; InputError naming the key otherwise.
ConfigValue toValue(const KeyDef& def, const toml::node& node, std::string_view source) {
  auto fail = [&](const std::string& got) -> ConfigValue {
    throw InputError(std::string(source) + ": " + std::string(def.key.name) + " must be " +
                     describeType(def.key) + got);
  };
  switch (def.key.type) {
    case ConfigType::Int:
      if (auto v = node.value_exact<int64_t>()) return *v;
      return fail("");
    case ConfigType::Float:
      if (auto i = node.value_exact<int64_t>()) return static_cast<double>(*i);
      if (auto v = node.value_exact<double>()) return *v;
      return fail("");
    case ConfigType::Bool:
      if (auto v = node.value_exact<bool>()) return *v;
      return fail("");
    case ConfigType::String:
      break;
  }
  const auto v = node.value_exact<std::string>();
  if (!v) return fail("");
  if (!def.key.choices.empty() &&
      std::find(def.key.choices.begin(), def.key.choices.end(), *v) == def.key.choices.end())
    return fail(", got \"" + *v + "\"");
  return *v;
}

std::string formatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::string formatFloat(double v) {
  std::string s = formatNumber(v);
  if (s.find_first_of(".eEna") == std::string::npos) s += ".0";
  return s;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

std::string sectionToToml(const Config& config, std::string_view section) {
  std::string out = "[";
  out.append(section).append("]\n");
  for (const auto& def : keyDefs()) {
    const std::string_view name = def.key.name;
    if (name.substr(0, name.find('.')) != section) continue;
    out.append(name.substr(name.find('.') + 1)).append(" = ");
    const ConfigValue v = def.get(config);
    if (const auto* i = std::get_if<int64_t>(&v)) out += std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) out += formatFloat(*d);
    if (const auto* s = std::get_if<std::string>(&v)) out += quote(*s);
    if (const auto* b = std::get_if<bool>(&v)) out += *b ? "true" : "false";
    out += "\n";
  }
  return out;
}

// a * b, or nothing when it overflows int64.
std::optional<int64_t> product(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

}  // namespace

std::string_view moeLayoutName(MoeLayout layout) {
  const auto i = static_cast<size_t>(layout);
  return i < kLayoutNames.size() ? kLayoutNames[i] : "?";
}

std::string_view precisionName(Precision precision) {
  const auto i = static_cast<size_t>(precision);
  return i < kPrecisionNames.size() ? kPrecisionNames[i] : "?";
}

std::string_view configTypeName(ConfigType type) {
  switch (type) {
    case ConfigType::Int:
      return "int";
    case ConfigType::Float:
      return "float";
    case ConfigType::String:
      return "string";
    case ConfigType::Bool:
      return "bool";
  }
  return "?";
}

std::span<const ConfigKey> configKeys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& def : keyDefs()) out.push_back(def.key);
    return out;
  }();
  return keys;
}

ConfigValue configValue(const Config& config, std::string_view key) {
  const KeyDef* def = findKey(key);
  if (!def) throw InputError("unknown key '" + std::string(key) + "'");
  return def->get(config);
}

Config parseConfig(std::string_view toml_text, std::string_view source, std::vector<std::string>* set_keys) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw InputError(std::string(source) + ":" + std::to_string(where.line) + ":" +
                     std::to_string(where.column) + ": " + std::string(e.description()));
  }
  Config config;
  std::vector<const KeyDef*> seen;
  for (const auto& [section_key, section_node] : table) {
    const std::string section(section_key.str());
    if (!knownSection(section)) {
      throw InputError(std::string(source) + ": unknown section or key '" + section + "'");
    }
    const toml::table* section_table = section_node.as_table();
    if (!section_table) throw InputError(std::string(source) + ": '" + section + "' must be a table");
    for (const auto& [key, node] : *section_table) {
      const std::string name = section + "." + std::string(key.str());
      const KeyDef* def = findKey(name);
      if (!def) throw InputError(std::string(source) + ": unknown key '" + name + "'");
      def->set(config, toValue(*def, node, source));
      seen.push_back(def);
    }
  }
  if (set_keys) {
    set_keys->clear();
    for (const auto& def : keyDefs()) {
      if (std::find(seen.begin(), seen.end(), &def) != seen.end()) set_keys->emplace_back(def.key.name);
    }
  }
  return config;
}

Config loadConfigFile(const std::string& path, std::vector<std::string>* set_keys) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw InputError("config: cannot read '" + path + "' (no such file)");
  if (fs::is_directory(status)) throw InputError("config: '" + path + "' is a folder, not a config file");
  if (!fs::is_regular_file(status))
    throw InputError("config: '" + path + "' is not a regular file (a device, FIFO or socket)");
  const auto size = fs::file_size(path, ec);
  if (ec) throw InputError("config: cannot read '" + path + "' (" + ec.message() + ")");
  if (size > static_cast<uintmax_t>(kMaxConfigBytes)) {
    throw InputError("config: '" + path + "' holds " + std::to_string(size) +
                     " bytes, more than a config's " + std::to_string(kMaxConfigBytes) + "-byte limit");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("config: cannot read '" + path + "'");
  // Read at most the limit even if the file grew since it was measured.
  std::string text(static_cast<size_t>(kMaxConfigBytes) + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxConfigBytes))
    throw InputError("config: '" + path + "' is larger than a config's " + std::to_string(kMaxConfigBytes) +
                     "-byte limit");
  return parseConfig(text, path, set_keys);
}

void applyOverride(Config& config, std::string_view assignment) {
  auto eq = assignment.find('=');
  auto dot = assignment.find('.');
  if (eq == std::string_view::npos || dot == std::string_view::npos || dot > eq) {
    throw InputError("--set: expected section.key=value, got '" + std::string(assignment) + "'");
  }
  const std::string name(assignment.substr(0, eq));
  const std::string value(assignment.substr(eq + 1));
  const KeyDef* def = findKey(name);
  if (!def) throw InputError("--set: unknown key '" + name + "'");
  toml::table parsed;
  bool ok = true;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    ok = false;
  }
  if (!ok || !parsed.contains("v")) {
    // A bare word is a string, so `--set parallel.layout=dpmoe` needs no quotes.
    if (def->key.type != ConfigType::String) {
      throw InputError("--set: " + name + " must be " + describeType(def->key) + ", got '" + value + "'");
    }
    parsed = toml::table{{"v", value}};
  }
  def->set(config, toValue(*def, *parsed.get("v"), "--set"));
}

void validate(const Config& c) {
  auto fail = [](const std::string& what) { throw InputError(what); };
  // Every key's limits, as the schema declares them.
  for (const auto& def : keyDefs()) {
    const ConfigKey& k = def.key;
    if (k.type != ConfigType::Int && k.type != ConfigType::Float) continue;
    const ConfigValue v = def.get(c);
    const double x =
        k.type == ConfigType::Int ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v);
    const std::string shown =
        k.type == ConfigType::Int ? std::to_string(std::get<int64_t>(v)) : formatNumber(std::get<double>(v));
    if (!std::isfinite(x)) fail(std::string(k.name) + " must be a finite number, got " + shown);
    if (k.min && x < *k.min)
      fail(std::string(k.name) + " = " + shown + " is below its limit " + formatNumber(*k.min));
    if (k.max && x > *k.max)
      fail(std::string(k.name) + " = " + shown + " is above its limit " + formatNumber(*k.max));
  }
  const auto& m = c.model;
  const auto& p = c.parallel;
  const auto& t = c.train;
  if (!(t.beta1 < 1)) fail("train.beta1 must be below 1, got " + formatNumber(t.beta1));
  if (!(t.beta2 < 1)) fail("train.beta2 must be below 1, got " + formatNumber(t.beta2));
  if (!(t.eps > 0)) fail("train.eps must be above 0, got " + formatNumber(t.eps));
  if (m.d_model % m.n_heads != 0) {
    fail("model.d_model (" + std::to_string(m.d_model) + ") is not a multiple of model.n_heads (" +
         std::to_string(m.n_heads) + ")");
  }
  if (m.n_experts > 0 && m.top_k > m.n_experts) {
    fail("model.top_k (" + std::to_string(m.top_k) + ") must be in 1..n_experts (" +
         std::to_string(m.n_experts) + ")");
  }
  // The limits keep these products far inside int64; they are checked all the same, so that a limit
  // raised later cannot bring back a silent overflow (a product wrapping to 0, then a division by it).
  const auto pt = product(p.pp, p.tp);
  const auto world = pt ? product(*pt, p.dp) : std::nullopt;
  if (!world || *world > kMaxRanks) {
    fail("world size pp x tp x dp = " + std::to_string(p.pp) + " x " + std::to_string(p.tp) + " x " +
         std::to_string(p.dp) + " is above its limit " + formatNumber(kMaxRanks));
  }
  const auto replicas = product(p.dp, p.microbatches);
  if (!replicas || t.global_batch % *replicas != 0) {
    fail("layout: train.global_batch (" + std::to_string(t.global_batch) +
         ") is not divisible by dp x microbatches (" + std::to_string(p.dp) + " x " +
         std::to_string(p.microbatches) + ")");
  }
  if (!product(t.global_batch, m.seq_len)) fail("train.global_batch x model.seq_len overflows");
  if (m.n_heads % p.tp != 0) {
    fail("layout: model.n_heads (" + std::to_string(m.n_heads) + ") is not divisible by tp (" +
         std::to_string(p.tp) + ")");
  }
  if (m.d_ff % p.tp != 0) {
    fail("layout: model.d_ff (" + std::to_string(m.d_ff) + ") is not divisible by tp (" +
         std::to_string(p.tp) + ")");
  }
  if (m.n_layers < p.pp) {
    fail("layout: model.n_layers (" + std::to_string(m.n_layers) + ") is less than pp (" +
         std::to_string(p.pp) + ")");
  }
  if (const std::string problem = scheduleProblem(pipelineShape(c), m.n_layers); !problem.empty())
    fail("layout: " + problem);
  if (!c.dense() && p.layout == MoeLayout::PPMoE && m.n_experts % p.tp != 0) {
    fail("layout: ppmoe needs n_experts (" + std::to_string(m.n_experts) + ") divisible by tp (" +
         std::to_string(p.tp) + ")");
  }
  if (!c.dense() && p.layout == MoeLayout::DPMoE) {
    if (p.tp != 1) fail("layout: dpmoe needs tp = 1, got tp = " + std::to_string(p.tp));
    if (m.n_experts % p.dp != 0) {
      fail("layout: dpmoe needs n_experts (" + std::to_string(m.n_experts) + ") divisible by dp (" +
           std::to_string(p.dp) + ")");
    }
  }
}

PipelineShape pipelineShape(const Config& c) {
  const auto& p = c.parallel;
  return {p.schedule, static_cast<int>(p.pp), static_cast<int>(p.microbatches),
          static_cast<int>(p.virtual_stages), p.split_backward};
}

std::string toToml(const Config& config) {
  std::string out;
  for (std::string_view section : {"model", "parallel", "train", "data", "trace"}) {
    if (!out.empty()) out += "\n";
    out += sectionToToml(config, section);
  }
  return out;
}

std::string modelToToml(const ModelConfig& model) {
  Config copy;
  copy.model = model;
  return sectionToToml(copy, "model");
}

}  // namespace moescope::engine
