#include "planner/cost_model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include "planner/held_activations.h"
#include "planner/median.h"
#include "planner/plan_target.h"
#include "planner/planner_error.h"
#include "planner/slice_fit.h"
#include "storage/activity.h"
#include "storage/analysis_steps.h"

namespace moescope::planner {

using storage::Category;
using storage::kNone;
using storage::Phase;

namespace {

// Processor sharing on the calibration host: the number of ranks busy (in a span other than `wait`)
// as a step function of time, to turn a measured duration into solo time.
class Sharing {
 public:
  Sharing(const storage::Trace& trace, bool shared) {
    if (!shared) return;
    std::vector<std::pair<int64_t, int>> edges;
    std::map<int32_t, std::vector<std::pair<int64_t, int64_t>>> byRank;
    for (size_t id = 0; id < trace.tracks.size() && id < trace.spans.size(); ++id) {
      if (trace.tracks[id].kind != storage::TrackKind::HostThread) continue;
      const storage::SpanColumns& c = trace.spans[id];
      for (size_t i = 0; i < c.size(); ++i)
        if (c.category[i] != Category::Wait)
          byRank[trace.tracks[id].rank].emplace_back(c.start[i], c.endAt(i));
    }
    for (auto& [rank, intervals] : byRank) {
      std::sort(intervals.begin(), intervals.end());
      int64_t s = intervals.front().first, e = intervals.front().second;
      for (const auto& [a, b] : intervals) {
        if (a > e) {
          edges.emplace_back(s, 1);
          edges.emplace_back(e, -1);
          s = a;
          e = b;
        } else {
          e = std::max(e, b);
        }
      }
      edges.emplace_back(s, 1);
      edges.emplace_back(e, -1);
    }
    std::sort(edges.begin(), edges.end());
    int busy = 0;
    for (const auto& [t, d] : edges) {
      busy += d;
      if (!times_.empty() && times_.back() == t)
        busy_.back() = busy;
      else {
        times_.push_back(t);
        busy_.push_back(busy);
      }
    }
  }
  void setCores(double cores) { cores_ = cores; }
  // The mean number of busy ranks over [a, b).
  double meanBusy(int64_t a, int64_t b) const {
    if (b <= a || times_.empty()) return 1;
    size_t i = static_cast<size_t>(std::upper_bound(times_.begin(), times_.end(), a) - times_.begin());
    double total = 0;
    for (int64_t t = a; t < b; ++i) {
      const int64_t next = i < times_.size() ? std::min(b, times_[i]) : b;
      total += (i == 0 ? 0 : busy_[i - 1]) * static_cast<double>(next - t);
      t = next;
    }
    return total / static_cast<double>(b - a);
  }
  // Solo time of [a, b): the time integrated at each moment's speed, min(1, cores / busy).
  double solo(int64_t a, int64_t b) const { return solo(a, b, cores_); }
  double solo(int64_t a, int64_t b, double cores) const {
    if (cores <= 0 || b <= a || times_.empty()) return static_cast<double>(b - a);
    size_t i = static_cast<size_t>(std::upper_bound(times_.begin(), times_.end(), a) - times_.begin());
    double total = 0;
    int64_t t = a;
    while (t < b) {
      const int busy = i == 0 ? 0 : busy_[i - 1];
      const int64_t next = i < times_.size() ? std::min(b, times_[i]) : b;
      const double speed = busy > cores ? cores / busy : 1.0;
      total += speed * static_cast<double>(next - t);
      t = next;
      ++i;
    }
    return total;
  }

  // The cores that make [a, b) worth `solo` of time alone: solo(a, b, cores) grows with cores, so
  // bisection between 0.05 and the most ranks busy in it (where it is b - a).
  double coresFor(int64_t a, int64_t b, double solo_ns) const {
    double lo = 0.05, hi = std::max(1.0, maxBusy(a, b));
    for (int i = 0; i < 40; ++i) {
      const double mid = (lo + hi) / 2;
      (solo(a, b, mid) < solo_ns ? lo : hi) = mid;
    }
    return (lo + hi) / 2;
  }
  double maxBusy(int64_t a, int64_t b) const {
    size_t i = static_cast<size_t>(std::upper_bound(times_.begin(), times_.end(), a) - times_.begin());
    int most = i == 0 ? 0 : busy_[i - 1];
    for (; i < times_.size() && times_[i] < b; ++i) most = std::max(most, busy_[i]);
    return most;
  }

