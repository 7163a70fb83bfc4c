#include "storage/export_csv.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

TEST(ExportCsv, OneRowPerSpanWithQuotedNamesAndEmptyMissingFields) {
  Trace t = testing::TraceBuilder(1).rank(0, 0).build();
  t.strings = {"a, \"b\"", "send"};
  addSpan(t, {0, 10, 25, 0, Category::ComputeExpert, Phase::BackwardWeight, 2, 1, 3, 4, 0, 1});
  addSpan(t, {0, 30, 40, 1, Category::CommPpSendrecv, Phase::None, kNone, kNone, kNone, kNone, 512});
  finishTrace(t);
  std::ostringstream out;
  EXPECT_EQ(exportSpansCsv(t, out), 2);
  EXPECT_EQ(
      out.str(),
      "track,rank,stage,start_ns,end_ns,duration_ns,name,category,phase,step,microbatch,layer,expert,bytes,"
      "chunk\n"
      "0,0,0,10,25,15,\"a, \"\"b\"\"\",compute.expert,backward_weight,2,1,3,4,0,1\n"
      "0,0,0,30,40,10,send,comm.pp_sendrecv,,,,,,512,\n");
}

}  // namespace
}  // namespace moescope::storage
