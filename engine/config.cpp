#include "engine/config.h"

#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "engine/engine_error.h"

namespace moescope::engine {
namespace {

enum class Kind { Int, Float, String, Bool };

struct KeyDef {
  std::string_view section;
  std::string_view key;
  Kind kind;
  std::function<void*(Config&)> field;
};

const std::vector<KeyDef>& keys() {
  static const std::vector<KeyDef> defs = {
      {"model", "vocab_size", Kind::Int, [](Config& c) -> void* { return &c.model.vocab_size; }},
      {"model", "seq_len", Kind::Int, [](Config& c) -> void* { return &c.model.seq_len; }},
      {"model", "d_model", Kind::Int, [](Config& c) -> void* { return &c.model.d_model; }},
      {"model", "n_heads", Kind::Int, [](Config& c) -> void* { return &c.model.n_heads; }},
      {"model", "n_layers", Kind::Int, [](Config& c) -> void* { return &c.model.n_layers; }},
      {"model", "d_ff", Kind::Int, [](Config& c) -> void* { return &c.model.d_ff; }},
      {"model", "n_experts", Kind::Int, [](Config& c) -> void* { return &c.model.n_experts; }},
      {"model", "top_k", Kind::Int, [](Config& c) -> void* { return &c.model.top_k; }},
      {"model", "capacity_factor", Kind::Float, [](Config& c) -> void* { return &c.model.capacity_factor; }},
      {"model", "moe_every", Kind::Int, [](Config& c) -> void* { return &c.model.moe_every; }},
      {"model", "aux_loss_coef", Kind::Float, [](Config& c) -> void* { return &c.model.aux_loss_coef; }},
      {"parallel", "layout", Kind::String, [](Config& c) -> void* { return &c.parallel.layout; }},
      {"parallel", "pp", Kind::Int, [](Config& c) -> void* { return &c.parallel.pp; }},
      {"parallel", "tp", Kind::Int, [](Config& c) -> void* { return &c.parallel.tp; }},
      {"parallel", "dp", Kind::Int, [](Config& c) -> void* { return &c.parallel.dp; }},
      {"parallel", "microbatches", Kind::Int, [](Config& c) -> void* { return &c.parallel.microbatches; }},
      {"parallel", "schedule", Kind::String, [](Config& c) -> void* { return &c.parallel.schedule; }},
      {"parallel", "virtual_stages", Kind::Int,
       [](Config& c) -> void* { return &c.parallel.virtual_stages; }},
      {"train", "global_batch", Kind::Int, [](Config& c) -> void* { return &c.train.global_batch; }},
      {"train", "steps", Kind::Int, [](Config& c) -> void* { return &c.train.steps; }},
      {"train", "lr", Kind::Float, [](Config& c) -> void* { return &c.train.lr; }},
      {"train", "beta1", Kind::Float, [](Config& c) -> void* { return &c.train.beta1; }},
      {"train", "beta2", Kind::Float, [](Config& c) -> void* { return &c.train.beta2; }},
      {"train", "eps", Kind::Float, [](Config& c) -> void* { return &c.train.eps; }},
      {"train", "weight_decay", Kind::Float, [](Config& c) -> void* { return &c.train.weight_decay; }},
      {"train", "grad_clip", Kind::Float, [](Config& c) -> void* { return &c.train.grad_clip; }},
      {"train", "seed", Kind::Int, [](Config& c) -> void* { return &c.train.seed; }},
      {"train", "precision", Kind::String, [](Config& c) -> void* { return &c.train.precision; }},
      {"data", "path", Kind::String, [](Config& c) -> void* { return &c.data.path; }},
      {"trace", "enabled", Kind::Bool, [](Config& c) -> void* { return &c.trace.enabled; }},
  };
  return defs;
}

const KeyDef* findKey(std::string_view section, std::string_view key) {
  for (const auto& def : keys()) {
    if (def.section == section && def.key == key) return &def;
  }
  return nullptr;
}

bool knownSection(std::string_view section) {
  for (const auto& def : keys()) {
    if (def.section == section) return true;
  }
  return false;
}

std::string kindName(Kind kind) {
  switch (kind) {
    case Kind::Int:
      return "an integer";
    case Kind::Float:
      return "a number";
    case Kind::String:
      return "a string";
    case Kind::Bool:
      return "true or false";
  }
  return "";
}

void assign(Config& config, const KeyDef& def, const toml::node& node, std::string_view source) {
  void* field = def.field(config);
  auto fail = [&] {
    throw InputError(std::string(source) + ": " + std::string(def.section) + "." + std::string(def.key) +
                     " must be " + kindName(def.kind));
  };
  switch (def.kind) {
    case Kind::Int:
      if (auto v = node.value_exact<int64_t>()) {
        *static_cast<int64_t*>(field) = *v;
      } else {
        fail();
      }
      break;
    case Kind::Float:
      if (node.is_integer()) {
        *static_cast<double*>(field) = static_cast<double>(*node.value_exact<int64_t>());
      } else if (auto v = node.value_exact<double>()) {
        *static_cast<double*>(field) = *v;
      } else {
        fail();
      }
      break;
    case Kind::String:
      if (auto v = node.value_exact<std::string>()) {
        *static_cast<std::string*>(field) = *v;
      } else {
        fail();
      }
      break;
    case Kind::Bool:
      if (auto v = node.value_exact<bool>()) {
        *static_cast<bool*>(field) = *v;
      } else {
        fail();
      }
      break;
  }
}

std::string formatFloat(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  std::ostringstream os;
  os.precision(17);
  os << v;
  std::string s = os.str();
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
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

std::string sectionToToml(Config& config, std::string_view section) {
  std::string out = "[";
  out.append(section);
  out.append("]\n");
  for (const auto& def : keys()) {
    if (def.section != section) continue;
    out += std::string(def.key) + " = ";
    void* field = def.field(config);
    switch (def.kind) {
      case Kind::Int:
        out += std::to_string(*static_cast<int64_t*>(field));
        break;
      case Kind::Float:
        out += formatFloat(*static_cast<double*>(field));
        break;
      case Kind::String:
        out += quote(*static_cast<std::string*>(field));
        break;
      case Kind::Bool:
        out += *static_cast<bool*>(field) ? "true" : "false";
        break;
    }
    out += "\n";
  }
  return out;
}

}  // namespace

Config parseConfig(std::string_view toml_text, std::string_view source) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw InputError(std::string(source) + ":" + std::to_string(where.line) + ":" +
                     std::to_string(where.column) + ": " + std::string(e.description()));
  }
  Config config;
  for (const auto& [section_key, section_node] : table) {
    std::string_view section = section_key.str();
    if (!knownSection(section)) {
      throw InputError(std::string(source) + ": unknown section or key '" + std::string(section) + "'");
    }
    const toml::table* section_table = section_node.as_table();
    if (!section_table) {
      throw InputError(std::string(source) + ": '" + std::string(section) + "' must be a table");
    }
    for (const auto& [key, node] : *section_table) {
      const KeyDef* def = findKey(section, key.str());
      if (!def) {
        throw InputError(std::string(source) + ": unknown key '" + std::string(section) + "." +
                         std::string(key.str()) + "'");
      }
      assign(config, *def, node, source);
    }
  }
  return config;
}

