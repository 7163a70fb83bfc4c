// moescope-cli plan RUN [--schedule S] [--pp P] [--microbatches M] [--virtual-stages V] [--layout L]
// [--tp T] [--dp D] --out PRED: predicts another configuration's run from a measured one (planner/),
// and writes it as a run file marked predicted. --sweep ranks a grid of configurations instead.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "planner/cost_model.h"
#include "planner/planner_error.h"
#include "planner/predicted_run.h"
#include "planner/simulate.h"
#include "planner/sweep.h"

namespace moescope::app {
namespace {

struct PlanOptions {
  std::string run, out, schedule, layout;
  std::optional<int> pp, tp, dp, microbatches, virtual_stages, steps, cores;
  std::optional<double> slice_ms;
  bool sweep = false, json = false, quiet = false;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "moescope-cli plan: %s\n", message.c_str());
  return 2;
}

int runPlan(const PlanOptions& o) {
  if (!o.sweep && o.out.empty()) return fail("--out PRED.moescope is required (or --sweep)");
  if (o.slice_ms && *o.slice_ms != 0 &&
      !(*o.slice_ms >= planner::kMinSliceMs && *o.slice_ms <= planner::kMaxSliceMs))
    return fail("--slice-ms: a time slice is 0 (processor sharing) or 0.1 to 1000 ms");
  const std::optional<storage::Trace> trace = loadRun(o.run, "plan");
  if (!trace) return 2;
  try {
    const planner::CostModel model =
        planner::fitCostModel(*trace, o.run, o.cores.value_or(-1), o.slice_ms.value_or(-1));
    std::optional<storage::Schedule> schedule;
    if (!o.schedule.empty()) {
      schedule = storage::scheduleFromName(o.schedule);
      if (!schedule) return fail("--schedule " + o.schedule + ": not gpipe, 1f1b, interleaved or zb-h1");
    }
    if (o.sweep) {
      planner::SweepAxes axes;
      if (schedule) axes.schedules = {*schedule};
      if (o.pp) axes.pp = {*o.pp};
      if (o.microbatches) axes.microbatches = {*o.microbatches};
      axes.tp = o.tp.value_or(0);
      axes.virtual_stages = o.virtual_stages.value_or(2);
      axes.steps = o.steps.value_or(3);
      const planner::SweepResult result = planner::sweep(model, axes, [&](size_t done, size_t total) {
        if (!o.quiet) std::fprintf(stderr, "\rplanned %zu/%zu", done, total);
        if (!o.quiet && done == total) std::fputc('\n', stderr);
      });
      if (o.json)
        std::printf("%s\n", planner::sweepToJson(result).dump(2).c_str());
      else
        std::fputs(planner::formatSweep(result).c_str(), stdout);
      return 0;
    }
    planner::PlanTarget target = planner::targetOf(trace->run, o.steps.value_or(model.steps));
    if (schedule) target.schedule = *schedule;
    if (o.pp) target.pp = *o.pp;
    if (o.tp) target.tp = *o.tp;
    if (o.dp) target.dp = *o.dp;
    if (o.microbatches) target.microbatches = *o.microbatches;
    if (o.virtual_stages)
      target.virtual_stages = *o.virtual_stages;
    else if (schedule)
      target.virtual_stages =
          *schedule == storage::Schedule::Interleaved ? std::max(2, trace->run.virtual_stages) : 1;
    if (!o.layout.empty()) target.layout = o.layout;
    const planner::Prediction prediction = planner::predict(model, target);
    try {
      planner::writePrediction(prediction, o.out);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "moescope-cli plan: %s\n", e.what());
      return 1;
    }
    const planner::SweepRow row = planner::summarize(target, prediction.trace);
    if (o.json) {
      nlohmann::json j = planner::sweepToJson({{row}, {}})["rows"][0];
      j["out"] = o.out;
      j["calibration"] = o.run;
      j["notes"] = model.notes;
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("predicted %s: step %.3f ms, bubble %.1f%%, %.0f tokens/s -> %s\n",
                  planner::describe(target).c_str(), static_cast<double>(row.step_ns) / 1e6,
                  100 * row.bubble_share, row.tokens_per_s, o.out.c_str());
      for (const std::string& note : model.notes) std::printf("  assumed: %s\n", note.c_str());
    }
    return 0;
  } catch (const planner::PlanError& e) {
    return fail(e.what());
  }
}

}  // namespace

void registerPlan(CLI::App& cli, CommandAction& action) {
  auto o = std::make_shared<PlanOptions>();
  auto* cmd = cli.add_subcommand(
      "plan", "Predict another schedule, pipeline depth, micro-batch count, tp or dp from a measured run");
  cmd->add_option("run", o->run, "Measured run file (*.moescope) to calibrate on")->required();
  cmd->add_option("--out,-o", o->out, "Predicted run file to write (marked predicted)");
  cmd->add_option("--schedule", o->schedule, "gpipe, 1f1b, interleaved or zb-h1 (default: the run's)");
  cmd->add_option("--pp", o->pp, "Pipeline stages (default: the run's)")->check(CLI::PositiveNumber);
  cmd->add_option("--microbatches", o->microbatches, "Micro-batches per step (default: the run's)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--virtual-stages", o->virtual_stages, "Model chunks per stage for interleaved (default 2)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--layout", o->layout,
                  "ppmoe, dpmoe or dense (default: the run's; only the run's is predicted)");
  cmd->add_option("--tp", o->tp, "Tensor-parallel size (default: the run's)")->check(CLI::PositiveNumber);
  cmd->add_option("--dp", o->dp, "Data-parallel replicas (default: the run's)")->check(CLI::PositiveNumber);
  cmd->add_option("--steps", o->steps, "Steps to simulate (default: the run's)")->check(CLI::PositiveNumber);
  cmd->add_option("--cores", o->cores,
                  "Host cores a CPU run's ranks share (default: the run's host.cores; 0: a core per rank)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--slice-ms", o->slice_ms,
                  "The host scheduler's time slice when a CPU run's rank threads outnumber its cores "
                  "(default: fitted from the run; 0: processor sharing)");
  cmd->add_flag(
      "--sweep", o->sweep,
      "Rank a grid (schedules x pp x micro-batches at the run's world size) instead of writing a file; "
      "--schedule, --pp, --microbatches, --tp fix an axis");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress on stderr");
  cmd->callback([&action, o] { action = [o] { return runPlan(*o); }; });
}

}  // namespace moescope::app
