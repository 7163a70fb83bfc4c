#include "base/env_switches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>
#include <string>

namespace moescope {
namespace {

// A table of two switches over a small settings struct.
struct Settings {
  int level = 1;
  bool loud = false;
  bool operator==(const Settings&) const = default;
};

constexpr std::array kLevel{
    EnvValue<Settings>{"one", "level one", [](Settings& s) { s.level = 1; }},
    EnvValue<Settings>{"two", "level two", [](Settings& s) { s.level = 2; }},
    EnvValue<Settings>{"three", "level three", [](Settings& s) { s.level = 3; }},
};
constexpr std::array kLoud{
    EnvValue<Settings>{"0", "quiet", [](Settings& s) { s.loud = false; }},
    EnvValue<Settings>{"1", "loud", [](Settings& s) { s.loud = true; }},
};
constexpr std::array kTable{EnvVariable<Settings>{"T_LEVEL", kLevel}, EnvVariable<Settings>{"T_LOUD", kLoud}};

Settings read(const std::map<std::string, std::string>& env) {
  return readEnvSwitches<Settings>(kTable, [&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(EnvSwitches, ReadsEachVariableUnsetOrEmptyAsItsDefault) {
  EXPECT_EQ(read({}), Settings{});
  EXPECT_EQ(read({{"T_LEVEL", ""}, {"T_LOUD", ""}}), Settings{});
  EXPECT_EQ(read({{"T_LEVEL", "three"}}), (Settings{3, false}));
  EXPECT_EQ(read({{"T_LEVEL", "two"}, {"T_LOUD", "1"}}), (Settings{2, true}));
}

TEST(EnvSwitches, RefusesAValueTheTableDoesNotList) {
  try {
    read({{"T_LEVEL", "Two"}});
    FAIL() << "accepted Two";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "T_LEVEL must be one, two or three, got 'Two'");
  }
  EXPECT_THROW(read({{"T_LOUD", "yes"}}), std::invalid_argument);
}

TEST(EnvSwitches, WritesSettingsBackAsTheVariablesThatGiveThem) {
  EXPECT_EQ(envSwitchesOf<Settings>(kTable, Settings{}), "T_LEVEL=one T_LOUD=0");
  EXPECT_EQ(envSwitchesOf<Settings>(kTable, Settings{3, true}), "T_LEVEL=three T_LOUD=1");
  // A value no switch gives is left out rather than named wrongly.
  EXPECT_EQ(envSwitchesOf<Settings>(kTable, Settings{7, true}), "T_LOUD=1");
}

TEST(EnvSwitches, HelpHasALinePerValueWithTheDefaultMarked) {
  const std::string help = envSwitchesHelp<Settings>(kTable);
  EXPECT_NE(help.find("  T_LEVEL=one"), std::string::npos) << help;
  EXPECT_NE(help.find("level one (default)\n"), std::string::npos) << help;
  EXPECT_NE(help.find("level two\n"), std::string::npos) << help;
  EXPECT_NE(help.find("quiet (default)\n"), std::string::npos) << help;
  EXPECT_EQ(std::count(help.begin(), help.end(), '\n'), 5);
}

}  // namespace
}  // namespace moescope
