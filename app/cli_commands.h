// The subcommands of moescope-cli. Each registers itself on the CLI11 app and runs when chosen;
// a command returns the process exit code (0 ok, 1 failure during work, 2 bad input).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace moescope::app {

// The command to run once parsing succeeded; set by the chosen subcommand's callback.
using CommandAction = std::function<int()>;

void registerStats(CLI::App& cli, CommandAction& action);
void registerExport(CLI::App& cli, CommandAction& action);
void registerTrain(CLI::App& cli, CommandAction& action);
void registerCompare(CLI::App& cli, CommandAction& action);
void registerGenerate(CLI::App& cli, CommandAction& action);
void registerImport(CLI::App& cli, CommandAction& action);
void registerMerge(CLI::App& cli, CommandAction& action);
void registerConfig(CLI::App& cli, CommandAction& action);
void registerPlan(CLI::App& cli, CommandAction& action);
void registerRecord(CLI::App& cli, CommandAction& action);

}  // namespace moescope::app
