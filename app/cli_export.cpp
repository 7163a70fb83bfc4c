// moescope-cli export RUN --format chrome|csv|moe-load -o FILE: Chrome Trace Event JSON (Perfetto UI,
// chrome://tracing), CSV of spans, or CSV of the MoE routing table (tokens kept per expert and dropped
// per step, micro-batch, layer and replica). FILE "-" writes to standard output; any other FILE appears
// whole or not at all (storage/output_file.h), and an existing one is replaced only with --force.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "storage/analysis_moe.h"
#include "storage/export_chrome.h"
#include "storage/export_csv.h"
#include "storage/output_file.h"

namespace moescope::app {
namespace {

struct ExportOptions {
  std::string run;
  std::string format;
  std::string output;
  bool force = false;
};

int runExport(const ExportOptions& o) {
  const bool toStdout = o.output == "-";
  std::unique_ptr<storage::OutputFile> file;
  if (!toStdout) {
    try {
      const storage::OutputPath output{"-o", o.output};
      const std::vector<std::filesystem::path> inputs{o.run};
      storage::checkOutputs({&output, 1}, inputs);
      file = storage::OutputFile::open(output, o.force);
    } catch (const storage::OutputRefused& e) {
      std::fprintf(stderr, "moescope-cli export: %s\n", e.what());
      return 2;
    }
  }
  const std::optional<storage::Trace> trace = loadRun(o.run, "export");
  if (!trace) return 2;
  if (o.format == "moe-load" && trace->routing.empty()) {
    std::fprintf(stderr,
                 "moescope-cli export: %s recorded no MoE routing (a dense model, or an older run file)\n",
                 o.run.c_str());
    return 2;
  }
  int64_t written = 0;
  auto write = [&](std::ostream& out) {
    written = o.format == "chrome"     ? storage::exportChromeTrace(*trace, out)
              : o.format == "moe-load" ? storage::exportMoeLoadCsv(*trace, out)
                                       : storage::exportSpansCsv(*trace, out);
  };
  const char* what = o.format == "chrome" ? "events" : o.format == "moe-load" ? "expert rows" : "spans";
  if (toStdout) {
    write(std::cout);
    std::cout.flush();
    if (!std::cout) {
      std::fprintf(stderr, "moescope-cli export: writing to standard output failed\n");
      return 1;
    }
    std::fprintf(stderr, "wrote %lld %s to standard output\n", static_cast<long long>(written), what);
    return 0;
  }
  try {
    storage::writeOutput(*file, write);
  } catch (const storage::StorageError& e) {
    std::fprintf(stderr, "moescope-cli export: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %lld %s to %s\n", static_cast<long long>(written), what, o.output.c_str());
  return 0;
}

}  // namespace

void registerExport(CLI::App& cli, CommandAction& action) {
  auto options = std::make_shared<ExportOptions>();
  auto* cmd = cli.add_subcommand("export",
                                 "Export a run: Chrome Trace Event JSON (Perfetto, chrome://tracing), CSV of "
                                 "spans, or CSV of the MoE load");
  cmd->add_option("run", options->run, "Run file (*.moescope)")->required();
  cmd->add_option("--format", options->format,
                  "chrome: Trace Event JSON; csv: one row per span; moe-load: one row per step, micro-batch, "
                  "MoE layer, replica and expert (kept, with the group's assignments and dropped)")
      ->required()
      ->check(CLI::IsMember({"chrome", "csv", "moe-load"}));
  cmd->add_option("-o,--output", options->output, "File to write (- for standard output)")->required();
  addForceFlag(cmd, options->force);
  cmd->callback([&action, options] { action = [options] { return runExport(*options); }; });
}

}  // namespace moescope::app
