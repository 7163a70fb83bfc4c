#include "planner/pass_plan.h"

#include <algorithm>
#include <optional>

#include "planner/planner_error.h"

namespace moescope::planner {

using storage::Category;
using storage::kNone;
using storage::Phase;
using Kind = engine::PipelineOp::Kind;

namespace {

bool isCollective(Category c) {
  return c == Category::CommTpAllreduce || c == Category::CommEpAlltoall || c == Category::CommDpAllreduce;
}

struct Builder {
  const PlanContext& ctx;
  const CostModel& m;
  std::vector<PlanSegment> out;

  // A transfer's time scaled by its fit from the measured size and group to the target's.
  double transferNs(const SegmentCost& s, double bytes_t, int n_c, int n_t) const {
    const auto it = m.transfers.find(s.category);
    const double factor = s.category == Category::CommPpSendrecv ? 1.0 : allReduceFactor(n_t, n_c);
    if (it == m.transfers.end() || it->second.time(static_cast<double>(s.bytes)) <= 0)
      return s.bytes > 0 ? s.ns * bytes_t * factor / static_cast<double>(s.bytes) : s.ns;
    const TransferFit& f = it->second;
    return s.ns * (f.latency_ns + f.ns_per_byte * bytes_t * factor) / f.time(static_cast<double>(s.bytes));
  }

  // Adds a measured segment scaled to the target; `share` is the part of its compute this pass does.
  void add(const SegmentCost& s, Phase phase, int32_t layer, double share = 1, bool keep_gap = true) {
    const PlanTarget& t = ctx.target;
    const storage::RunInfo& c = m.run;
    PlanSegment seg{s.name, s.category, phase, layer, s.expert, 0, 0, keep_gap ? s.gap_ns : 0.0};
    if (storage::isCommunication(s.category)) {
      const int n_c = groupSize(s.name, s.category, c.pp, c.tp, c.dp);
      const int n_t = groupSize(s.name, s.category, t.pp, t.tp, t.dp);
      if (isCollective(s.category) && n_t < 2) return;  // no collective over one rank
      const double bytes_t = static_cast<double>(s.bytes) * ctx.token_ratio;
      seg.bytes = static_cast<int64_t>(bytes_t);
      seg.ns = transferNs(s, bytes_t, n_c, n_t);
      seg.sync = isCollective(s.category);
    } else {
      double ns = s.ns * ctx.token_ratio * share;
      // Attention and the dense FFN are split over tp (heads, d_ff); experts move whole.
      if (s.category == Category::ComputeAttention || s.category == Category::ComputeFfn)
        ns *= static_cast<double>(c.tp) / t.tp;
      seg.ns = ns;
    }
    if (s.expert != kNone && m.model.experts > 0) {
      if (m.model.layout == "dpmoe")
        seg.owner_dp = static_cast<int>(s.expert / (m.model.experts / t.dp));
      else
        seg.owner_tp = static_cast<int>(s.expert / (m.model.experts / t.tp));
    }
    out.push_back(std::move(seg));
  }

  const std::vector<TemplateEntry>* entries(int64_t layer, Phase phase) const {
    const auto it = m.layers.find({layer, phase});
    return it == m.layers.end() ? nullptr : &it->second;
  }

  // The layer's measured phase `from`, each compute span scaled by share(category).
  template <class Share>
  void addLayer(int64_t layer, Phase from, Phase as, Share share, bool compute_only, bool keep_gap) {
    const std::vector<TemplateEntry>* list = entries(layer, from);
    if (!list) return;
    for (const TemplateEntry& e : *list) {
      if (e.expert_names.empty()) {
        if (compute_only && !splitsBetweenBAndW(e.segment.category)) continue;
        add(e.segment, as, static_cast<int32_t>(layer), share(e.segment.category), keep_gap);
        continue;
      }
      for (int32_t x = 0; x < m.model.experts; ++x) {
        for (size_t k = 0; k < e.expert_names.size(); ++k) {
          if (compute_only && !splitsBetweenBAndW(e.expert_categories[k])) continue;
          const auto it = m.experts.find({layer, from, e.expert_names[k], x});
          if (it != m.experts.end())
            add(it->second, as, static_cast<int32_t>(layer), share(e.expert_categories[k]), keep_gap);
        }
      }
    }
  }

