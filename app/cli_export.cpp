// moescope-cli export RUN --format chrome|csv -o FILE: Chrome Trace Event JSON (Perfetto UI,
// chrome://tracing) or CSV of spans.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "app/cli_commands.h"
#include "storage/export_chrome.h"
#include "storage/export_csv.h"
#include "storage/run_reader.h"

namespace moescope::app {
namespace {

struct ExportOptions {
  std::string run;
  std::string format;
  std::string output;
};

int runExport(const ExportOptions& o) {
  storage::Trace trace;
  try {
    trace = storage::RunReader::open(o.run)->load();
  } catch (const storage::StorageError& e) {
    std::fprintf(stderr, "moescope-cli export: %s\n", e.what());
    return 2;
  }
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::fprintf(stderr, "moescope-cli export: %s: cannot write\n", o.output.c_str());
    return 1;
  }
  const int64_t written =
      o.format == "chrome" ? storage::exportChromeTrace(trace, out) : storage::exportSpansCsv(trace, out);
  out.close();
  if (!out) {
    std::fprintf(stderr, "moescope-cli export: %s: write failed\n", o.output.c_str());
    return 1;
  }
  std::printf("wrote %lld %s to %s\n", static_cast<long long>(written),
              o.format == "chrome" ? "events" : "spans", o.output.c_str());
  return 0;
}

}  // namespace

void registerExport(CLI::App& cli, CommandAction& action) {
  auto options = std::make_shared<ExportOptions>();
  auto* cmd = cli.add_subcommand(
      "export", "Export a run: Chrome Trace Event JSON (Perfetto, chrome://tracing) or CSV of spans");
  cmd->add_option("run", options->run, "Run file (*.moescope)")->required();
  cmd->add_option("--format", options->format, "chrome: Trace Event JSON; csv: one row per span")
      ->required()
      ->check(CLI::IsMember({"chrome", "csv"}));
  cmd->add_option("-o,--output", options->output, "File to write")->required();
  cmd->callback([&action, options] { action = [options] { return runExport(*options); }; });
}

}  // namespace moescope::app
