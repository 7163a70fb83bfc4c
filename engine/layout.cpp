#include "engine/layout.h"

namespace moescope::engine {

Layout::Layout(const Config& config)
    : pp_(static_cast<int>(config.parallel.pp)),
      tp_(static_cast<int>(config.parallel.tp)),
      dp_(static_cast<int>(config.parallel.dp)) {
  const int layers = static_cast<int>(config.model.n_layers);
  const int virtual_stages = static_cast<int>(config.parallel.virtual_stages);
  chunks_.resize(static_cast<size_t>(pp_));
  if (config.parallel.schedule == Schedule::Interleaved) {
    const int per_chunk = layers / (pp_ * virtual_stages);
    for (int c = 0; c < virtual_stages; ++c) {
      for (int s = 0; s < pp_; ++s) {
        const int first = (c * pp_ + s) * per_chunk;
        chunks_[static_cast<size_t>(s)].push_back({first, first + per_chunk});
      }
    }
  } else {
    const int base = layers / pp_, extra = layers % pp_;
    auto first = [&](int s) { return s * base + (s < extra ? s : extra); };
    for (int s = 0; s < pp_; ++s) chunks_[static_cast<size_t>(s)].push_back({first(s), first(s + 1)});
  }
  int experts = static_cast<int>(config.model.n_experts);
  dpmoe_ = config.dpmoe();
  if (experts > 0) experts_per_rank_ = dpmoe_ ? experts / dp_ : experts / tp_;
}

RankCoord Layout::coord(int rank) const {
  RankCoord c;
  c.rank = rank;
  c.tp = rank % tp_;
  c.dp = (rank / tp_) % dp_;
  c.stage = rank / (tp_ * dp_);
  return c;
}

int Layout::firstExpert(const RankCoord& c) const {
  return experts_per_rank_ * (dpmoe_ ? c.dp : c.tp);
}

std::vector<int> Layout::tpGroup(const RankCoord& c) const {
  std::vector<int> ranks;
  for (int t = 0; t < tp_; ++t) ranks.push_back(rankOf(c.stage, c.dp, t));
  return ranks;
}

std::vector<int> Layout::dpGroup(const RankCoord& c) const {
  std::vector<int> ranks;
  for (int d = 0; d < dp_; ++d) ranks.push_back(rankOf(c.stage, d, c.tp));
  return ranks;
}

std::vector<int> Layout::ppGroup(const RankCoord& c) const {
  std::vector<int> ranks;
  for (int s = 0; s < pp_; ++s) ranks.push_back(rankOf(s, c.dp, c.tp));
  return ranks;
}

}  // namespace moescope::engine
