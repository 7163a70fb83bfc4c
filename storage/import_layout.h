// How the ranks of an imported job are laid out: pipeline stages, tensor- and data-parallel groups, and
// the order in which ranks fill them (Megatron's --order, e.g. "tp-dp-pp": tp varies fastest). From it
// come each rank's stage, tp rank and dp rank, and the kind of communication a collective was from the
// global ranks of the process group it ran in.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "storage/trace_model.h"

namespace moescope::storage {

enum class ParallelDim : uint8_t { Tp = 0, Dp, Pp };

struct ParallelLayout {
  int32_t pp = 1, tp = 1, dp = 1;
  std::array<ParallelDim, 3> order = {ParallelDim::Tp, ParallelDim::Dp, ParallelDim::Pp};  // fastest first
  int32_t world() const { return pp * tp * dp; }
  bool operator==(const ParallelLayout&) const = default;
};

// "tp-dp-pp", "tp-pp-dp", ...: each of tp, dp and pp once, fastest first. Megatron's cp and ep may appear
// ("tp-cp-ep-dp-pp") and are taken as size 1. Returns the problem ("" if none) through `error`.
std::optional<std::array<ParallelDim, 3>> parseRankOrder(std::string_view text, std::string& error);
std::string rankOrderName(const std::array<ParallelDim, 3>& order);  // "tp-dp-pp"

struct RankCoord {
  int32_t stage = 0, tp = 0, dp = 0;
  bool operator==(const RankCoord&) const = default;
};
// The caller has checked 0 <= rank < layout.world().
RankCoord rankCoord(const ParallelLayout& layout, int32_t rank);

// The communication category of a collective, from its name ("allreduce", "send", "all_to_all",
// "ncclDevKernel_SendRecv", ...; any text that names its kind)
// and its process group's global ranks: all-to-all is expert-parallel, send and recv are pipeline
// transfers; any other collective is tp when its group spans tensor-parallel ranks only, dp otherwise
// (data-parallel gradients, and groups across stages such as the embedding group). Nothing when the
// name does not decide and the ranks are unknown or outside the layout.
std::optional<Category> collectiveCategory(const ParallelLayout& layout, std::string_view collective,
                                           std::span<const int32_t> ranks);

}  // namespace moescope::storage
