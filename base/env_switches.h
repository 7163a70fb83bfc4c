// Switches read from the environment as one table: each variable, the values it takes (the first is
// the default) with what each means and what it sets in a settings struct. Read once, before anything
// runs; a value the table does not list is refused, naming the variable and the values it takes, so a
// typo never runs silently as the default. Used by the GPU tracer's switches (tracer/gpu_trace_options.h)
// and the CUDA backend's kernel choices (engine/cuda_kernel_options.h).
#pragma once

#include <algorithm>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace moescope {

template <class Settings>
struct EnvValue {
  std::string_view value;
  std::string_view meaning;
  void (*apply)(Settings&);
};

template <class Settings>
struct EnvVariable {
  std::string_view name;
  std::span<const EnvValue<Settings>> values;  // the first is the default
};

// Every variable of the table through getenv (unset or empty: its default). Throws
// std::invalid_argument naming the variable, the value and the values it takes.
template <class Settings>
Settings readEnvSwitches(std::span<const EnvVariable<Settings>> table,
                         const std::function<const char*(const char*)>& getenv) {
  Settings settings;
  for (const EnvVariable<Settings>& variable : table) {
    const char* raw = getenv(std::string(variable.name).c_str());
    const std::string_view value = raw ? raw : "";
    if (value.empty()) continue;
    const EnvValue<Settings>* match = nullptr;
    std::string accepted;
    for (const EnvValue<Settings>& v : variable.values) {
      if (v.value == value) match = &v;
      accepted += accepted.empty() ? "" : (&v == &variable.values.back() ? " or " : ", ");
      accepted += v.value;
    }
    if (!match)
      throw std::invalid_argument(std::string(variable.name) + " must be " + accepted + ", got '" +
                                  std::string(value) + "'");
    match->apply(settings);
  }
  return settings;
}

// The table as help text, a line per value: "  NAME=value   what it does (default)".
template <class Settings>
std::string envSwitchesHelp(std::span<const EnvVariable<Settings>> table) {
  std::string help;
  for (const EnvVariable<Settings>& variable : table) {
    for (const EnvValue<Settings>& v : variable.values) {
      std::string line = "  " + std::string(variable.name) + "=" + std::string(v.value);
      line.resize(std::max<size_t>(line.size() + 2, 38), ' ');
      help += line + std::string(v.meaning) + (&v == &variable.values.front() ? " (default)\n" : "\n");
    }
  }
  return help;
}

// The settings as the variables that give them, "NAME=value NAME=value", for logs and run files: for
// each variable the value whose apply leaves settings as they are (Settings needs operator==).
template <class Settings>
std::string envSwitchesOf(std::span<const EnvVariable<Settings>> table, const Settings& settings) {
  std::string out;
  for (const EnvVariable<Settings>& variable : table) {
    for (const EnvValue<Settings>& v : variable.values) {
      Settings applied = settings;
      v.apply(applied);
      if (!(applied == settings)) continue;
      if (!out.empty()) out += ' ';
      out.append(variable.name).append("=").append(v.value);
      break;
    }
  }
  return out;
}

}  // namespace moescope