Config loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("config: cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parseConfig(text.str(), path);
}

void applyOverride(Config& config, std::string_view assignment) {
  auto eq = assignment.find('=');
  auto dot = assignment.find('.');
  if (eq == std::string_view::npos || dot == std::string_view::npos || dot > eq) {
    throw InputError("--set: expected section.key=value, got '" + std::string(assignment) + "'");
  }
  std::string section(assignment.substr(0, dot));
  std::string key(assignment.substr(dot + 1, eq - dot - 1));
  std::string value(assignment.substr(eq + 1));
  const KeyDef* def = findKey(section, key);
  if (!def) throw InputError("--set: unknown key '" + section + "." + key + "'");
  toml::table parsed;
  bool ok = true;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    ok = false;
  }
  if (!ok || !parsed.contains("v")) {
    if (def->kind != Kind::String) {
      throw InputError("--set: " + section + "." + key + " must be " + kindName(def->kind) + ", got '" +
                       value + "'");
    }
    *static_cast<std::string*>(def->field(config)) = value;
    return;
  }
  assign(config, *def, *parsed.get("v"), "--set");
}

void validate(const Config& c) {
  auto fail = [](const std::string& what) { throw InputError(what); };
  auto positive = [&](const char* name, int64_t v) {
    if (v < 1) fail(std::string(name) + " must be >= 1, got " + std::to_string(v));
  };
  const auto& m = c.model;
  positive("model.vocab_size", m.vocab_size);
  positive("model.seq_len", m.seq_len);
  positive("model.d_model", m.d_model);
  positive("model.n_heads", m.n_heads);
  positive("model.n_layers", m.n_layers);
  positive("model.d_ff", m.d_ff);
  positive("model.moe_every", m.moe_every);
  if (m.vocab_size > (int64_t{1} << 31) - 1) fail("model.vocab_size is too large");
  if (m.d_model % m.n_heads != 0) {
    fail("model.d_model (" + std::to_string(m.d_model) + ") is not a multiple of model.n_heads (" +
         std::to_string(m.n_heads) + ")");
  }
  if (m.n_experts < 0) fail("model.n_experts must be >= 0");
  if (m.n_experts > 0 && (m.top_k < 1 || m.top_k > m.n_experts)) {
    fail("model.top_k (" + std::to_string(m.top_k) + ") must be in 1..n_experts (" +
         std::to_string(m.n_experts) + ")");
  }
  if (!std::isfinite(m.capacity_factor)) fail("model.capacity_factor must be finite");
  if (!std::isfinite(m.aux_loss_coef)) fail("model.aux_loss_coef must be finite");

  const auto& p = c.parallel;
  if (p.layout != "ppmoe" && p.layout != "dpmoe") {
    fail("parallel.layout must be \"ppmoe\" or \"dpmoe\", got \"" + p.layout + "\"");
  }
  if (c.train.precision != "bf16" && c.train.precision != "fp32") {
    fail("train.precision must be \"bf16\" or \"fp32\", got \"" + c.train.precision + "\"");
  }
  if (!storage::scheduleFromName(p.schedule)) {
    fail("parallel.schedule must be \"gpipe\", \"1f1b\", \"interleaved\" or \"zb-h1\", got \"" + p.schedule +
         "\"");
  }
  positive("parallel.pp", p.pp);
  positive("parallel.tp", p.tp);
  positive("parallel.dp", p.dp);
  positive("parallel.microbatches", p.microbatches);
  if (c.worldSize() > 1024)
    fail("world size pp x tp x dp = " + std::to_string(c.worldSize()) + " is too large");

  const auto& t = c.train;
  positive("train.global_batch", t.global_batch);
  if (t.steps < 0) fail("train.steps must be >= 0");
  if (t.global_batch % (p.dp * p.microbatches) != 0) {
    fail("layout: train.global_batch (" + std::to_string(t.global_batch) +
         ") is not divisible by dp x microbatches (" + std::to_string(p.dp) + " x " +
         std::to_string(p.microbatches) + ")");
  }
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
  if (p.virtual_stages > 1024) fail("parallel.virtual_stages is too large");
  if (p.microbatches > std::numeric_limits<int>::max()) fail("parallel.microbatches is too large");
  if (const std::string problem = scheduleProblem(pipelineShape(c), m.n_layers); !problem.empty())
    fail("layout: " + problem);
  if (!c.dense() && p.layout == "ppmoe" && m.n_experts % p.tp != 0) {
    fail("layout: ppmoe needs n_experts (" + std::to_string(m.n_experts) + ") divisible by tp (" +
         std::to_string(p.tp) + ")");
  }
  if (!c.dense() && p.layout == "dpmoe") {
    if (p.tp != 1) fail("layout: dpmoe needs tp = 1, got tp = " + std::to_string(p.tp));
    if (m.n_experts % p.dp != 0) {
      fail("layout: dpmoe needs n_experts (" + std::to_string(m.n_experts) + ") divisible by dp (" +
           std::to_string(p.dp) + ")");
    }
  }
  if (!(t.lr >= 0) || !std::isfinite(t.lr)) fail("train.lr must be a finite number >= 0");
  if (!(t.beta1 >= 0 && t.beta1 < 1)) fail("train.beta1 must be in [0, 1)");
  if (!(t.beta2 >= 0 && t.beta2 < 1)) fail("train.beta2 must be in [0, 1)");
  if (!(t.eps > 0)) fail("train.eps must be > 0");
  if (!std::isfinite(t.weight_decay)) fail("train.weight_decay must be finite");
  if (!std::isfinite(t.grad_clip)) fail("train.grad_clip must be finite");
}

PipelineShape pipelineShape(const Config& c) {
  const auto& p = c.parallel;
  return {storage::scheduleFromName(p.schedule).value_or(storage::Schedule::OneFOneB), static_cast<int>(p.pp),
          static_cast<int>(p.microbatches), static_cast<int>(p.virtual_stages)};
}

std::string toToml(const Config& config) {
  Config copy = config;
  std::string out;
  for (std::string_view section : {"model", "parallel", "train", "data", "trace"}) {
    if (!out.empty()) out += "\n";
    out += sectionToToml(copy, section);
  }
  return out;
}

std::string modelToToml(const ModelConfig& model) {
  Config copy;
  copy.model = model;
  return sectionToToml(copy, "model");
}

}  // namespace moescope::engine
