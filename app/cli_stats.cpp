// moescope-cli stats RUN [--json]: per stage, busy time by category, bubbles beside the schedule's
// theoretical share, compute-communication overlap; step time and tokens/s; communication by kind;
// per MoE layer, the load's imbalance, the dropped share and the waiting it caused.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "storage/stats_report.h"

namespace moescope::app {
namespace {

struct StatsOptions {
  std::string run;
  bool json = false;
};

int runStats(const StatsOptions& o) {
  const std::optional<storage::Trace> trace = loadRun(o.run, "stats");
  if (!trace) return 2;
  const storage::RunStats stats = storage::computeStats(*trace);
  if (o.json) {
    std::printf("%s\n", storage::statsToJson(stats).dump(2).c_str());
  } else {
    std::fputs(storage::formatStats(stats).c_str(), stdout);
  }
  return 0;
}

}  // namespace

void registerStats(CLI::App& cli, CommandAction& action) {
  auto options = std::make_shared<StatsOptions>();
  auto* cmd = cli.add_subcommand(
      "stats",
      "Per stage: busy time by category, bubbles beside the schedule's share, overlap; step time, tokens/s; "
      "per MoE layer: load imbalance, dropped share, the waiting it caused");
  cmd->add_option("run", options->run, "Run file (*.moescope)")->required();
  cmd->add_flag("--json", options->json, "Print JSON instead of tables");
  cmd->callback([&action, options] { action = [options] { return runStats(*options); }; });
}

}  // namespace moescope::app
