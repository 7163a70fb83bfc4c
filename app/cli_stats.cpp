// moescope-cli stats: placeholder until the command lands; it says so and fails.
#include <cstdio>

#include "app/cli_commands.h"

namespace moescope::app {

void registerStats(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand("stats", "not built yet");
  cmd->callback([&action] {
    action = [] {
      std::fprintf(stderr, "moescope-cli stats: not built yet\n");
      return 1;
    };
  });
}

}  // namespace moescope::app
