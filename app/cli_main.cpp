// moescope-cli: argument parsing and wiring only; the work lives in storage/ and engine/.
#include <cstdio>
#include <exception>

#include "app/cli_commands.h"
#include "storage/output_file.h"

int main(int argc, char** argv) {
  CLI::App cli{"moescope-cli: train instrumented pipeline-parallel MoE runs and analyse their run files"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", "moescope 0.1.0");
  moescope::app::CommandAction action;
  moescope::app::registerTrain(cli, action);
  moescope::app::registerStats(cli, action);
  moescope::app::registerExport(cli, action);
  moescope::app::registerCompare(cli, action);
  moescope::app::registerGenerate(cli, action);
  moescope::app::registerImport(cli, action);
  moescope::app::registerMerge(cli, action);
  moescope::app::registerConfig(cli, action);
  moescope::app::registerPlan(cli, action);
  moescope::app::registerRecord(cli, action);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return cli.exit(e);  // --help, --version
    // Bad arguments are bad input: one line naming the problem, exit 2.
    std::fprintf(stderr, "moescope-cli: %s\n", e.what());
    return 2;
  }
  // A command ended by SIGINT, SIGTERM or SIGHUP leaves no temporary file behind (train handles the
  // first SIGINT and SIGTERM itself: it cancels the run).
  moescope::storage::removeTemporaryFilesOnSignals();
  try {
    return action ? action() : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moescope-cli: %s\n", e.what());
    return 1;
  }
}
