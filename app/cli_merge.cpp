// moescope-cli merge SHARDS_DIR -o RUN.moescope: one run file from the shards a multi-process run
// wrote (storage/shard_merge.h). Bad input (no such folder, no shards, shards of different runs): one
// line, exit 2, the output untouched. A run whose processes did not all finish is merged with what
// they recorded and marked failed; the merge says so on one line and still exits 0.
#include <cstdio>
#include <memory>
#include <string>

#include "app/cli_commands.h"
#include "storage/shard_merge.h"

namespace moescope::app {
namespace {

struct MergeOptions {
  std::string shards;
  std::string out;
  bool quiet = false;
};

int runMerge(const MergeOptions& o) {
  try {
    const auto files = storage::listShards(o.shards);
    const storage::MergeReport r = storage::mergeShards(files, o.out, [&](int32_t done, int32_t total) {
      if (!o.quiet) std::fprintf(stderr, "merged shard %d/%d\n", done, total);
    });
    std::printf("%s: %d shards of %d processes, %lld spans, %lld GPU records, %lld counter samples; run %s\n",
                o.out.c_str(), r.shards, r.processes, static_cast<long long>(r.spans),
                static_cast<long long>(r.gpu_records), static_cast<long long>(r.counters),
                std::string(storage::runStatusName(r.status)).c_str());
    if (r.status != storage::RunStatus::Complete)
      std::fprintf(stderr, "moescope-cli merge: the run did not finish: %s\n", r.error.c_str());
    return 0;
  } catch (const storage::StorageError& e) {
    std::fprintf(stderr, "moescope-cli merge: %s\n", e.what());
    return 2;
  }
}

}  // namespace

void registerMerge(CLI::App& cli, CommandAction& action) {
  auto options = std::make_shared<MergeOptions>();
  auto* cmd = cli.add_subcommand(
      "merge", "Merge the shards of a multi-process run (RUN.moescope.shards/) into one run file");
  cmd->add_option("shards", options->shards, "Folder of shard-<index>.moescope files")->required();
  cmd->add_option("-o,--out", options->out, "The merged run file (replaced once whole)")->required();
  cmd->add_flag("-q,--quiet", options->quiet, "No progress lines");
  cmd->callback([&action, options] { action = [options] { return runMerge(*options); }; });
}

}  // namespace moescope::app
