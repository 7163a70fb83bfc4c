// moescope-cli compare RUN RUN... [--json|--csv] [--baseline N]: the runs side by side (step time,
// tokens/s, bubble share, time by category), with ratios to the baseline (the first run unless
// --baseline picks another, counted from 0) and the largest differences called out.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "storage/analysis_compare.h"

namespace moescope::app {
namespace {

struct CompareOptions {
  std::vector<std::string> runs;
  bool json = false;
  bool csv = false;
  size_t baseline = 0;
  size_t top = 3;
};

int runCompare(const CompareOptions& o) {
  if (o.baseline >= o.runs.size()) {
    std::fprintf(stderr, "moescope-cli compare: --baseline %zu: there are %zu runs (0 to %zu)\n", o.baseline,
                 o.runs.size(), o.runs.size() - 1);
    return 2;
  }
  std::vector<storage::RunSummary> summaries;
  for (const std::string& path : o.runs) {
    const std::optional<storage::Trace> trace = loadRun(path, "compare");
    if (!trace) return 2;
    summaries.push_back(storage::summarizeRun(*trace));
  }
  const storage::Comparison c = storage::compareRuns(summaries, o.baseline, o.top);
  if (o.json)
    std::printf("%s\n", storage::comparisonToJson(c).dump(2).c_str());
  else if (o.csv)
    std::fputs(storage::comparisonToCsv(c).c_str(), stdout);
  else
    std::fputs(storage::formatComparison(c).c_str(), stdout);
  return 0;
}

}  // namespace

void registerCompare(CLI::App& cli, CommandAction& action) {
  auto options = std::make_shared<CompareOptions>();
  auto* cmd = cli.add_subcommand(
      "compare",
      "Runs side by side: step time, tokens/s, bubble share, time by category; ratios to a baseline");
  cmd->add_option("runs", options->runs, "Run files (*.moescope), two or more")->required()->expected(2, -1);
  auto* json = cmd->add_flag("--json", options->json, "Print JSON instead of a table");
  cmd->add_flag("--csv", options->csv, "Print CSV instead of a table")->excludes(json);
  cmd->add_option("--baseline", options->baseline, "Index of the baseline run, from 0 (default: the first)");
  cmd->add_option("--top", options->top, "How many of the largest differences to call out (default 3)");
  cmd->callback([&action, options] { action = [options] { return runCompare(*options); }; });
}

}  // namespace moescope::app
