#include "storage/analysis_moe.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "storage/report_text.h"
#include "storage/saturating.h"
#include "storage/text_writer.h"

namespace moescope::storage {

double loadImbalance(const std::vector<int64_t>& kept) {
  int64_t sum = 0, max = 0;
  for (int64_t k : kept) {
    addTo(sum, k);
    max = std::max(max, k);
  }
  if (sum <= 0) return 0;
  return static_cast<double>(max) * static_cast<double>(kept.size()) / static_cast<double>(sum);
}

double loadCv(const std::vector<int64_t>& kept) {
  if (kept.empty()) return 0;
  const double n = static_cast<double>(kept.size());
  double sum = 0;
  for (int64_t k : kept) sum += static_cast<double>(k);
  if (sum <= 0) return 0;
  const double mean = sum / n;
  double var = 0;
  for (int64_t k : kept) var += (static_cast<double>(k) - mean) * (static_cast<double>(k) - mean);
  return std::sqrt(var / n) / mean;
}

namespace {

// A collective of a MoE layer on one rank: where the rank arrived.
struct Arrival {
  int32_t rank = 0;
  int64_t at = 0;
};
// (group, step, micro-batch, layer, phase, k-th such collective of the rank)
using InstanceKey = std::tuple<int64_t, int32_t, int32_t, int32_t, int32_t, int32_t>;
// (rank, step, micro-batch, layer)
using RankCell = std::tuple<int32_t, int32_t, int32_t, int32_t>;

bool dispatchLayout(const Trace& t) {
  return t.run.layout == "dpmoe";
}

// Whether span i of a host track is one of a MoE layer's expert collectives.
bool isMoeCollective(const Trace& t, const SpanColumns& c, size_t i, bool dispatch) {
  if (c.layer[i] == kNone) return false;
  const std::string_view name = t.name(c.name[i]);
  if (dispatch)
    return c.category[i] == Category::CommEpAlltoall &&
           (name == kMoeReturnSpan || name == kMoeReturnGradSpan);
  return c.category[i] == Category::CommTpAllreduce && name == kMoeAllreduceSpan;
}

// The ranks that compute each (layer, expert): from compute.expert spans that name their expert, else
// (a rank's experts in one span) from the layout: MODEL.md splits the E experts evenly, in order, over
// the tp ranks (PPMoE, a copy per replica) or the dp ranks (DPMoE) of the stage holding the layer.
std::map<std::pair<int32_t, int32_t>, std::vector<int32_t>> expertHolders(const Trace& t, int32_t experts,
                                                                          bool dispatch) {
  std::map<std::pair<int32_t, int32_t>, std::vector<int32_t>> holders;
  std::map<int32_t, std::vector<int32_t>> layerRanks;  // ranks with expert spans at the layer
  auto add = [](std::vector<int32_t>& v, int32_t rank) {
    if (std::find(v.begin(), v.end(), rank) == v.end()) v.push_back(rank);
  };
  for (size_t tr = 0; tr < t.tracks.size() && tr < t.spans.size(); ++tr) {
    if (t.tracks[tr].kind != TrackKind::HostThread) continue;
    const SpanColumns& c = t.spans[tr];
    const int32_t rank = t.tracks[tr].rank;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c.category[i] != Category::ComputeExpert || c.layer[i] == kNone) continue;
      add(layerRanks[c.layer[i]], rank);
      if (c.expert[i] != kNone) add(holders[{c.layer[i], c.expert[i]}], rank);
    }
  }
  const int32_t split = std::max(1, dispatch ? t.run.dp : t.run.tp);
  const int32_t perRank = experts % split == 0 ? experts / split : 0;
  for (const auto& [layer, ranks] : layerRanks) {
    for (int32_t e = 0; e < experts && perRank > 0; ++e) {
      if (holders.count({layer, e})) continue;
      for (int32_t r : ranks) {
        const RankInfo* info = t.rank(r);
        if (info && (dispatch ? info->dp_rank : info->tp_rank) == e / perRank) add(holders[{layer, e}], r);
      }
    }
  }
  for (auto& [key, v] : holders) std::sort(v.begin(), v.end());
  return holders;
}

