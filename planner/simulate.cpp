#include "planner/simulate.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include "engine/schedule.h"
#include "planner/held_activations.h"
#include "planner/host_scheduler.h"
#include "planner/pass_plan.h"
#include "planner/planner_error.h"

namespace moescope::planner {

using storage::Category;
using storage::kNone;
using Kind = engine::PipelineOp::Kind;

namespace {

// Run files start their clock somewhere; a predicted run starts at 1 s.
constexpr double kStartNs = 1e9;

struct Item {
  enum class What : uint8_t { Pass, Reduce, Barrier, Update } what = What::Pass;
  int step = 0;
  engine::PipelineOp op;
  const PassPlan* plan = nullptr;
};

// Where a running item is: solo work left, and the stretches of time it ran at each speed.
struct Running {
  size_t item = 0;
  double left = 0;
  double started = 0;
  std::vector<std::pair<double, double>> speeds;  // (time the speed began, speed), in order
};

using PassKey = std::tuple<int, int, int, int, int>;  // step, stage, kind, micro-batch, chunk

PassKey keyOf(int step, int stage, const engine::PipelineOp& op) {
  return {step, stage, static_cast<int>(op.kind), op.microbatch, op.chunk};
}

// The time at which `work` solo nanoseconds of an item were done.
double timeAt(const Running& r, double end, double work) {
  double done = 0;
  for (size_t i = 0; i < r.speeds.size(); ++i) {
    const double t0 = r.speeds[i].first, speed = r.speeds[i].second;
    const double t1 = i + 1 < r.speeds.size() ? r.speeds[i + 1].first : end;
    const double here = (t1 - t0) * speed;
    if (done + here >= work || i + 1 == r.speeds.size())
      return speed > 0 ? std::min(t1, t0 + (work - done) / speed) : t0;
    done += here;
  }
  return r.started + work;
}

std::string predictedConfig(const std::string& config, const PlanTarget& t) {
  toml::table table;
  try {
    table = toml::parse(config);
  } catch (const toml::parse_error&) {
    return config;
  }
  if (!table["parallel"].is_table()) table.insert("parallel", toml::table{});
  toml::table& p = *table["parallel"].as_table();
  p.insert_or_assign("layout", t.layout);
  p.insert_or_assign("pp", t.pp);
  p.insert_or_assign("tp", t.tp);
  p.insert_or_assign("dp", t.dp);
  p.insert_or_assign("microbatches", t.microbatches);
  p.insert_or_assign("schedule", std::string(storage::scheduleName(t.schedule)));
  p.insert_or_assign("virtual_stages", t.virtual_stages);
  if (!table["train"].is_table()) table.insert("train", toml::table{});
  table["train"].as_table()->insert_or_assign("steps", t.steps);
  std::ostringstream out;
  out << table << "\n";
  return out.str();
}

class Emitter {
 public:
  explicit Emitter(storage::Trace& trace) : trace_(trace) {}
  uint32_t name(const std::string& text) {
    const auto [it, added] = ids_.try_emplace(text, static_cast<uint32_t>(trace_.strings.size()));
    if (added) trace_.strings.push_back(text);
    return it->second;
  }
  void span(int32_t track, double start, double end, const std::string& text, Category category,
            storage::Phase phase, int32_t step, int32_t microbatch, int32_t layer, int32_t expert,
            int64_t bytes, int32_t chunk) {
    const auto s = static_cast<int64_t>(std::llround(start)), e = static_cast<int64_t>(std::llround(end));
    if (e < s) return;
    storage::addSpan(
        trace_, {track, s, e, name(text), category, phase, step, microbatch, layer, expert, bytes, chunk});
  }

