// moescope-cli compare: placeholder until the command lands; it says so and fails.
#include <cstdio>

#include "app/cli_commands.h"

namespace moescope::app {

void registerCompare(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand("compare", "not built yet");
  cmd->callback([&action] {
    action = [] {
      std::fprintf(stderr, "moescope-cli compare: not built yet\n");
      return 1;
    };
  });
}

}  // namespace moescope::app
