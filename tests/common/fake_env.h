// Environment switch tables (base/env_switches.h) read from a made-up environment: only the given
// variables are set. And the message a reader refuses one with.
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>

namespace moescope::testing {

using FakeEnv = std::map<std::string, std::string>;

// A getenv over env alone (the map must outlive it).
inline std::function<const char*(const char*)> getenvOf(const FakeEnv& env) {
  return [&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

// What read() throws as std::invalid_argument; "" where it accepts.
template <class Read>
std::string refusalOf(Read read) {
  try {
    read();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace moescope::testing