// The rank that computed expert e of a group of replica `replica`: PPMoE has a copy per replica (the
// holder on that data-parallel rank), DPMoE one for all.
int32_t holderOf(const Trace& t, const std::vector<int32_t>& holders, int32_t replica) {
  if (holders.size() == 1) return holders.front();
  for (int32_t r : holders) {
    const RankInfo* info = t.rank(r);
    if (info && info->dp_rank == replica) return r;
  }
  return kNone;
}

}  // namespace

MoeStats analyzeMoe(const Trace& t) {
  MoeStats s;
  if (t.routing.empty()) return s;
  const bool dispatch = dispatchLayout(t);
  s.collective = dispatch ? "all-to-all" : "tp all-reduce";
  s.experts = static_cast<int32_t>(t.routing.front().kept.size());

  // Load per layer.
  std::map<int32_t, MoeLayerStats> layers;
  std::map<int32_t, double> imbalanceSum, cvSum;
  int32_t lastStep = kNone;
  for (const MoeRouting& g : t.routing) {
    if (g.step != lastStep) ++s.steps, lastStep = g.step;
    MoeLayerStats& l = layers[g.layer];
    l.layer = g.layer;
    ++l.groups;
    addTo(l.assignments, g.assignments);
    addTo(l.dropped, g.dropped);
    l.kept_per_expert.resize(g.kept.size(), 0);
    for (size_t e = 0; e < g.kept.size(); ++e) {
      addTo(l.kept_per_expert[e], g.kept[e]);
      addTo(l.kept, g.kept[e]);
    }
    const double imb = loadImbalance(g.kept);
    imbalanceSum[g.layer] += imb;
    cvSum[g.layer] += loadCv(g.kept);
    l.max_imbalance = std::max(l.max_imbalance, imb);
  }

  // Tokens per (rank, step, micro-batch, layer), from who computes which expert.
  const auto holders = expertHolders(t, s.experts, dispatch);
  std::map<RankCell, int64_t> tokens;
  for (const MoeRouting& g : t.routing) {
    for (size_t e = 0; e < g.kept.size(); ++e) {
      auto it = holders.find({g.layer, static_cast<int32_t>(e)});
      if (it == holders.end()) continue;
      const int32_t r = holderOf(t, it->second, g.replica);
      if (r != kNone) addTo(tokens[{r, g.step, g.microbatch, g.layer}], g.kept[e]);
    }
  }

  // Arrivals at each layer's collectives, and expert time per rank and layer.
  std::map<InstanceKey, std::vector<Arrival>> instances;
  std::map<std::pair<int32_t, int32_t>, MoeRankLoad> rankLoads;  // (layer, rank)
  for (size_t tr = 0; tr < t.tracks.size() && tr < t.spans.size(); ++tr) {
    if (t.tracks[tr].kind != TrackKind::HostThread) continue;
    const SpanColumns& c = t.spans[tr];
    const int32_t rank = t.tracks[tr].rank;
    const RankInfo* info = t.rank(rank);
    // The group that meets at the collective: PPMoE's tp group (stage, replica), DPMoE's dp group
    // (stage, tp rank).
    const int64_t group =
        info ? (int64_t{info->stage} << 32) | (dispatch ? info->tp_rank : info->dp_rank) : rank;
    std::map<std::tuple<int32_t, int32_t, int32_t, int32_t>, int32_t> seen;
    size_t lastWait = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      if (c.category[i] == Category::Wait) {
        lastWait = i;
        continue;
      }
      if (c.category[i] == Category::ComputeExpert && c.layer[i] != kNone && layers.count(c.layer[i])) {
        MoeRankLoad& rl = rankLoads[{c.layer[i], rank}];
        addTo(rl.expert_ns, c.durationAt(i));
        continue;
      }
      if (!isMoeCollective(t, c, i, dispatch) || !layers.count(c.layer[i])) continue;
      int64_t at = c.start[i];
      // The wait span the communicator recorded just before the collective, for the same pass.
      if (lastWait < c.size() && c.endAt(lastWait) == c.start[i] && c.stepAt(lastWait) == c.stepAt(i) &&
          c.microbatch[lastWait] == c.microbatch[i] && c.layer[lastWait] == c.layer[i])
        at = c.start[lastWait];
      const auto pass = std::tuple(int32_t{c.stepAt(i)}, int32_t{c.microbatch[i]}, int32_t{c.layer[i]},
                                   static_cast<int32_t>(c.phase[i]));
      const int32_t k = seen[pass]++;
      instances[{group, c.stepAt(i), c.microbatch[i], c.layer[i], static_cast<int32_t>(c.phase[i]), k}]
          .push_back({rank, at});
    }
  }

  for (const auto& [key, arrivals] : instances) {
    if (arrivals.size() < 2) continue;
    const auto& [group, step, mb, layer, phase, k] = key;
    MoeLayerStats& l = layers[layer];
    ++l.collectives;
    const Arrival last = *std::max_element(
        arrivals.begin(), arrivals.end(),
        [](const Arrival& a, const Arrival& b) { return std::tie(a.at, a.rank) < std::tie(b.at, b.rank); });
    // The rank of the group whose experts had the most tokens here; none on a tie (no imbalance to
    // blame) or where no rank's experts are known.
    int32_t loaded = kNone;
    int64_t most = 0, runnerUp = 0;
    for (const Arrival& a : arrivals) {
      auto it = tokens.find({a.rank, step, mb, layer});
      const int64_t n = it == tokens.end() ? 0 : it->second;
      if (n > most) {
        runnerUp = most;
        most = n;
        loaded = a.rank;
      } else {
        runnerUp = std::max(runnerUp, n);
      }
    }
    if (most == runnerUp) loaded = kNone;
    int64_t waited = 0;
    for (const Arrival& a : arrivals) {
      const int64_t w = last.at - a.at;
      addTo(rankLoads[{layer, a.rank}].waited_ns, w);
      addTo(waited, w);
    }
    addTo(rankLoads[{layer, last.rank}].caused_ns, waited);
    addTo(l.wait_ns, waited);
    if (last.rank == loaded) addTo(l.imbalance_wait_ns, waited);
  }

  for (const auto& [cell, n] : tokens) {
    const auto& [rank, step, mb, layer] = cell;
    MoeRankLoad& rl = rankLoads[{layer, rank}];
    addTo(rl.tokens, n);
  }
  for (auto& [key, rl] : rankLoads) {
    rl.layer = key.first;
    rl.rank = key.second;
    s.ranks.push_back(rl);
  }

  double imbalanceOfLayers = 0;
  for (auto& [layer, l] : layers) {
    l.dropped_share =
        l.assignments > 0 ? static_cast<double>(l.dropped) / static_cast<double>(l.assignments) : 0;
    l.imbalance = imbalanceSum[layer] / static_cast<double>(l.groups);
    l.cv = cvSum[layer] / static_cast<double>(l.groups);
    const auto hot = std::max_element(l.kept_per_expert.begin(), l.kept_per_expert.end());
    if (hot != l.kept_per_expert.end() && *hot > 0) {
      l.hot_expert = static_cast<int32_t>(hot - l.kept_per_expert.begin());
      l.hot_share = static_cast<double>(*hot) / static_cast<double>(l.kept);
      if (auto it = holders.find({layer, l.hot_expert}); it != holders.end()) l.hot_rank = it->second.front();
    }
    for (const MoeRankLoad& rl : s.ranks) {
      if (rl.layer == layer && rl.caused_ns > l.waited_for_ns) {
        l.waited_for_ns = rl.caused_ns;
        l.waited_for_rank = rl.rank;
      }
    }
    addTo(s.assignments, l.assignments);
    addTo(s.dropped, l.dropped);
    addTo(s.wait_ns, l.wait_ns);
    addTo(s.imbalance_wait_ns, l.imbalance_wait_ns);
    imbalanceOfLayers += l.imbalance;
    s.layers.push_back(l);
  }
  s.dropped_share =
      s.assignments > 0 ? static_cast<double>(s.dropped) / static_cast<double>(s.assignments) : 0;
  s.imbalance = imbalanceOfLayers / static_cast<double>(s.layers.size());
  return s;
}

