// Rank layouts: the rank order as Megatron writes it, each rank's coordinates, and the communication
// category of a collective from its process group, worked out on a pp 2 x tp 2 x dp 2 layout:
//
//   tp-dp-pp (tp fastest):  rank = (stage * dp + d) * tp + t
//     stage 0: dp 0 -> ranks 0 1,  dp 1 -> ranks 2 3        tp groups {0,1} {2,3} {4,5} {6,7}
//     stage 1: dp 0 -> ranks 4 5,  dp 1 -> ranks 6 7        dp groups {0,2} {1,3} {4,6} {5,7}
//                                                            pp groups {0,4} {1,5} {2,6} {3,7}
#include "storage/import_layout.h"

#include <gtest/gtest.h>

namespace moescope::storage {
namespace {

TEST(ImportLayout, RankOrders) {
  std::string error;
  EXPECT_EQ(parseRankOrder("tp-dp-pp", error),
            (std::array{ParallelDim::Tp, ParallelDim::Dp, ParallelDim::Pp}));
  EXPECT_EQ(parseRankOrder("tp-cp-ep-dp-pp", error),  // Megatron's default
            (std::array{ParallelDim::Tp, ParallelDim::Dp, ParallelDim::Pp}));
  EXPECT_EQ(parseRankOrder("TP-PP-DP", error),
            (std::array{ParallelDim::Tp, ParallelDim::Pp, ParallelDim::Dp}));
  EXPECT_EQ(rankOrderName({ParallelDim::Pp, ParallelDim::Tp, ParallelDim::Dp}), "pp-tp-dp");
  EXPECT_FALSE(parseRankOrder("tp-dp", error));
  EXPECT_EQ(error, "the rank order 'tp-dp' must name tp, dp and pp");
  EXPECT_FALSE(parseRankOrder("tp-tp-pp", error));
  EXPECT_EQ(error, "'tp' twice in the rank order 'tp-tp-pp'");
  EXPECT_FALSE(parseRankOrder("tp-dp-xx", error));
  EXPECT_EQ(error, "unknown part 'xx' in the rank order 'tp-dp-xx' (tp, dp, pp)");
}

TEST(ImportLayout, Coordinates) {
  const ParallelLayout l{2, 2, 2};
  EXPECT_EQ(rankCoord(l, 0), (RankCoord{0, 0, 0}));
  EXPECT_EQ(rankCoord(l, 3), (RankCoord{0, 1, 1}));
  EXPECT_EQ(rankCoord(l, 5), (RankCoord{1, 1, 0}));
  EXPECT_EQ(rankCoord(l, 6), (RankCoord{1, 0, 1}));
  ParallelLayout ppFirst = l;
  ppFirst.order = {ParallelDim::Pp, ParallelDim::Tp, ParallelDim::Dp};  // stage fastest
  EXPECT_EQ(rankCoord(ppFirst, 1), (RankCoord{1, 0, 0}));
  EXPECT_EQ(rankCoord(ppFirst, 2), (RankCoord{0, 1, 0}));
  EXPECT_EQ(rankCoord(ppFirst, 4), (RankCoord{0, 0, 1}));
}

TEST(ImportLayout, CollectiveCategories) {
  const ParallelLayout l{2, 2, 2};
  auto category = [&](std::string_view name, std::vector<int32_t> ranks) {
    return collectiveCategory(l, name, ranks);
  };
  EXPECT_EQ(category("allreduce", {4, 5}), Category::CommTpAllreduce);
  EXPECT_EQ(category("_allgather_base", {6, 7}), Category::CommTpAllreduce);  // sequence parallel
  EXPECT_EQ(category("allreduce", {1, 3}), Category::CommDpAllreduce);
  EXPECT_EQ(category("reduce_scatter", {4, 6}), Category::CommDpAllreduce);  // distributed optimizer
  EXPECT_EQ(category("allreduce", {0, 4}), Category::CommDpAllreduce);       // embedding group, across stages
  EXPECT_EQ(category("allreduce", {0, 1, 2, 3, 4, 5, 6, 7}), Category::CommDpAllreduce);
  EXPECT_EQ(category("alltoall_base", {0, 2}), Category::CommEpAlltoall);
  EXPECT_EQ(category("all_to_all", {}), Category::CommEpAlltoall);
  EXPECT_EQ(category("send", {0, 4}), Category::CommPpSendrecv);
  EXPECT_EQ(category("coalesced ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", {0, 4}),
            Category::CommPpSendrecv);
  EXPECT_EQ(category("allreduce", {}), std::nullopt);      // no group: the rules decide
  EXPECT_EQ(category("allreduce", {0, 9}), std::nullopt);  // a rank outside the layout
}

}  // namespace
}  // namespace moescope::storage