 private:
  double cores_ = 0;
  std::vector<int64_t> times_;
  std::vector<int> busy_;
};

struct Samples {
  std::string name;
  Category category = Category::ComputeAttention;
  int32_t expert = kNone;
  std::vector<double> ns, gap;
  std::vector<double> bytes;
  void add(const storage::SpanView& s, double solo, double gap_solo) {
    ns.push_back(solo);
    gap.push_back(gap_solo);
    bytes.push_back(static_cast<double>(s.bytes));
  }
  SegmentCost cost() const {
    return {name, category, expert, typical(ns), typical(gap), static_cast<int64_t>(median(bytes))};
  }
};

// The cores the run's ranks actually got. A span that ran while other ranks were busy took longer than
// the same span (layer, phase, name, expert) run alone by as much as processor sharing over c cores
// makes it (each busy rank at min(1, c / busy) of a core, moment by moment), so each such span
// admits the c that explain its duration to within 10% (a span's own spread on a quiet host): an
// interval, open upwards when the span ran as fast as alone (then the cores were at least the ranks
// busy beside it, and nothing says how many more). The estimate is the c that the most spans admit,
// the middle of that range, or the host's cores (the ones the run may use: host.cores) when the range
// reaches them. (A first version took the median of point estimates capped at the ranks busy: from a
// 1F1B pp 2 run it could not give more than 2 cores, so a pp 4 prediction from a run on 16 idle cores
// would have shared 2 cores among 4 rank threads.) On a host where other programs hold a core it is
// what was left (1.0 to 1.6 of 2 on the development VM at load average 11 to 15).
template <class Skipped>
double effectiveCores(const storage::Trace& trace, const Sharing& sharing, Skipped skipped, int host_cores) {
  using Key = std::tuple<uint32_t, int32_t, Phase, int32_t>;  // name, layer, phase, expert
  struct Sample {
    int64_t start, end;
    double busy;
  };
  std::map<Key, std::vector<Sample>> samples;
  for (size_t id = 0; id < trace.tracks.size() && id < trace.spans.size(); ++id) {
    if (trace.tracks[id].kind != storage::TrackKind::HostThread) continue;
    const storage::SpanColumns& c = trace.spans[id];
    for (size_t i = 0; i < c.size(); ++i) {
      const int64_t d = c.durationAt(i);
      // Spans of 0.1 ms and more: shorter ones are as much timer as work.
      if (c.category[i] == Category::Wait || skipped(c.stepAt(i)) || d < 100'000) continue;
      samples[{c.name[i], c.layer[i], c.phase[i], c.expert[i]}].push_back(
          {c.start[i], c.endAt(i), sharing.meanBusy(c.start[i], c.endAt(i))});
    }
  }
  constexpr double kSpread = 1.1;
  const double most = host_cores;
  std::vector<std::pair<double, int>> edges;  // (c, +1 where a span's interval opens, -1 where it closes)
  for (const auto& [key, list] : samples) {
    std::vector<double> alone;
    for (const Sample& s : list)
      if (s.busy < 1.1) alone.push_back(static_cast<double>(s.end - s.start));
    if (alone.size() < 2) continue;
    const double solo = median(alone);
    for (const Sample& s : list) {
      const double d = static_cast<double>(s.end - s.start);
      if (s.busy <= 1.5 || d * kSpread < solo) continue;  // alone, or faster than alone: no evidence
      const double lo = sharing.coresFor(s.start, s.end, solo / kSpread);
      const double hi = d <= solo * kSpread ? most : sharing.coresFor(s.start, s.end, solo * kSpread);
      edges.emplace_back(std::min(lo, most), 1);
      edges.emplace_back(std::min(hi, most), -1);
    }
  }
  if (edges.size() < 20) return host_cores;
  std::sort(edges.begin(), edges.end(), [](const auto& x, const auto& y) {
    return x.first < y.first || (x.first == y.first && x.second > y.second);
  });
  int open = 0, best = 0;
  double from = most, to = most;
  for (size_t i = 0; i < edges.size(); ++i) {
    open += edges[i].second;
    if (open > best) {
      best = open;
      from = edges[i].first;
      to = i + 1 < edges.size() ? edges[i + 1].first : most;
    }
  }
  if (to >= most) return host_cores;
  return std::clamp((from + to) / 2, 0.5, most);
}

// The solo time of the compute a split backward divides (splitsBetweenBAndW) in a phase's layer
// passes, every layer and expert, per micro-batch.
double splitComputeNs(const CostModel& m, Phase phase) {
  double ns = 0;
  for (const auto& [key, entries] : m.layers)
    if (key.second == phase)
      for (const TemplateEntry& e : entries)
        if (e.expert_names.empty() && splitsBetweenBAndW(e.segment.category)) ns += e.segment.ns;
  for (const auto& [key, cost] : m.experts)
    if (std::get<1>(key) == phase && splitsBetweenBAndW(cost.category)) ns += cost.ns;
  return ns;
}

std::string percent(double share) {
  return std::to_string(static_cast<int>(std::lround(share * 100)));
}

int hostCores(const storage::Trace& trace) {
  for (const auto& [key, value] : trace.meta) {
    if (key != "host.cores") continue;
    int cores = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), cores);
    if (ec == std::errc{} && end == value.data() + value.size() && cores > 0) return cores;
  }
  return 0;
}

}  // namespace

