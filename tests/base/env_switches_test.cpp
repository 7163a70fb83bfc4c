#include "base/env_switches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>
#include <string>

#include "tests/common/fake_env.h"

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

Settings read(const moescope::testing::FakeEnv& env) {
  return readEnvSwitches<Settings>(kTable, moescope::testing::getenvOf(env));
}

TEST(EnvSwitches, ReadsEachVariableUnsetOrEmptyAsItsDefault) {
  EXPECT_EQ(read({}), Settings{});
  EXPECT_EQ(read({{"T_LEVEL", ""}, {"T_LOUD", ""}}), Settings{});
  EXPECT_EQ(read({{"T_LEVEL", "three"}}), (Settings{3, false}));
  EXPECT_EQ(read({{"T_LEVEL", "two"}, {"T_LOUD", "1"}}), (Settings{2, true}));
}

TEST(EnvSwitches, RefusesAValueTheTableDoesNotList) {
  EXPECT_EQ(moescope::testing::refusalOf([] {
              read({{"T_LEVEL", "Two"}});
            }),
            "T_LEVEL must be one, two or three, got 'Two'");
  EXPECT_EQ(moescope::testing::refusalOf([] {
              read({{"T_LOUD", "yes"}});
            }),
            "T_LOUD must be 0 or 1, got 'yes'");
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
