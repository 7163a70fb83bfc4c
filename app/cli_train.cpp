// moescope-cli train: placeholder until the command lands; it says so and fails.
#include <cstdio>

#include "app/cli_commands.h"

namespace moescope::app {

void registerTrain(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand("train", "not built yet");
  cmd->callback([&action] {
    action = [] {
      std::fprintf(stderr, "moescope-cli train: not built yet\n");
      return 1;
    };
  });
}

}  // namespace moescope::app