bool splitsBetweenBAndW(Category c) {
  return c == Category::ComputeAttention || c == Category::ComputeFfn || c == Category::ComputeRouter ||
         c == Category::ComputeExpert || c == Category::ComputeLoss;
}

int groupSize(const std::string& name, Category category, int pp, int tp, int dp) {
  switch (category) {
    case Category::CommTpAllreduce:
      return tp;
    case Category::CommEpAlltoall:
      return dp;
    case Category::CommDpAllreduce:
      return name == "loss_norm_allreduce" ? pp * tp * dp : dp;
    default:
      return 2;
  }
}

CostModel fitCostModel(const storage::Trace& trace, const std::string& path, int cores, double slice_ms) {
  CostModel m;
  m.run = trace.run;
  m.path = path;
  m.model = parseModelShape(trace.run.config, trace.run.layout);
  if (trace.run.predicted) throw PlanError(path + ": a predicted run cannot calibrate a prediction");
  if (trace.run.pp < 1 || trace.run.tp < 1 || trace.run.dp < 1 || trace.run.microbatches < 1 ||
      trace.run.virtual_stages < 1)
    throw PlanError(path + ": the run's pp, tp, dp, micro-batches or virtual stages are not positive");
  const int host_cores = trace.run.backend == "cpu" ? (cores >= 0 ? cores : hostCores(trace)) : 0;
  m.tokens_per_microbatch = static_cast<double>(m.model.global_batch) * static_cast<double>(m.model.seq_len) /
                            (static_cast<double>(trace.run.dp) * trace.run.microbatches);
  Sharing sharing(trace, host_cores > 0);

  // Which steps count: the steady state. All but the first (warm-up: allocation, first touch, a
  // GPU's autotuning) when there are several, and of those the ones within 25% of their median (the
  // lower middle, as compare reports it): a step far from it is still warming up or was stalled. The
  // GPU sample's steps after the first took 37.9 and 19.9 ms; the second is its steady state.
  const std::vector<storage::StepExtent> extents = storage::stepExtents(storage::hostActivity(trace));
  if (extents.empty()) throw PlanError(path + ": the run has no step to calibrate on");
  m.steps = static_cast<int>(extents.size());
  std::vector<storage::StepExtent> steady(extents.begin() + (extents.size() > 1 ? 1 : 0), extents.end());
  std::vector<int64_t> durations;
  for (const storage::StepExtent& e : steady) durations.push_back(e.duration());
  std::sort(durations.begin(), durations.end());
  const double middle = static_cast<double>(durations[(durations.size() - 1) / 2]);
  std::set<int32_t> used;
  for (const storage::StepExtent& e : steady)
    if (std::abs(static_cast<double>(e.duration()) / std::max(1.0, middle) - 1) <= 0.25) used.insert(e.step);
  auto skipped = [&used](int32_t step) { return !used.contains(step); };
  if (host_cores > 0) {
    m.host.cores = effectiveCores(trace, sharing, skipped, host_cores);
    sharing.setCores(m.host.cores);
  }
  SliceFit slice;
  if (host_cores > 0) {
    if (slice_ms < 0) slice = fitSlice(trace, skipped);
    m.host.slice_ns = slice_ms >= 0 ? slice_ms * 1e6 : slice.slice_ns;
  }

  std::map<std::tuple<int64_t, Phase, std::string, int>, Samples>
      layerSamples;  // layer, phase, name, occurrence
  std::map<ExpertKey, Samples> expertSamples;
  std::map<BoundaryKey, Samples> boundarySamples;
  std::map<std::string, Samples> tailSamples;
  std::map<std::string, std::vector<double>> optimizerRates;  // ns per parameter
  std::map<Category, std::vector<std::pair<int64_t, double>>> transferSamples;

  for (size_t id = 0; id < trace.tracks.size() && id < trace.spans.size(); ++id) {
    const storage::TrackInfo& track = trace.tracks[id];
    if (track.kind != storage::TrackKind::HostThread) continue;
    const storage::RankInfo* rank = trace.rank(track.rank);
    if (!rank) continue;
    const storage::SpanColumns& c = trace.spans[id];
    // Pass instances: (step, micro-batch, phase, chunk) on this track, spans in time order.
    std::map<std::tuple<int32_t, int32_t, Phase, int32_t>, std::vector<size_t>> instances;
    std::map<int32_t, std::map<std::string, double>> tailPerStep;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c.stepAt(i) == kNone || skipped(c.stepAt(i))) continue;
      if (c.microbatch[i] == kNone) {
        if (c.category[i] == Category::Wait) continue;
        const storage::SpanView s = c.at(i, static_cast<int32_t>(id));
        const std::string name(trace.name(s.name));
        const double solo = sharing.solo(s.start, s.end);
        if (storage::isCommunication(s.category)) {
          Samples& t = tailSamples[name];
          t.name = name;
          t.category = s.category;
          t.add(s, solo, 0);
          transferSamples[s.category].emplace_back(s.bytes, solo);
        } else {
          tailPerStep[s.step][name] += solo;
        }
        continue;
      }
      instances[{c.stepAt(i), c.microbatch[i], c.phase[i], c.chunk[i]}].push_back(i);
    }
    // The optimizer's spans per parameter of this rank.
    const std::vector<LayerRange> chunks = stageChunks(targetOf(trace.run, 2), m.model.layers, rank->stage);
    const RankParameters params = [&] {
      RankParameters p;
      const int g_last = trace.run.pp * trace.run.virtual_stages - 1;
      for (size_t ch = 0; ch < chunks.size(); ++ch) {
        const int g = static_cast<int>(ch) * trace.run.pp + rank->stage;
        const RankParameters q = rankParameters(m.model, chunks[ch].begin, chunks[ch].end, g == 0,
                                                g == g_last, trace.run.tp, trace.run.dp);
        p.total += q.total;
        p.replicated += q.replicated;
      }
      return p;
    }();
    for (const auto& [step, names] : tailPerStep)
      for (const auto& [name, ns] : names)
        if (params.total > 0) optimizerRates[name].push_back(ns / static_cast<double>(params.total));

    for (const auto& [key, indices] : instances) {
      const Phase phase = std::get<2>(key);
      int64_t previous_end = -1;
      std::map<std::pair<int64_t, std::string>, int> occurrences;
      bool firstRank = rank->tp_rank == 0 && rank->dp_rank == 0;
      std::map<int64_t, std::vector<TemplateEntry>> order;  // this instance's layers, if they make a template
      for (size_t i : indices) {
        const storage::SpanView s = c.at(i, static_cast<int32_t>(id));
        if (s.category == Category::Wait) {
          previous_end = std::max(previous_end, s.end);
          continue;
        }
        const double solo = sharing.solo(s.start, s.end);
        const double gap_solo =
            previous_end < 0 || s.start <= previous_end ? 0.0 : sharing.solo(previous_end, s.start);
        previous_end = std::max(previous_end, s.end);
        const std::string name(trace.name(s.name));
        if (storage::isCommunication(s.category)) transferSamples[s.category].emplace_back(s.bytes, solo);
        if (s.layer == kNone) {
          Samples& b = boundarySamples[{name, phase}];
          b.name = name;
          b.category = s.category;
          b.add(s, solo, gap_solo);
          continue;
        }
        std::vector<TemplateEntry>& entries = order[s.layer];
        if (s.expert != kNone) {
          Samples& e = expertSamples[{s.layer, phase, name, s.expert}];
          e.name = name;
          e.category = s.category;
          e.expert = s.expert;
          e.add(s, solo, gap_solo);
          // The first expert's spans give the per-expert pattern; later experts repeat it.
          if (entries.empty() || entries.back().expert_names.empty())
            entries.push_back({{name, s.category, s.expert, 0, 0, 0}, {}, {}});
          TemplateEntry& group = entries.back();
          if (group.segment.expert == s.expert) {
            group.expert_names.push_back(name);
            group.expert_categories.push_back(s.category);
          }
          continue;
        }
        const int k = occurrences[{s.layer, name}]++;
        Samples& l = layerSamples[{s.layer, phase, name, k}];
        l.name = name;
        l.category = s.category;
        l.add(s, solo, gap_solo);
        entries.push_back({{name, s.category, kNone, static_cast<double>(k), 0, 0}, {}, {}});
      }
      if (!firstRank) continue;
      for (auto& [layer, entries] : order)
        if (!m.layers.contains({layer, phase})) m.layers[{layer, phase}] = std::move(entries);
    }
  }
  if (m.layers.empty()) throw PlanError(path + ": the run has no layer passes to calibrate on");
  for (int64_t l = 0; l < m.model.layers; ++l)
    for (Phase p : {Phase::Forward, Phase::Backward})
      if (!m.layers.contains({l, p}))
        throw PlanError(path + ": the run has no " + std::string(storage::phaseName(p)) + " spans of layer " +
                        std::to_string(l) + " (rank 0 of each stage must be traced)");

  // Plain entries held their occurrence in ns; now each takes its medians.
  for (auto& [key, entries] : m.layers) {
    for (TemplateEntry& e : entries) {
      if (!e.expert_names.empty()) continue;
      const int k = static_cast<int>(e.segment.ns);
      e.segment = layerSamples.at({key.first, key.second, e.segment.name, k}).cost();
    }
  }
  for (const auto& [key, s] : expertSamples) m.experts[key] = s.cost();
  for (const auto& [key, s] : boundarySamples) m.boundary[key] = s.cost();
  for (const auto& [name, s] : tailSamples) m.tail[name] = s.cost();
  for (const auto& [name, rates] : optimizerRates)
    m.tail[name] = {name, Category::Optimizer, kNone, typical(rates), 0, 0};
  for (auto& [category, samples] : transferSamples) m.transfers[category] = fitTransfers(samples);
  m.split_backward = std::any_of(m.layers.begin(), m.layers.end(),
                                 [](const auto& kv) { return kv.first.second == Phase::BackwardWeight; });

  // Activations: the largest stage's counter over the layers it held at its peak, per token.
  std::map<int32_t, double> peakByStage;
  for (const storage::TrackInfo& track : trace.tracks) {
    if (track.kind != storage::TrackKind::Counter || track.name != storage::kPeakActivationCounter) continue;
    const storage::RankInfo* rank = trace.rank(track.rank);
    if (!rank) continue;
    for (const storage::CounterSample& s : trace.counters)
      if (s.track == track.id) peakByStage[rank->stage] = std::max(peakByStage[rank->stage], s.value);
  }
  std::vector<double> perTokenLayer;
  for (const auto& [stage, bytes] : peakByStage) {
    if (stage < 0 || stage >= trace.run.pp) continue;
    const int64_t held = peakHeldLayers(targetOf(trace.run, 2), m.model.layers, stage);
    if (held > 0) perTokenLayer.push_back(bytes / (static_cast<double>(held) * m.tokens_per_microbatch));
  }
  m.activation_bytes_per_token_layer = median(perTokenLayer);

  if (m.split_backward) {
    const double input = splitComputeNs(m, Phase::Backward),
                 weight = splitComputeNs(m, Phase::BackwardWeight);
    if (input + weight > 0) m.input_share = input / (input + weight);
    m.notes.push_back("ZB-H1's B and W: as the run measured them apart, B " + percent(m.input_share) +
                      "% of the layers' backward compute, W " + percent(1 - m.input_share) + "%");
  } else {
    m.notes.push_back("ZB-H1's B and W: each backward split " + percent(m.input_share) + "/" +
                      percent(1 - m.input_share) +
                      " (the run measured no weight pass apart: parallel.split_backward measures it)");
  }
  if (m.host.cores > 0) {
    std::string sharing = "processor sharing (--slice-ms 0)";
    if (m.host.slice_ns > 0) {
      char ms[32];
      std::snprintf(ms, sizeof ms, "%.1f", m.host.slice_ns / 1e6);
      sharing = "time slices of " + std::string(ms) + " ms when more are runnable (" +
                (slice_ms >= 0  ? std::string("--slice-ms")
                 : slice.fitted ? "the median of " + std::to_string(slice.waits) +
                                      " sends and receives that waited for a core"
                                : "the default: " + std::to_string(slice.waits) +
                                      " sends and receives waited for a core, too few to fit") +
                ")";
    }
    m.notes.push_back("the ranks share " + std::to_string(m.host.cores).substr(0, 4) + " of the run's " +
                      std::to_string(host_cores) + " host cores, what it got of them; " + sharing);
  }
  return m;
}

}  // namespace moescope::planner
