#include "engine/memory_estimate.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/engine_error.h"

namespace moescope::engine {
namespace {

std::string gib(double bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// One stage's rank: `layers` layers from `first`, the embedding on stage 0 and the head on the last.
MemoryNeed stageNeed(const Config& c, int64_t first, int64_t layers, bool embedding, bool head) {
  const auto& m = c.model;
  const double tp = static_cast<double>(c.parallel.tp), dp = static_cast<double>(c.parallel.dp);
  const double V = static_cast<double>(m.vocab_size), T = static_cast<double>(m.seq_len);
  const double C = static_cast<double>(m.d_model), F = static_cast<double>(m.d_ff);
  const double E = static_cast<double>(m.n_experts), K = static_cast<double>(m.top_k);
  const double H = static_cast<double>(m.n_heads);
  const double b =
      static_cast<double>(c.train.global_batch) / (dp * static_cast<double>(c.parallel.microbatches));
  const double N = b * T;  // tokens of a micro-batch
  const double experts = c.dpmoe() ? E / dp : E / tp;
  const double rows = N * std::min(K, std::max(experts, 1.0)) * (c.dpmoe() ? dp : 1.0);

  double params = 0, acts = 0;  // elements; activations of one micro-batch
  for (int64_t li = first; li < first + layers; ++li) {
    params += (4 * C * C + 4 * C) / tp + 4 * C;  // attention (sharded) and both LayerNorms
    acts += N * C * 11 + N * 4 * C / tp + b * (H / tp) * T * T;
    if (m.isMoeLayer(li)) {
      params += E * C + experts * (2 * F * C + F + C);
      acts += N * E * 3 + rows * (2 * C + 2 * F) + N * K * C;
    } else {
      params += (2 * F * C + F) / tp + C;
      acts += 2 * N * F / tp;
    }
  }
  if (embedding) params += V * C + T * C;
  if (head) {
    params += 2 * C + V * C;
    acts += N * C * 4 + 2 * N * V;  // final LayerNorm, logits and their gradient
  }
  MemoryNeed need;
  need.parameters = params;
  need.state_bytes = params * 16;  // value, gradient, AdamW m and v
  need.activation_bytes = acts * static_cast<double>(c.parallel.microbatches) * 4;
  return need;
}

}  // namespace

MemoryNeed largestRankNeed(const Config& c) {
  const int64_t pp = c.parallel.pp, L = c.model.n_layers;
  MemoryNeed worst;
  int64_t first = 0;
  for (int64_t s = 0; s < pp; ++s) {
    const int64_t layers = L / pp + (s < L % pp ? 1 : 0);
    const MemoryNeed need = stageNeed(c, first, layers, s == 0, s == pp - 1);
    if (need.totalBytes() > worst.totalBytes()) worst = need;
    first += layers;
  }
  return worst;
}

void checkModelSize(const Config& config) {
  const MemoryNeed need = largestRankNeed(config);
  if (need.totalBytes() > kMaxBytesPerRank) {
    throw InputError("the model needs about " + gib(need.totalBytes()) + " per rank (" +
                     gib(need.state_bytes) + " for parameters with gradients and Adam state, " +
                     gib(need.activation_bytes) + " for activations), beyond any machine's " +
                     gib(kMaxBytesPerRank));
  }
}

std::optional<double> availableHostMemory() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    double kib = 0;
    if (fields >> kib) return kib * 1024;
  }
  return std::nullopt;
}

void checkHostMemory(const Config& config, std::optional<double> available) {
  if (!available) available = availableHostMemory();
  if (!available) return;
  // Every rank at the largest rank's need: an upper bound within the stages' differences.
  const MemoryNeed rank = largestRankNeed(config);
  const double ranks = static_cast<double>(config.worldSize());
  const double total = rank.totalBytes() * ranks;
  if (total > *available) {
    throw InputError("the run needs about " + gib(total) + " of memory (" +
                     std::to_string(config.worldSize()) + " ranks x " + gib(rank.state_bytes) +
                     " for parameters with gradients and Adam state + " + gib(rank.activation_bytes) +
                     " for activations), " + gib(*available) + " available");
  }
}

}  // namespace moescope::engine
