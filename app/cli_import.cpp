// moescope-cli import TRACE... -o RUN: PyTorch profiler (Kineto) traces, one per rank, into one run file
// (storage/import_traces.h).
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/cli_commands.h"
#include "storage/import_error.h"
#include "storage/import_traces.h"
#include "storage/rules.h"
#include "storage/storage_error.h"

namespace moescope::app {
namespace {

struct ImportCliOptions {
  std::vector<std::string> traces;
  std::string output;
  std::optional<int32_t> pp, tp, dp, rank;
  std::string order = "tp-dp-pp";
  std::string schedule = "1f1b";
  std::vector<std::string> rules;
};

int runImport(const ImportCliOptions& o) {
  storage::ImportOptions options;
  for (const std::string& t : o.traces) options.traces.emplace_back(t);
  options.output = o.output;
  options.pp = o.pp;
  options.tp = o.tp;
  options.dp = o.dp;
  options.rank = o.rank;
  options.order = o.order;
  options.schedule = *storage::scheduleFromName(o.schedule);
  for (const std::string& r : o.rules) options.rules.emplace_back(r);
  storage::ImportSummary s;
  try {
    s = storage::importTraces(options);
  } catch (const storage::ImportError& e) {
    std::fprintf(stderr, "moescope-cli import: %s\n", e.what());
    return 2;
  } catch (const storage::RulesError& e) {
    std::fprintf(stderr, "moescope-cli import: %s\n", e.what());
    return 2;
  } catch (const storage::StorageError& e) {
    std::fprintf(stderr, "moescope-cli import: %s\n", e.what());
    return 1;
  }
  for (const std::string& note : s.notes) std::fprintf(stderr, "moescope-cli import: %s\n", note.c_str());
  for (const storage::ImportedRank& r : s.ranks) {
    std::printf(
        "rank %d (stage %d, tp %d, dp %d): %lld spans, %lld kernels, %lld memcpy, %lld memset, %lld of "
        "them tied to their launch; %s\n",
        r.rank, r.stage, r.tp_rank, r.dp_rank, static_cast<long long>(r.spans),
        static_cast<long long>(r.kernels), static_cast<long long>(r.memcpys),
        static_cast<long long>(r.memsets), static_cast<long long>(r.linked), r.trace.c_str());
  }
  std::printf("wrote %zu ranks (pp %d, tp %d, dp %d), %d steps, %lld spans, %lld GPU records to %s\n",
              s.ranks.size(), s.layout.pp, s.layout.tp, s.layout.dp, s.steps, static_cast<long long>(s.spans),
              static_cast<long long>(s.gpu_records), o.output.c_str());
  return 0;
}

}  // namespace

void registerImport(CLI::App& cli, CommandAction& action) {
  auto o = std::make_shared<ImportCliOptions>();
  auto* cmd = cli.add_subcommand(
      "import",
      "Import PyTorch profiler (Kineto) traces, one .json or .json.gz per rank, into one run file.\n"
      "Ranks are aligned by their hosts' clocks (each trace's baseTimeNanoseconds). Range names get their\n"
      "category, phase, step, micro-batch and layer from naming rules: --rules files first, then the\n"
      "shipped sets for moescope, Megatron-Core and PyTorch (samples/rules/).");
  cmd->add_option("traces", o->traces, "Trace files (Kineto JSON, .json or .json.gz), one per rank")
      ->required();
  cmd->add_option("-o,--output", o->output,
                  "Run file to write (*.moescope); replaced only once the import is whole")
      ->required();
  cmd->add_option("--pp", o->pp, "Pipeline stages (default 1)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--tp", o->tp, "Tensor-parallel size (default 1)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--dp", o->dp, "Data-parallel size (default: the world size over pp x tp)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option(
         "--order", o->order,
         "Order of the ranks, fastest-varying first, as Megatron's --order (cp and ep taken as size 1)")
      ->capture_default_str();
  cmd->add_option("--schedule", o->schedule,
                  "Pipeline schedule the job ran: micro-batches are rebuilt from it")
      ->capture_default_str()
      ->check(CLI::IsMember({"gpipe", "1f1b"}));
  cmd->add_option("--rules", o->rules, "Naming rules file (TOML), tried before the shipped sets; repeatable");
  cmd->add_option("--rank", o->rank,
                  "Rank of a single trace that says none (no distributedInfo, none in its name)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->callback([&action, o] { action = [o] { return runImport(*o); }; });
}

}  // namespace moescope::app
