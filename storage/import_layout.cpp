#include "storage/import_layout.h"

#include <vector>

namespace moescope::storage {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

int32_t sizeOf(const ParallelLayout& l, ParallelDim d) {
  return d == ParallelDim::Tp ? l.tp : d == ParallelDim::Dp ? l.dp : l.pp;
}

}  // namespace

std::optional<std::array<ParallelDim, 3>> parseRankOrder(std::string_view text, std::string& error) {
  std::array<ParallelDim, 3> order{};
  size_t n = 0;
  std::array<bool, 3> seen{};
  size_t start = 0;
  while (start <= text.size()) {
    const size_t dash = std::min(text.find('-', start), text.size());
    const std::string part = lower(text.substr(start, dash - start));
    start = dash + 1;
    if (part == "cp" || part == "ep") continue;  // Megatron's context and expert parallelism: size 1 here
    ParallelDim d{};
    if (part == "tp") {
      d = ParallelDim::Tp;
    } else if (part == "dp") {
      d = ParallelDim::Dp;
    } else if (part == "pp") {
      d = ParallelDim::Pp;
    } else {
      error = "unknown part '" + part + "' in the rank order '" + std::string(text) + "' (tp, dp, pp)";
      return std::nullopt;
    }
    if (seen[static_cast<size_t>(d)]) {
      error = "'" + part + "' twice in the rank order '" + std::string(text) + "'";
      return std::nullopt;
    }
    seen[static_cast<size_t>(d)] = true;
    order[n++] = d;
  }
  if (n != 3) {
    error = "the rank order '" + std::string(text) + "' must name tp, dp and pp";
    return std::nullopt;
  }
  error.clear();
  return order;
}

std::string rankOrderName(const std::array<ParallelDim, 3>& order) {
  std::string out;
  for (ParallelDim d : order) {
    if (!out.empty()) out += '-';
    out += d == ParallelDim::Tp ? "tp" : d == ParallelDim::Dp ? "dp" : "pp";
  }
  return out;
}

RankCoord rankCoord(const ParallelLayout& layout, int32_t rank) {
  RankCoord c;
  int32_t rest = rank;
  for (ParallelDim d : layout.order) {
    const int32_t size = sizeOf(layout, d);
    const int32_t v = rest % size;
    rest /= size;
    if (d == ParallelDim::Tp) c.tp = v;
    if (d == ParallelDim::Dp) c.dp = v;
    if (d == ParallelDim::Pp) c.stage = v;
  }
  return c;
}

std::optional<Category> collectiveCategory(const ParallelLayout& layout, std::string_view collective,
                                           std::span<const int32_t> ranks) {
  const std::string name = lower(collective);
  if (name.find("alltoall") != std::string::npos || name.find("all_to_all") != std::string::npos)
    return Category::CommEpAlltoall;
  if (name.find("send") != std::string::npos || name.find("recv") != std::string::npos)
    return Category::CommPpSendrecv;
  if (ranks.empty()) return std::nullopt;
  for (int32_t r : ranks) {
    if (r < 0 || r >= layout.world()) return std::nullopt;
  }
  const RankCoord first = rankCoord(layout, ranks[0]);
  bool tp = false, other = false;
  for (int32_t r : ranks.subspan(1)) {
    const RankCoord c = rankCoord(layout, r);
    tp = tp || c.tp != first.tp;
    other = other || c.dp != first.dp || c.stage != first.stage;
  }
  return tp && !other ? Category::CommTpAllreduce : Category::CommDpAllreduce;
}

}  // namespace moescope::storage
