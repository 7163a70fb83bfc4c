// moescope-cli config [--json] [--samples DIR]: the run configuration's schema (every key with its type,
// default, limits, choices and doc, from engine/config.h) and the sample presets, so the GUI's run
// dialog builds itself from this command rather than from a copy of the keys.
//
// JSON contract, version 1:
//   {"version": 1,
//    "keys": [{"key": "model.vocab_size", "type": "int"|"float"|"string"|"bool", "default": <value>,
//              "min": <number, optional>, "max": <number, optional>, "choices": [<strings>, optional],
//              "doc": "<one line>"}, ...],
//    "presets": [{"name": "ppmoe", "file": "<absolute path>", "values": {<every key the file sets>}}, ...]}
//
// Presets are the *.toml files of the samples folder, the first found of: --samples DIR; the
// MOESCOPE_SAMPLES environment variable; beside the executable, ../share/moescope/samples (an
// installed tree), ../../samples and ../samples (a build folder inside or beside the source tree); the
// source tree this binary was built from. A file that does not parse is left out with a one-line warning.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/cli_commands.h"
#include "engine/config.h"
#include "engine/engine_error.h"

namespace moescope::app {
namespace {

namespace fs = std::filesystem;

struct ConfigOptions {
  bool json = false;
  std::string samples;
};

nlohmann::ordered_json toJson(const engine::ConfigValue& v) {
  return std::visit([](const auto& x) { return nlohmann::ordered_json(x); }, v);
}

fs::path executableFolder() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path();
}

// The samples folder (see the file's opening comment), or empty when none is found.
fs::path samplesFolder(const std::string& given) {
  std::error_code ec;
  if (!given.empty()) return given;
  if (const char* env = std::getenv("MOESCOPE_SAMPLES"); env && *env) return env;
  std::vector<fs::path> candidates;
  if (const fs::path exe = executableFolder(); !exe.empty()) {
    for (const char* rel : {"../share/moescope/samples", "../../samples", "../samples"})
      candidates.push_back(exe / rel);
  }
#ifdef MOESCOPE_SOURCE_SAMPLES
  candidates.emplace_back(MOESCOPE_SOURCE_SAMPLES);
#endif
  for (const fs::path& c : candidates) {
    if (fs::is_directory(c, ec)) return c;
  }
  return {};
}

nlohmann::ordered_json presets(const fs::path& folder) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::error_code ec;
  if (folder.empty() || !fs::is_directory(folder, ec)) return out;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.path().extension() == ".toml" && entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    const fs::path absolute = fs::weakly_canonical(fs::absolute(file), ec);
    try {
      std::vector<std::string> keys;
      const engine::Config config = engine::loadConfigFile(absolute.string(), &keys);
      nlohmann::ordered_json values = nlohmann::ordered_json::object();
      for (const std::string& key : keys) values[key] = toJson(engine::configValue(config, key));
      out.push_back({{"name", file.stem().string()}, {"file", absolute.string()}, {"values", values}});
    } catch (const engine::InputError& e) {
      std::fprintf(stderr, "moescope-cli config: preset left out: %s\n", e.what());
    }
  }
  return out;
}

nlohmann::ordered_json schemaJson(const fs::path& samples) {
  nlohmann::ordered_json keys = nlohmann::ordered_json::array();
  const engine::Config defaults;
  for (const engine::ConfigKey& k : engine::configKeys()) {
    nlohmann::ordered_json j = {{"key", k.name},
                                {"type", engine::configTypeName(k.type)},
                                {"default", toJson(engine::configValue(defaults, k.name))}};
    // Integer limits as integers, so a reader compares them with integer values exactly.
    auto limit = [&](double v) {
      return k.type == engine::ConfigType::Int ? nlohmann::ordered_json(static_cast<int64_t>(v))
                                               : nlohmann::ordered_json(v);
    };
    if (k.min) j["min"] = limit(*k.min);
    if (k.max) j["max"] = limit(*k.max);
    if (!k.choices.empty()) j["choices"] = std::vector<std::string>(k.choices.begin(), k.choices.end());
    j["doc"] = k.doc;
    keys.push_back(std::move(j));
  }
  return {{"version", 1}, {"keys", keys}, {"presets", presets(samples)}};
}

int runConfig(const ConfigOptions& o) {
  const fs::path samples = samplesFolder(o.samples);
  if (!o.samples.empty() && !fs::is_directory(samples)) {
    std::fprintf(stderr, "moescope-cli config: --samples '%s' is not a folder\n", o.samples.c_str());
    return 2;
  }
  if (o.json) {
    std::printf(
        "%s\n",
        schemaJson(samples).dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return 0;
  }
  const engine::Config defaults;
  for (const engine::ConfigKey& k : engine::configKeys()) {
    std::string value = toJson(engine::configValue(defaults, k.name)).dump();
    std::printf("%-24s %-6s %-10s %s\n", std::string(k.name).c_str(),
                std::string(engine::configTypeName(k.type)).c_str(), value.c_str(),
                std::string(k.doc).c_str());
  }
  std::printf("\npresets (%s):\n", samples.empty() ? "no samples folder found" : samples.string().c_str());
  for (const auto& p : presets(samples)) std::printf("  %s\n", p["file"].get<std::string>().c_str());
  return 0;
}

}  // namespace

void registerConfig(CLI::App& cli, CommandAction& action) {
  auto options = std::make_shared<ConfigOptions>();
  auto* cmd = cli.add_subcommand(
      "config", "The run configuration's keys (type, default, limits, choices, doc) and the sample presets");
  cmd->add_flag("--json", options->json, "Print the schema and presets as JSON (what the GUI reads)");
  cmd->add_option(
      "--samples", options->samples,
      "Folder of preset *.toml files (default: MOESCOPE_SAMPLES, then samples/ beside the executable "
      "or in the source tree)");
  cmd->callback([&action, options] { action = [options] { return runConfig(*options); }; });
}

}  // namespace moescope::app