  void layerPass(int64_t layer, Kind kind) {
    const double s = m.input_share;
    auto all = [](Category) { return 1.0; };
    auto input = [&](Category c) { return splitsBetweenBAndW(c) ? s : 1.0; };
    auto weight = [&](Category c) { return splitsBetweenBAndW(c) ? 1 - s : 0.0; };
    switch (kind) {
      case Kind::Forward:
        addLayer(layer, Phase::Forward, Phase::Forward, all, false, true);
        break;
      case Kind::Backward:
        addLayer(layer, Phase::Backward, Phase::Backward, all, false, true);
        if (m.split_backward) addLayer(layer, Phase::BackwardWeight, Phase::Backward, all, false, true);
        break;
      case Kind::BackwardInput:
        if (m.split_backward)
          addLayer(layer, Phase::Backward, Phase::Backward, all, false, true);
        else
          addLayer(layer, Phase::Backward, Phase::Backward, input, false, true);
        break;
      case Kind::BackwardWeight:
        if (m.split_backward)
          addLayer(layer, Phase::BackwardWeight, Phase::BackwardWeight, all, false, true);
        else
          addLayer(layer, Phase::Backward, Phase::BackwardWeight, weight, true, false);
        break;
    }
  }

  std::optional<SegmentCost> boundary(const std::string& name, Phase phase) const {
    const auto it = m.boundary.find({name, phase});
    if (it == m.boundary.end()) return std::nullopt;
    return it->second;
  }

  // A pipeline send or receive; from a run without pipeline stages, a transfer of the activation's
  // size (a tensor-parallel all-reduce moves the same tensor) on the all-reduce's fit.
  void pipelineTransfer(const std::string& name, Phase phase) {
    if (const auto b = boundary(name, phase)) return add(*b, phase, kNone);
    const std::vector<TemplateEntry>* first = entries(0, Phase::Forward);
    const auto tpFit = m.transfers.find(Category::CommTpAllreduce);
    if (first && tpFit != m.transfers.end()) {
      for (const TemplateEntry& e : *first) {
        if (e.segment.category != Category::CommTpAllreduce) continue;
        const double bytes = static_cast<double>(e.segment.bytes);
        return add({name, Category::CommPpSendrecv, kNone, tpFit->second.time(bytes), 0, e.segment.bytes},
                   phase, kNone);
      }
    }
    throw PlanError("pp " + std::to_string(ctx.target.pp) + ": the calibration run measured no " + name +
                    " and no tensor-parallel all-reduce to model a pipeline transfer from");
  }

  void addBoundary(const std::string& name, Phase from, Phase as, double share = 1, bool keep_gap = true) {
    if (const auto b = boundary(name, from)) add(*b, as, kNone, share, keep_gap);
  }
};

RankParameters stageParameters(const PlanContext& ctx, int stage) {
  const PlanTarget& t = ctx.target;
  const CostModel& m = *ctx.model;
  RankParameters p;
  const std::vector<LayerRange> chunks = stageChunks(t, m.model.layers, stage);
  const int last = t.pp * t.virtual_stages - 1;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const int g = static_cast<int>(c) * t.pp + stage;
    const RankParameters q =
        rankParameters(m.model, chunks[c].begin, chunks[c].end, g == 0, g == last, t.tp, t.dp);
    p.total += q.total;
    p.replicated += q.replicated;
  }
  return p;
}

}  // namespace