nlohmann::json moeStatsToJson(const MoeStats& s) {
  using nlohmann::json;
  json j{{"experts", s.experts},         {"steps", s.steps},     {"collective", s.collective},
         {"assignments", s.assignments}, {"dropped", s.dropped}, {"dropped_share", s.dropped_share},
         {"imbalance", s.imbalance},     {"wait_ns", s.wait_ns}, {"imbalance_wait_ns", s.imbalance_wait_ns}};
  j["layers"] = json::array();
  for (const MoeLayerStats& l : s.layers) {
    json layer{{"layer", l.layer},
               {"groups", l.groups},
               {"assignments", l.assignments},
               {"kept", l.kept},
               {"dropped", l.dropped},
               {"dropped_share", l.dropped_share},
               {"imbalance", l.imbalance},
               {"max_imbalance", l.max_imbalance},
               {"cv", l.cv},
               {"kept_per_expert", l.kept_per_expert},
               {"hot_share", l.hot_share},
               {"collectives", l.collectives},
               {"wait_ns", l.wait_ns},
               {"imbalance_wait_ns", l.imbalance_wait_ns},
               {"waited_for_ns", l.waited_for_ns}};
    if (l.hot_expert != kNone) layer["hot_expert"] = l.hot_expert;
    if (l.hot_rank != kNone) layer["hot_rank"] = l.hot_rank;
    if (l.waited_for_rank != kNone) layer["waited_for_rank"] = l.waited_for_rank;
    j["layers"].push_back(layer);
  }
  j["ranks"] = json::array();
  for (const MoeRankLoad& r : s.ranks) {
    j["ranks"].push_back({{"layer", r.layer},
                          {"rank", r.rank},
                          {"tokens", r.tokens},
                          {"expert_ns", r.expert_ns},
                          {"waited_ns", r.waited_ns},
                          {"caused_ns", r.caused_ns}});
  }
  return j;
}

