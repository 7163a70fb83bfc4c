#include "storage/analysis_comm.h"

#include <gtest/gtest.h>

#include <limits>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

// Two all-reduces of 1000 bytes in 100 ns each on two ranks: 4 spans, 400 ns, 4000 bytes, 10 GB/s.
// One pipeline send of 3000 bytes in 1000 ns plus one send with unknown size (0 bytes) of 500 ns:
// bandwidth uses only the timed span with bytes, 3000 / 1000 = 3 GB/s.
TEST(Communication, TimeCountBytesAndBandwidthByKind) {
  const Trace t = testing::TraceBuilder(1)
                      .rank(0, 0)
                      .rank(1, 0)
                      .span(0, 0, 100, Category::CommTpAllreduce, 0, 1000)
                      .span(0, 200, 300, Category::CommTpAllreduce, 0, 1000)
                      .span(1, 0, 100, Category::CommTpAllreduce, 0, 1000)
                      .span(1, 200, 300, Category::CommTpAllreduce, 0, 1000)
                      .span(0, 400, 1400, Category::CommPpSendrecv, 0, 3000)
                      .span(1, 400, 900, Category::CommPpSendrecv, 0, 0)
                      .span(1, 1000, 1100, Category::ComputeExpert)
                      .build();
  const auto kinds = communicationByKind(hostActivity(t));
  ASSERT_EQ(kinds.size(), 2u);
  EXPECT_EQ(kinds[0], (CommStats{Category::CommTpAllreduce, 400, 4, 4000, 10.0}));
  EXPECT_EQ(kinds[1], (CommStats{Category::CommPpSendrecv, 1500, 2, 3000, 3.0}));
}

TEST(Communication, NoneInAComputeOnlyRun) {
  const Trace t = testing::TraceBuilder(1).rank(0, 0).span(0, 0, 10, Category::ComputeFfn).build();
  EXPECT_TRUE(communicationByKind(hostActivity(t)).empty());
}

// Sums over many spans saturate at the int64 limit rather than overflow (undefined behaviour that
// showed as negative MiB): three spans of 2^62 ns, each valid, sum beyond int64.
TEST(Communication, SumsBeyondInt64Saturate) {
  const int64_t big = kMaxTime;
  const Trace t = testing::TraceBuilder(1)
                      .rank(0, 0)
                      .rank(1, 0)
                      .rank(2, 0)
                      .span(0, 0, big, Category::CommTpAllreduce, 0, int64_t{1} << 50)
                      .span(1, 0, big, Category::CommTpAllreduce, 0, int64_t{1} << 50)
                      .span(2, 0, big, Category::CommTpAllreduce, 0, int64_t{1} << 50)
                      .build();
  const auto kinds = communicationByKind(hostActivity(t));
  ASSERT_EQ(kinds.size(), 1u);
  EXPECT_EQ(kinds[0].time_ns, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(kinds[0].bytes, 3 * (int64_t{1} << 50));
  EXPECT_GT(kinds[0].gbytes_per_s, 0);
}

}  // namespace
}  // namespace moescope::storage
