// moescope-cli export RUN --format chrome|csv|moe-load -o FILE: Chrome Trace Event JSON (Perfetto UI,
// chrome://tracing), CSV of spans, or CSV of the MoE routing table (tokens kept per expert and
// dropped per step, micro-batch, layer and replica).
#include <cstdio>
#include <memory>
#include <string>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "storage/analysis_moe.h"
#include "storage/export_chrome.h"
#include "storage/export_csv.h"

namespace moescope::app {
namespace {

struct ExportOptions {
  std::string run;
  std::string format;
  std::string output;
};

int runExport(const ExportOptions& o) {
  const std::optional<storage::Trace> trace = loadRun(o.run, "export");
  if (!trace) return 2;
  if (o.format == "moe-load" && trace->routing.empty()) {
    std::fprintf(stderr,
                 "moescope-cli export: %s recorded no MoE routing (a dense model, or an older run file)\n",
                 o.run.c_str());
    return 2;
  }
  int64_t written = 0;
  const bool ok = writeWhole(o.output, "export", [&](std::ostream& out) {
    written = o.format == "chrome"     ? storage::exportChromeTrace(*trace, out)
              : o.format == "moe-load" ? storage::exportMoeLoadCsv(*trace, out)
                                       : storage::exportSpansCsv(*trace, out);
  });
  if (!ok) return 1;
  std::printf("wrote %lld %s to %s\n", static_cast<long long>(written),
              o.format == "chrome"     ? "events"
              : o.format == "moe-load" ? "expert rows"
                                       : "spans",
              o.output.c_str());
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
  cmd->add_option("-o,--output", options->output, "File to write")->required();
  cmd->callback([&action, options] { action = [options] { return runExport(*options); }; });
}

}  // namespace moescope::app
