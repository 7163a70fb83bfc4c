// moescope-cli export: placeholder until the command lands; it says so and fails.
#include <cstdio>

#include "app/cli_commands.h"

namespace moescope::app {

void registerExport(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand("export", "not built yet");
  cmd->callback([&action] {
    action = [] {
      std::fprintf(stderr, "moescope-cli export: not built yet\n");
      return 1;
    };
  });
}

}  // namespace moescope::app