PlanContext planContext(const CostModel& model, const PlanTarget& target) {
  PlanContext ctx{&model, target, 1};
  const double tokens = static_cast<double>(model.model.global_batch) *
                        static_cast<double>(model.model.seq_len) /
                        (static_cast<double>(target.dp) * target.microbatches);
  if (model.tokens_per_microbatch > 0) ctx.token_ratio = tokens / model.tokens_per_microbatch;
  return ctx;
}

PassPlan planPass(const PlanContext& ctx, int stage, const engine::PipelineOp& op) {
  const CostModel& m = *ctx.model;
  const PlanTarget& t = ctx.target;
  const std::vector<LayerRange> chunks = stageChunks(t, m.model.layers, stage);
  const LayerRange& range = chunks.at(static_cast<size_t>(op.chunk));
  const int g = op.chunk * t.pp + stage;
  const bool first = g == 0, last = g == t.pp * t.virtual_stages - 1;
  Builder b{ctx, m, {}};
  const double s = m.input_share;
  switch (op.kind) {
    case Kind::Forward:
      first ? b.addBoundary("embed", Phase::Forward, Phase::Forward)
            : b.pipelineTransfer("recv_activation", Phase::Forward);
      for (int64_t l = range.begin; l < range.end; ++l) b.layerPass(l, op.kind);
      last ? b.addBoundary("loss", Phase::Forward, Phase::Forward)
           : b.pipelineTransfer("send_activation", Phase::Forward);
      break;
    case Kind::Backward:
    case Kind::BackwardInput: {
      const bool input = op.kind == Kind::BackwardInput && !m.split_backward;
      if (last) {
        b.addBoundary("loss", Phase::Backward, Phase::Backward, input ? s : 1.0);
        if (op.kind == Kind::Backward && m.split_backward)
          b.addBoundary("loss", Phase::BackwardWeight, Phase::Backward);
      } else {
        b.pipelineTransfer("recv_grad", Phase::Backward);
      }
      for (int64_t l = range.end; l-- > range.begin;) b.layerPass(l, op.kind);
      if (!first) {
        b.pipelineTransfer("send_grad", Phase::Backward);
      } else if (op.kind == Kind::Backward) {
        m.split_backward ? b.addBoundary("embed", Phase::BackwardWeight, Phase::Backward)
                         : b.addBoundary("embed", Phase::Backward, Phase::Backward);
      }
      break;
    }
    case Kind::BackwardWeight:
      if (last) {
        m.split_backward ? b.addBoundary("loss", Phase::BackwardWeight, Phase::BackwardWeight)
                         : b.addBoundary("loss", Phase::Backward, Phase::BackwardWeight, 1 - s, false);
      }
      for (int64_t l = range.end; l-- > range.begin;) b.layerPass(l, op.kind);
      if (first) {
        m.split_backward ? b.addBoundary("embed", Phase::BackwardWeight, Phase::BackwardWeight)
                         : b.addBoundary("embed", Phase::Backward, Phase::BackwardWeight, 1, false);
      }
      break;
  }
  PassPlan plan{std::move(b.out), {}, 0};
  placeSegments(plan, t.tp, t.dp);
  return plan;
}

