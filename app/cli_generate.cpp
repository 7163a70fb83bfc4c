// moescope-cli generate -o FILE [...]: writes a synthetic pipeline-parallel run (storage/synthetic.h),
// for samples, demos and benchmarks.
#include <cstdio>
#include <memory>
#include <string>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "storage/output_file.h"
#include "storage/storage_error.h"
#include "storage/synthetic.h"

namespace moescope::app {
namespace {

struct GenerateOptions {
  storage::SyntheticOptions synthetic;
  std::string schedule = "1f1b";
  std::string output;
  bool force = false;
};

int runGenerate(GenerateOptions o) {
  o.synthetic.schedule = *storage::scheduleFromName(o.schedule);
  std::unique_ptr<storage::OutputFile> file;
  try {
    file = storage::OutputFile::open({"-o", o.output}, o.force, storage::OutputFile::Kind::RunFile);
  } catch (const storage::OutputRefused& e) {
    std::fprintf(stderr, "moescope-cli generate: %s\n", e.what());
    return 2;
  }
  try {
    const int64_t spans = storage::writeSyntheticRun(file->writePath(), o.synthetic);
    file->commit();
    std::printf("wrote %lld spans to %s\n", static_cast<long long>(spans), o.output.c_str());
  } catch (const storage::StorageError& e) {
    std::fprintf(stderr, "moescope-cli generate: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void registerGenerate(CLI::App& cli, CommandAction& action) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = cli.add_subcommand("generate",
                                 "Write a synthetic pipeline-parallel run file (for samples and benchmarks)");
  cmd->add_option("-o,--output", o->output, "Run file to write")->required();
  addForceFlag(cmd, o->force);
  cmd->add_option("--stages", o->synthetic.stages, "Pipeline stages")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--tp", o->synthetic.tp, "Tensor-parallel ranks per stage")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--dp", o->synthetic.dp, "Data-parallel replicas")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--microbatches", o->synthetic.microbatches, "Micro-batches per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--layers", o->synthetic.layersPerStage, "Layers per stage")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--schedule", o->schedule, "gpipe or 1f1b")
      ->capture_default_str()
      ->check(CLI::IsMember({"gpipe", "1f1b"}));
  cmd->add_option("--spans", o->synthetic.spans, "At least this many spans (whole steps)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--seed", o->synthetic.seed, "Seed of the duration jitter")->capture_default_str();
  cmd->callback([&action, o] { action = [o] { return runGenerate(*o); }; });
}

}  // namespace moescope::app