namespace {

using report_text::format;

using report_text::ms;

std::string rankText(int32_t rank) {
  return rank == kNone ? std::string("-") : "rank " + std::to_string(rank);
}

}  // namespace

std::string formatMoeStats(const MoeStats& s) {
  if (s.empty()) return {};
  std::string out;
  out +=
      format("\nMoE routing (%d experts, %d steps; imbalance = max / mean tokens per expert, 1 = balanced)\n",
             s.experts, s.steps);
  out += format("%-6s %10s %8s %7s %9s %12s %12s %14s %-14s %-10s\n", "layer", "imbalance", "worst", "CV",
                "dropped", "hot expert", "wait ms", "by imbalance", "waited for", "hot on");
  for (const MoeLayerStats& l : s.layers) {
    const std::string hot =
        l.hot_expert == kNone ? std::string("-") : format("%d (%.0f%%)", l.hot_expert, 100 * l.hot_share);
    out += format("%-6d %10.2f %8.2f %7.2f %8.1f%% %12s %12.3f %14.3f %-14s %-10s\n", l.layer, l.imbalance,
                  l.max_imbalance, l.cv, 100 * l.dropped_share, hot.c_str(), ms(l.wait_ns),
                  ms(l.imbalance_wait_ns), rankText(l.waited_for_rank).c_str(), rankText(l.hot_rank).c_str());
  }
  out += format("%-6s %10.2f %8s %7s %8.1f%% %12s %12.3f %14.3f\n", "all", s.imbalance, "", "",
                100 * s.dropped_share, "", ms(s.wait_ns), ms(s.imbalance_wait_ns));
  out += format(
      "wait: at each layer's %s, every rank's time until the last of its group arrived, over the "
      "run;\nby imbalance: where the last to arrive had the most tokens\n",
      s.collective.c_str());
  if (!s.ranks.empty()) {
    out += "\nexpert load against time per rank (over the run)\n";
    out += format("%-6s %-8s %12s %14s %14s %12s %12s\n", "layer", "rank", "tokens", "expert ms",
                  "us / token", "waited ms", "caused ms");
    for (const MoeRankLoad& r : s.ranks) {
      const double perToken =
          r.tokens > 0 ? static_cast<double>(r.expert_ns) / 1e3 / static_cast<double>(r.tokens) : 0;
      out += format("%-6d %-8d %12lld %14.3f %14.3f %12.3f %12.3f\n", r.layer, r.rank,
                    static_cast<long long>(r.tokens), ms(r.expert_ns), perToken, ms(r.waited_ns),
                    ms(r.caused_ns));
    }
  }
  return out;
}

