#include "storage/synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "storage/run_writer.h"

namespace moescope::storage {
namespace {

enum Name : uint32_t {
  kEmbed,
  kAttention,
  kTpAllreduce,
  kRouter,
  kSlice,
  kExpert,
  kLoss,
  kPpSend,
  kWait,
  kDpAllreduce,
  kAdam,
  kNameCount
};
constexpr std::array<std::string_view, kNameCount> kNames = {
    "embed", "attention", "tp all-reduce", "router",          "slice", "expert",
    "loss",  "pp send",   "wait for peer", "grad all-reduce", "adam"};

// splitmix64: a tiny, good, seedable generator; the same options always give the same run.
struct Random {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // d scaled by a factor in [0.9, 1.1).
  int64_t jitter(int64_t d) { return d * (900 + static_cast<int64_t>(next() % 200)) / 1000; }
};

struct Piece {
  Name name;
  Category category;
  int64_t nominal;  // ns
  int64_t bytes;
  int32_t layer;
};

// One forward or backward of one micro-batch on one stage.
struct Op {
  bool forward;
  int32_t microbatch;
  int64_t start = 0, end = 0;
};

std::vector<Op> stageOrder(Schedule schedule, int32_t p, int32_t m, int32_t stage) {
  std::vector<Op> ops;
  if (schedule == Schedule::GPipe) {
    for (int32_t j = 0; j < m; ++j) ops.push_back({true, j});
    for (int32_t j = 0; j < m; ++j) ops.push_back({false, j});
    return ops;
  }
  const int32_t warmup = std::min(p - 1 - stage, m);
  int32_t f = 0, b = 0;
  for (; f < warmup; ++f) ops.push_back({true, f});
  while (f < m) {
    ops.push_back({true, f++});
    ops.push_back({false, b++});
  }
  while (b < m) ops.push_back({false, b++});
  return ops;
}

}  // namespace

int64_t generateSynthetic(const SyntheticOptions& o, const SyntheticSink& sink) {
  const int32_t p = std::max(1, o.stages), tp = std::max(1, o.tp), dp = std::max(1, o.dp),
                m = std::max(1, o.microbatches), layers = std::max(1, o.layersPerStage);
  const int32_t ranks = p * tp * dp;
  const int64_t activationBytes = o.tokensPerMicrobatch * 1024 * 2;  // hidden 1024, bf16

  RunInfo run;
  run.name = "synthetic pp" + std::to_string(p) + " tp" + std::to_string(tp) + " dp" + std::to_string(dp);
  run.config = "# synthetic run, made by moescope's generator\n";
  run.layout = "ppmoe";
  run.backend = "synthetic";
  run.devices = std::to_string(ranks) + " synthetic ranks";
  run.pp = p;
  run.tp = tp;
  run.dp = dp;
  run.microbatches = m;
  run.schedule = o.schedule;
  run.tokens_per_step = o.tokensPerMicrobatch * m * dp;
  run.status = RunStatus::Complete;
  run.start_ns = o.startNs;

  // Rank r: stage = r / (tp * dp), then dp, then tp, as Megatron orders them.
  std::vector<RankInfo> rankInfos;
  std::vector<TrackInfo> tracks;
  for (int32_t r = 0; r < ranks; ++r) {
    rankInfos.push_back({r, r / (tp * dp), r % tp, (r / tp) % dp, kNone, "synthetic"});
    tracks.push_back({r, r, TrackKind::HostThread, "rank " + std::to_string(r) + " host", 0, kNone, kNone});
  }

  // The pieces of one forward on one stage; a backward runs them in reverse at twice the compute time.
  auto pieces = [&](int32_t stage, bool forward) {
    std::vector<Piece> out;
    if (forward && stage == 0) out.push_back({kEmbed, Category::ComputeEmbed, 60'000, 0, kNone});
    for (int32_t l = 0; l < layers; ++l) {
      const int32_t layer = stage * layers + l;
      out.push_back({kAttention, Category::ComputeAttention, 300'000, 0, layer});
      if (tp > 1) out.push_back({kTpAllreduce, Category::CommTpAllreduce, 120'000, activationBytes, layer});
      out.push_back({kRouter, Category::ComputeRouter, 20'000, 0, layer});
      out.push_back({kSlice, Category::MoeSlice, 30'000, 0, layer});
      out.push_back({kExpert, Category::ComputeExpert, 400'000, 0, layer});
      if (tp > 1) out.push_back({kTpAllreduce, Category::CommTpAllreduce, 120'000, activationBytes, layer});
    }
    if (forward && stage == p - 1) out.push_back({kLoss, Category::ComputeLoss, 50'000, 0, kNone});
    if (!forward) {
      std::reverse(out.begin(), out.end());
      for (Piece& piece : out) {
        if (!isCommunication(piece.category)) piece.nominal *= 2;
      }
    }
    if ((forward && stage < p - 1) || (!forward && stage > 0)) {
      out.push_back({kPpSend, Category::CommPpSendrecv, 80'000, activationBytes, kNone});
    }
    return out;
  };

  std::vector<std::string_view> names(kNames.begin(), kNames.end());
  sink.begin(run, rankInfos, tracks, names);

  Random rng{o.seed};
  int64_t total = 0;
  int64_t stepStart = o.startNs;
  std::vector<SpanRecord> batch;
  // durations[rank][op][piece] for the step being generated.
  std::vector<std::vector<std::vector<int64_t>>> durations(static_cast<size_t>(ranks));
  // Whole steps until the target is reached: at least one, at most one step beyond it.
  for (int64_t step = 0; step == 0 || total < o.spans; ++step) {
    const auto stepId = static_cast<int32_t>(step);
    // 1. Every rank's piece durations; an op lasts as long as its slowest rank in the stage.
    std::vector<std::vector<Op>> order(static_cast<size_t>(p));
    std::vector<std::vector<int64_t>> opLength(static_cast<size_t>(p));
    for (int32_t s = 0; s < p; ++s) {
      order[static_cast<size_t>(s)] = stageOrder(o.schedule, p, m, s);
      opLength[static_cast<size_t>(s)].assign(order[static_cast<size_t>(s)].size(), 0);
    }
    for (int32_t r = 0; r < ranks; ++r) {
      const int32_t s = rankInfos[static_cast<size_t>(r)].stage;
      auto& d = durations[static_cast<size_t>(r)];
      d.clear();
      for (size_t k = 0; k < order[static_cast<size_t>(s)].size(); ++k) {
        std::vector<int64_t> lengths;
        int64_t sum = 0;
        for (const Piece& piece : pieces(s, order[static_cast<size_t>(s)][k].forward)) {
          lengths.push_back(rng.jitter(piece.nominal));
          sum += lengths.back();
        }
        d.push_back(std::move(lengths));
        opLength[static_cast<size_t>(s)][k] = std::max(opLength[static_cast<size_t>(s)][k], sum);
      }
    }
    // 2. Schedule: an op starts when its stage is free and its input has arrived (forward from the
    // stage before, backward from the stage after; the last stage's backward after its own forward).
    std::vector<std::vector<int64_t>> fwdDone(static_cast<size_t>(p),
                                              std::vector<int64_t>(static_cast<size_t>(m), -1));
    std::vector<std::vector<int64_t>> bwdDone = fwdDone;
    std::vector<size_t> next(static_cast<size_t>(p), 0);
    std::vector<int64_t> free(static_cast<size_t>(p), stepStart);
    for (bool progress = true; progress;) {
      progress = false;
      for (int32_t s = 0; s < p; ++s) {
        auto& ops = order[static_cast<size_t>(s)];
        while (next[static_cast<size_t>(s)] < ops.size()) {
          Op& op = ops[next[static_cast<size_t>(s)]];
          const auto j = static_cast<size_t>(op.microbatch);
          int64_t ready = stepStart;
          if (op.forward && s > 0) ready = fwdDone[static_cast<size_t>(s - 1)][j];
          if (!op.forward)
            ready = s < p - 1 ? bwdDone[static_cast<size_t>(s + 1)][j] : fwdDone[static_cast<size_t>(s)][j];
          if (ready < 0) break;
          op.start = std::max(free[static_cast<size_t>(s)], ready);
          op.end = op.start + opLength[static_cast<size_t>(s)][next[static_cast<size_t>(s)]];
          (op.forward ? fwdDone : bwdDone)[static_cast<size_t>(s)][j] = op.end;
          free[static_cast<size_t>(s)] = op.end;
          ++next[static_cast<size_t>(s)];
          progress = true;
        }
      }
    }
    // 3. Emit each rank's spans: waits, the ops' pieces, then gradient all-reduce and optimizer.
    int64_t stepEnd = stepStart;
    for (int32_t r = 0; r < ranks; ++r) {
      const RankInfo& info = rankInfos[static_cast<size_t>(r)];
      const int32_t s = info.stage;
      batch.clear();
      int64_t t = stepStart;
      const auto& ops = order[static_cast<size_t>(s)];
      for (size_t k = 0; k < ops.size(); ++k) {
        const Op& op = ops[k];
        const Phase phase = op.forward ? Phase::Forward : Phase::Backward;
        if (op.start > t) {
          batch.push_back(
              {r, t, op.start, kWait, Category::Wait, phase, stepId, op.microbatch, kNone, kNone, 0});
        }
        t = op.start;
        const auto ps = pieces(s, op.forward);
        for (size_t i = 0; i < ps.size(); ++i) {
          const int64_t d = durations[static_cast<size_t>(r)][k][i];
          const int32_t expert = ps[i].name == kExpert
                                     ? (ps[i].layer + op.microbatch + info.tp_rank) % std::max(1, o.experts)
                                     : kNone;
          batch.push_back({r, t, t + d, ps[i].name, ps[i].category, phase, stepId, op.microbatch, ps[i].layer,
                           expert, ps[i].bytes});
          t += d;
        }
        t = op.end;
      }
      if (dp > 1) {
        const int64_t d = rng.jitter(900'000);
        batch.push_back({r, t, t + d, kDpAllreduce, Category::CommDpAllreduce, Phase::Optimizer, stepId,
                         kNone, kNone, kNone, int64_t{64} << 20});
        t += d;
      }
      const int64_t d = rng.jitter(250'000);
      batch.push_back(
          {r, t, t + d, kAdam, Category::Optimizer, Phase::Optimizer, stepId, kNone, kNone, kNone, 0});
      t += d;
      stepEnd = std::max(stepEnd, t);
      sink.spans(batch);
      total += static_cast<int64_t>(batch.size());
    }
    StepMetric metric;
    metric.step = stepId;
    metric.loss = 10.0 * std::exp(-0.05 * static_cast<double>(step)) + 2.0;
    metric.ce_loss = metric.loss * 0.99;
    metric.aux_loss = metric.loss * 0.01;
    metric.tokens = run.tokens_per_step;
    metric.start_ns = stepStart;
    metric.end_ns = stepEnd;
    metric.step_ms = static_cast<double>(stepEnd - stepStart) / 1e6;
    metric.tokens_per_s =
        static_cast<double>(metric.tokens) / (static_cast<double>(stepEnd - stepStart) / 1e9);
    sink.step(metric);
    stepStart = stepEnd + 20'000;  // the data loader's gap between steps
  }
  return total;
}

int64_t writeSyntheticRun(const std::filesystem::path& path, const SyntheticOptions& options) {
  std::unique_ptr<RunWriter> writer;
  std::vector<uint32_t> ids;
  int64_t end = 0;
  SyntheticSink sink;
  std::vector<SpanRecord> mapped;
  sink.begin = [&](const RunInfo& run, std::span<const RankInfo> ranks, std::span<const TrackInfo> tracks,
                   std::span<const std::string_view> names) {
    writer = RunWriter::create(path, run);
    for (const RankInfo& r : ranks) writer->addRank(r);
    for (const TrackInfo& t : tracks) writer->addTrack(t);
    for (std::string_view n : names) ids.push_back(writer->intern(n));
  };
  sink.spans = [&](std::span<const SpanRecord> spans) {
    mapped.assign(spans.begin(), spans.end());
    for (SpanRecord& s : mapped) s.name = ids[s.name];
    writer->addSpans(mapped);
  };
  sink.step = [&](const StepMetric& m) {
    writer->addStepMetric(m);
    end = m.end_ns;
  };
  const int64_t count = generateSynthetic(options, sink);
  writer->setMeta("generator", "moescope synthetic");
  writer->setStatus(RunStatus::Complete, "", end);
  writer->commit();
  return count;
}

Trace syntheticTrace(const SyntheticOptions& options) {
  Trace trace;
  SyntheticSink sink;
  sink.begin = [&](const RunInfo& run, std::span<const RankInfo> ranks, std::span<const TrackInfo> tracks,
                   std::span<const std::string_view> names) {
    trace.run = run;
    trace.ranks.assign(ranks.begin(), ranks.end());
    trace.tracks.assign(tracks.begin(), tracks.end());
    trace.spans.resize(tracks.size());
    for (std::string_view n : names) trace.strings.emplace_back(n);
  };
  sink.spans = [&](std::span<const SpanRecord> spans) {
    for (const SpanRecord& s : spans) addSpan(trace, s);
  };
  sink.step = [&](const StepMetric& m) {
    trace.steps.push_back(m);
    trace.run.end_ns = m.end_ns;
  };
  generateSynthetic(options, sink);
  trace.meta.emplace_back("generator", "moescope synthetic");
  finishTrace(trace);
  for (SpanColumns& c : trace.spans) shrinkSpans(c);
  return trace;
}

}  // namespace moescope::storage