 private:
  storage::Trace& trace_;
  std::map<std::string, uint32_t> ids_;
};

}  // namespace

Prediction predict(const CostModel& model, const PlanTarget& target) {
  if (const std::string problem = targetProblem(target, model.model, model.run); !problem.empty())
    throw PlanError(problem);
  const PlanContext ctx = planContext(model, target);
  const engine::PipelineShape shape{target.schedule, target.pp, target.microbatches, target.virtual_stages};
  const int stages = target.pp, ranksPerStage = target.tp * target.dp;

  // Each stage's items, with their plans (a pass's cost depends on its kind and chunk, not its
  // micro-batch).
  std::map<std::tuple<int, int, int>, std::unique_ptr<PassPlan>> plans;  // stage, what/kind, chunk
  auto planFor = [&](int stage, int what, int chunk, auto make) -> const PassPlan* {
    auto& slot = plans[{stage, what, chunk}];
    if (!slot) slot = std::make_unique<PassPlan>(make());
    return slot.get();
  };
  std::vector<std::vector<Item>> items(static_cast<size_t>(stages));
  for (int s = 0; s < stages; ++s) {
    const std::vector<engine::PipelineOp> order = engine::stageSchedule(shape, s);
    for (int step = 0; step < target.steps; ++step) {
      for (const engine::PipelineOp& op : order) {
        const PassPlan* p =
            planFor(s, static_cast<int>(op.kind), op.chunk, [&] { return planPass(ctx, s, op); });
        items[static_cast<size_t>(s)].push_back({Item::What::Pass, step, op, p});
      }
      for (auto [what, part] : {std::pair{Item::What::Reduce, TailPart::Reduce},
                                {Item::What::Barrier, TailPart::Barrier},
                                {Item::What::Update, TailPart::Update}}) {
        const PassPlan* p =
            planFor(s, 10 + static_cast<int>(part), 0, [&] { return planTail(ctx, s, part); });
        items[static_cast<size_t>(s)].push_back({what, step, {}, p});
      }
    }
  }

  // The simulation. Each stage's threads hold their pass until it ends; the host scheduler says at
  // which speed each runs (processor sharing, or time slices with a queue per core: host_scheduler.h).
  // A pass is created when it can start (its stage is free, its inputs have arrived); a stage whose
  // threads are not then running (queued behind other threads' slices) starts it at speed 0, so the
  // wait for a core falls into its first span (the receive), as the engine records it: its wait span
  // ends when the peer posted the message.
  std::map<PassKey, double> ended;
  std::vector<size_t> next(static_cast<size_t>(stages), 0);
  std::vector<double> freeAt(static_cast<size_t>(stages), kStartNs);
  std::vector<std::unique_ptr<Running>> running(static_cast<size_t>(stages));
  struct Done {
    size_t item;
    double idle_from, start, end;
    std::vector<std::pair<double, double>> speeds;
  };
  std::vector<std::vector<Done>> done(static_cast<size_t>(stages));
  HostScheduler host(model.host, stages, ranksPerStage);
  // A stage whose thread lost its core to the receiver it woke (time slices: host_scheduler.h) has
  // posted its message (the pass has ended for its dependants) but finishes the send, its last span,
  // only when it gets a core back; until then it starts nothing.
  std::vector<char> finishing(static_cast<size_t>(stages), 0);
  double now = kStartNs;
  // The loss-and-norm all-reduce starts once every stage has reduced its gradients for the step.
  std::vector<int> reduced(static_cast<size_t>(target.steps), 0);
  for (;;) {
    for (int s = 0; s < stages; ++s) {
      const auto su = static_cast<size_t>(s);
      if (!finishing[su] || host.speed(s) <= 0) continue;
      done[su].back().end = now;
      freeAt[su] = now;
      finishing[su] = 0;
    }
    // Start every item that can start now: first the blocked stages' (woken by a pass that ended now,
    // possibly taking its thread's core), then those of the stages whose threads still run.
    for (bool started = true; started;) {
      started = false;
      for (const bool blocked : {true, false}) {
        for (int s = 0; s < stages; ++s) {
          const auto su = static_cast<size_t>(s);
          if (running[su] || finishing[su] || next[su] >= items[su].size() || host.runnable(s) == blocked)
            continue;
          const Item& it = items[su][next[su]];
          bool ready = true;
          int waker = -1;
          if (it.what == Item::What::Pass) {
            for (const engine::PassRef& dep : engine::passDependencies(shape, s, it.op)) {
              const auto e = ended.find(keyOf(it.step, dep.stage, dep.op));
              if (e == ended.end() || e->second > now) {
                ready = false;
                break;
              }
              if (e->second == now && dep.stage != s) waker = dep.stage;
            }
          } else if (it.what == Item::What::Barrier) {
            ready = reduced[static_cast<size_t>(it.step)] == stages;
          }
          if (!ready) continue;
          running[su] = std::make_unique<Running>(Running{next[su], it.plan->work, now, {}});
          const int preempted = host.wake(s, now, waker);
          if (preempted >= 0 && !running[static_cast<size_t>(preempted)] &&
              !done[static_cast<size_t>(preempted)].empty())
            finishing[static_cast<size_t>(preempted)] = 1;
          started = true;
        }
      }
    }
    // A stage with nothing to run blocks (in a receive, or at the step's all-reduce), giving up its core.
    bool any = false, resumed = false;
    for (int s = 0; s < stages; ++s) {
      const auto su = static_cast<size_t>(s);
      if (!running[su] && !finishing[su]) host.block(s, now);
    }
    for (int s = 0; s < stages; ++s) {
      const auto su = static_cast<size_t>(s);
      any |= running[su] || finishing[su];
      resumed |= finishing[su] && host.speed(s) > 0;
    }
    if (resumed) continue;
    if (!any) {
      for (int s = 0; s < stages; ++s)
        if (next[static_cast<size_t>(s)] < items[static_cast<size_t>(s)].size())
          throw std::logic_error("planner: the stages wait on each other at stage " + std::to_string(s));
      break;
    }
    double step = host.nextChange() - now;
    for (int s = 0; s < stages; ++s) {
      auto& r = running[static_cast<size_t>(s)];
      if (!r) continue;
      const double speed = host.speed(s);
      if (r->speeds.empty() || r->speeds.back().second != speed) r->speeds.emplace_back(now, speed);
      if (speed > 0) step = std::min(step, r->left / speed);
    }
    if (!std::isfinite(step)) throw std::logic_error("planner: no pass runs and no core changes hands");
    step = std::max(0.0, step);
    now += step;
    for (int s = 0; s < stages; ++s) {
      auto& r = running[static_cast<size_t>(s)];
      if (!r) continue;
      r->left -= step * r->speeds.back().second;
      if (r->left > 1e-6 * std::max(1.0, items[static_cast<size_t>(s)][r->item].plan->work)) continue;
      const Item& it = items[static_cast<size_t>(s)][r->item];
      if (it.what == Item::What::Pass) ended[keyOf(it.step, s, it.op)] = now;
      if (it.what == Item::What::Reduce) ++reduced[static_cast<size_t>(it.step)];
      done[static_cast<size_t>(s)].push_back(
          {r->item, freeAt[static_cast<size_t>(s)], r->started, now, r->speeds});
      freeAt[static_cast<size_t>(s)] = now;
      ++next[static_cast<size_t>(s)];
      r.reset();
    }
    host.advance(now);
  }

  // The run.
  Prediction p;
  p.target = target;
  storage::Trace& trace = p.trace;
  storage::RunInfo& run = trace.run;
  run.name = "predicted " + describe(target);
  run.config = predictedConfig(model.run.config, target);
  run.layout = model.run.layout;
  run.backend = model.run.backend;
  run.devices = "predicted from " + model.run.devices;
  run.pp = target.pp;
  run.tp = target.tp;
  run.dp = target.dp;
  run.microbatches = target.microbatches;
  run.schedule = target.schedule;
  run.virtual_stages = target.virtual_stages;
  run.tokens_per_step = model.model.global_batch * model.model.seq_len;
  run.status = storage::RunStatus::Complete;
  run.predicted = true;
  run.calibration = model.path;
  const int ranks = stages * ranksPerStage;
  for (int r = 0; r < ranks; ++r) {
    const int stage = r / ranksPerStage, d = (r / target.tp) % target.dp, t = r % target.tp;
    trace.ranks.push_back({r, stage, t, d, kNone, "predicted"});
    trace.tracks.push_back({r, r, storage::TrackKind::HostThread, "rank " + std::to_string(r) + " host", 0});
  }
  Emitter emit(trace);
  std::vector<double> stepStart(static_cast<size_t>(target.steps), std::numeric_limits<double>::infinity());
  std::vector<double> stepEnd(static_cast<size_t>(target.steps), 0);
  for (int s = 0; s < stages; ++s) {
    for (const Done& d : done[static_cast<size_t>(s)]) {
      const Item& it = items[static_cast<size_t>(s)][d.item];
      const bool pass = it.what == Item::What::Pass;
      const int32_t mb = pass ? it.op.microbatch : kNone;
      const int32_t chunk = pass && target.virtual_stages > 1 ? it.op.chunk : kNone;
      const storage::Phase phase = !pass                                ? storage::Phase::Optimizer
                                   : it.op.kind == Kind::Forward        ? storage::Phase::Forward
                                   : it.op.kind == Kind::BackwardWeight ? storage::Phase::BackwardWeight
                                                                        : storage::Phase::Backward;
      Running r{d.item, 0, d.start, d.speeds};
      // A span that ends the pass ends when its stage let go of it: a send finished after the
      // thread got its core back (finishing, above).
      const double whole = it.plan->work * (1 - 1e-9);
      auto at = [&](double work) { return timeAt(r, d.end, work); };
      auto endAt = [&](double work) { return work >= whole ? d.end : timeAt(r, d.end, work); };
      for (int q = 0; q < ranksPerStage; ++q) {
        const int32_t rank = s * ranksPerStage + q;
        if (d.start > d.idle_from)
          emit.span(rank, d.idle_from, d.start, "wait", Category::Wait, phase, it.step, mb, kNone, kNone, 0,
                    chunk);
      }
      for (const PlacedSpan& ps : it.plan->placed) {
        const PlanSegment& seg = it.plan->segments[ps.segment];
        const int32_t rank = s * ranksPerStage + ps.rank;
        emit.span(rank, at(ps.start), endAt(ps.end), ps.wait ? "wait" : seg.name,
                  ps.wait ? Category::Wait : seg.category, pass ? seg.phase : storage::Phase::Optimizer,
                  it.step, mb, seg.layer, ps.wait ? kNone : seg.expert, ps.wait ? 0 : seg.bytes, chunk);
      }
      auto& st = stepStart[static_cast<size_t>(it.step)];
      st = std::min(st, d.start);
      stepEnd[static_cast<size_t>(it.step)] = std::max(stepEnd[static_cast<size_t>(it.step)], d.end);
    }
  }
  // Step metrics, and each rank's peak activation memory per step.
  const double tokensPerMicrobatch =
      static_cast<double>(run.tokens_per_step) / (target.dp * target.microbatches);
  std::vector<int32_t> counterTrack(static_cast<size_t>(ranks), kNone);
  if (model.activation_bytes_per_token_layer > 0) {
    for (int r = 0; r < ranks; ++r) {
      counterTrack[static_cast<size_t>(r)] = static_cast<int32_t>(trace.tracks.size());
      trace.tracks.push_back({static_cast<int32_t>(trace.tracks.size()), r, storage::TrackKind::Counter,
                              std::string(storage::kPeakActivationCounter), 1});
    }
  }
  for (int step = 0; step < target.steps; ++step) {
    const double start = stepStart[static_cast<size_t>(step)], end = stepEnd[static_cast<size_t>(step)];
    storage::StepMetric metric;
    metric.step = step;
    metric.tokens = run.tokens_per_step;
    metric.step_ms = (end - start) / 1e6;
    metric.tokens_per_s = end > start ? static_cast<double>(run.tokens_per_step) / ((end - start) / 1e9) : 0;
    metric.start_ns = static_cast<int64_t>(std::llround(start));
    metric.end_ns = static_cast<int64_t>(std::llround(end));
    trace.steps.push_back(metric);
    for (int r = 0; r < ranks && model.activation_bytes_per_token_layer > 0; ++r) {
      const double held = static_cast<double>(peakHeldLayers(target, model.model.layers, r / ranksPerStage));
      trace.counters.push_back(
          {counterTrack[static_cast<size_t>(r)], metric.end_ns,
           std::round(held * tokensPerMicrobatch * model.activation_bytes_per_token_layer)});
    }
  }
  run.start_ns = trace.steps.empty() ? 0 : trace.steps.front().start_ns;
  run.end_ns = trace.steps.empty() ? 0 : trace.steps.back().end_ns;
  trace.meta = {{std::string(storage::kCalibrationMeta), model.path},
                {std::string(storage::kPredictedMeta), "1"}};
  trace.spans.resize(trace.tracks.size());
  storage::finishTrace(trace);
  return p;
}

}  // namespace moescope::planner