double MoeLoadGrid::relativeAt(size_t row, size_t column) const {
  const size_t layerIndex = row / static_cast<size_t>(experts);
  const int64_t a = assignmentsAt(layerIndex, column);
  if (a <= 0) return 0;
  return static_cast<double>(keptAt(row, column)) * experts / static_cast<double>(a);
}

double MoeLoadGrid::imbalanceAt(size_t layerIndex, size_t column) const {
  std::vector<int64_t> k(static_cast<size_t>(experts));
  for (size_t e = 0; e < k.size(); ++e) k[e] = keptAt(layerIndex * k.size() + e, column);
  return loadImbalance(k);
}

MoeLoadGrid moeLoadGrid(const Trace& t, bool perMicrobatch) {
  MoeLoadGrid g;
  if (t.routing.empty()) return g;
  g.experts = static_cast<int32_t>(t.routing.front().kept.size());
  for (const MoeRouting& r : t.routing) {
    const MoeGridColumn col{r.step, perMicrobatch ? r.microbatch : kNone};
    // Routing is sorted by (step, micro-batch, ...): columns come in order.
    if (g.columns.empty() || !(g.columns.back() == col)) g.columns.push_back(col);
    if (!std::binary_search(g.layers.begin(), g.layers.end(), r.layer))
      g.layers.insert(std::upper_bound(g.layers.begin(), g.layers.end(), r.layer), r.layer);
  }
  const size_t cols = g.columns.size(), E = static_cast<size_t>(g.experts);
  g.kept.assign(g.layers.size() * E * cols, 0);
  g.assignments.assign(g.layers.size() * cols, 0);
  g.dropped.assign(g.layers.size() * cols, 0);
  size_t col = 0;
  for (const MoeRouting& r : t.routing) {
    const MoeGridColumn c{r.step, perMicrobatch ? r.microbatch : kNone};
    while (!(g.columns[col] == c)) ++col;
    const size_t li =
        static_cast<size_t>(std::lower_bound(g.layers.begin(), g.layers.end(), r.layer) - g.layers.begin());
    addTo(g.assignments[li * cols + col], r.assignments);
    addTo(g.dropped[li * cols + col], r.dropped);
    for (size_t e = 0; e < E && e < r.kept.size(); ++e) addTo(g.kept[(li * E + e) * cols + col], r.kept[e]);
  }
  return g;
}

int64_t exportMoeLoadCsv(const Trace& t, std::ostream& out) {
  TextWriter w(out);
  w.raw("step,microbatch,layer,replica,assignments,dropped,expert,kept\n");
  int64_t rows = 0;
  for (const MoeRouting& r : t.routing) {
    for (size_t e = 0; e < r.kept.size(); ++e) {
      w.integer(r.step).put(',').integer(r.microbatch).put(',').integer(r.layer).put(',').integer(r.replica);
      w.put(',').integer(r.assignments).put(',').integer(r.dropped).put(',');
      w.integer(static_cast<int64_t>(e)).put(',').integer(r.kept[e]).put('\n');
      ++rows;
    }
  }
  w.flush();
  return rows;
}

}  // namespace moescope::storage