PassPlan planTail(const PlanContext& ctx, int stage, TailPart part) {
  const CostModel& m = *ctx.model;
  const PlanTarget& t = ctx.target;
  const RankParameters params = stageParameters(ctx, stage);
  PassPlan plan;
  auto optimizer = [&](const char* name) {
    const auto it = m.tail.find(name);
    if (it == m.tail.end()) return;
    plan.segments.push_back({name, Category::Optimizer, Phase::Optimizer, kNone, kNone, 0,
                             it->second.ns * static_cast<double>(params.total), 0});
  };
  switch (part) {
    case TailPart::Reduce:
      if (t.dp > 1) {
        // The gradient all-reduce moves the replicated parameters' gradients (fp32 unless the run
        // measured another size per parameter).
        const RankParameters measured = [&] {
          PlanContext c = ctx;
          c.target = targetOf(m.run, 2);
          return stageParameters(c, std::min(stage, m.run.pp - 1));
        }();
        const auto it = m.tail.find("grad_allreduce");
        const double bytes_per_param =
            it != m.tail.end() && measured.replicated > 0
                ? static_cast<double>(it->second.bytes) / static_cast<double>(measured.replicated)
                : 4.0;
        const double bytes = bytes_per_param * static_cast<double>(params.replicated);
        const TransferFit own = m.transfers.contains(Category::CommDpAllreduce)
                                    ? m.transfers.at(Category::CommDpAllreduce)
                                    : TransferFit{};
        double ns = 0;
        if (it != m.tail.end() && m.run.dp > 1) {
          ns = it->second.ns * (own.latency_ns + own.ns_per_byte * bytes * allReduceFactor(t.dp, m.run.dp)) /
               std::max(1.0, own.time(static_cast<double>(it->second.bytes)));
        } else {
          // No gradient all-reduce measured: the dp fit's latency, and the bandwidth of the best
          // measured transfer kind.
          double per_byte = own.sizes > 1 ? own.ns_per_byte : 0;
          for (const auto& [category, fit] : m.transfers)
            if (per_byte <= 0 || (fit.sizes > 1 && fit.ns_per_byte > 0 && fit.ns_per_byte < per_byte))
              per_byte = fit.sizes > 1 ? fit.ns_per_byte : per_byte;
          ns = own.latency_ns + per_byte * bytes * allReduceFactor(t.dp, 2);
        }
        plan.segments.push_back({"grad_allreduce", Category::CommDpAllreduce, Phase::Optimizer, kNone, kNone,
                                 static_cast<int64_t>(bytes), ns, 0, -1, -1, true});
      }
      optimizer("grad_norm");
      break;
    case TailPart::Barrier: {
      const auto it = m.tail.find("loss_norm_allreduce");
      if (it != m.tail.end())
        plan.segments.push_back({"loss_norm_allreduce", Category::CommDpAllreduce, Phase::Optimizer, kNone,
                                 kNone, it->second.bytes, it->second.ns, 0, -1, -1, true});
      break;
    }
    case TailPart::Update:
      optimizer("adamw");
      break;
  }
  placeSegments(plan, t.tp, t.dp);
  return plan;
}

void placeSegments(PassPlan& plan, int tp, int dp) {
  const int ranks = tp * dp;
  std::vector<double> cursor(static_cast<size_t>(ranks), 0);
  plan.placed.clear();
  for (size_t i = 0; i < plan.segments.size(); ++i) {
    const PlanSegment& s = plan.segments[i];
    auto runs = [&](int r) {
      return (s.owner_tp < 0 || r % tp == s.owner_tp) && (s.owner_dp < 0 || r / tp == s.owner_dp);
    };
    if (s.sync) {
      double ready = 0;
      for (int r = 0; r < ranks; ++r) ready = std::max(ready, cursor[static_cast<size_t>(r)] + s.gap_ns);
      for (int r = 0; r < ranks; ++r) {
        double& c = cursor[static_cast<size_t>(r)];
        if (c + s.gap_ns < ready) plan.placed.push_back({i, r, c + s.gap_ns, ready, true});
        plan.placed.push_back({i, r, ready, ready + s.ns, false});
        c = ready + s.ns;
      }
      continue;
    }
    for (int r = 0; r < ranks; ++r) {
      if (!runs(r)) continue;
      double& c = cursor[static_cast<size_t>(r)];
      plan.placed.push_back({i, r, c + s.gap_ns, c + s.gap_ns + s.ns, false});
      c += s.gap_ns + s.ns;
    }
  }
  plan.work = cursor.empty() ? 0 : *std::max_element(cursor.begin(), cursor.end());
}

}  // namespace moescope::planner
