#include "storage/export_chrome.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "storage/synthetic.h"
#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

using nlohmann::json;

json exportAndParse(const Trace& t, int64_t* events = nullptr) {
  std::ostringstream out;
  const int64_t n = exportChromeTrace(t, out);
  if (events) *events = n;
  return json::parse(out.str());
}

// Two ranks, one track each; rank 0 has a parent span with a nested child, rank 1 a send with bytes.
Trace smallTrace() {
  Trace t = testing::TraceBuilder(2, 1).rank(0, 0).rank(1, 1).build();
  t.strings = {"forward", "attention \"qkv\"", "send"};
  addSpan(t, {0, 1'000'000, 1'002'500, 0, Category::ComputeAttention, Phase::Forward, 3, 1, kNone});
  addSpan(t, {0, 1'000'500, 1'001'000, 1, Category::ComputeAttention, Phase::Forward, 3, 1, 7, kNone, 0, 1});
  addSpan(t,
          {1, 1'003'000, 1'003'001, 2, Category::CommPpSendrecv, Phase::Forward, 3, 1, kNone, kNone, 4096});
  t.tracks.push_back({2, 1, TrackKind::Counter, "tokens/expert", 1, kNone, kNone});
  t.counters.push_back({2, 1'003'000, 12.5});
  finishTrace(t);
  return t;
}

TEST(ExportChrome, ParsesBackWithProcessesThreadsAndArgs) {
  int64_t events = 0;
  const json j = exportAndParse(smallTrace(), &events);
  ASSERT_TRUE(j.contains("traceEvents"));
  const json& ev = j["traceEvents"];
  // 2 processes x (name + sort) + 2 threads x (name + sort) + 3 spans + 1 counter.
  ASSERT_EQ(ev.size(), 12u);
  EXPECT_EQ(events, 12);
  EXPECT_EQ(j["otherData"]["origin_ns"], 1'000'000);

  std::map<int, std::string> processNames, threadNames;
  std::vector<json> spans;
  for (const json& e : ev) {
    if (e["ph"] == "M" && e["name"] == "process_name") processNames[e["pid"]] = e["args"]["name"];
    if (e["ph"] == "M" && e["name"] == "thread_name") threadNames[e["tid"]] = e["args"]["name"];
    if (e["ph"] == "X") spans.push_back(e);
  }
  EXPECT_EQ(processNames, (std::map<int, std::string>{{0, "rank 0 (stage 0, tp 0, dp 0)"},
                                                      {1, "rank 1 (stage 1, tp 0, dp 0)"}}));
  EXPECT_EQ(threadNames, (std::map<int, std::string>{{0, "rank 0"}, {1, "rank 1"}}));

  ASSERT_EQ(spans.size(), 3u);
  const json& parent = spans[0];
  const json& child = spans[1];
  EXPECT_EQ(parent["name"], "forward");
  EXPECT_EQ(parent["cat"], "compute.attention");
  EXPECT_EQ(parent["pid"], 0);
  EXPECT_EQ(parent["tid"], 0);
  EXPECT_DOUBLE_EQ(parent["ts"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(parent["dur"].get<double>(), 2.5);  // microseconds
  EXPECT_EQ(parent["args"], (json{{"stage", 0}, {"step", 3}, {"microbatch", 1}, {"phase", "forward"}}));
  // The child nests inside the parent on the same thread; its name keeps its quotes.
  EXPECT_EQ(child["name"], "attention \"qkv\"");
  EXPECT_EQ(child["tid"], parent["tid"]);
  EXPECT_GE(child["ts"].get<double>(), parent["ts"].get<double>());
  EXPECT_LE(child["ts"].get<double>() + child["dur"].get<double>(),
            parent["ts"].get<double>() + parent["dur"].get<double>());
  EXPECT_EQ(child["args"]["layer"], 7);
  EXPECT_EQ(child["args"]["chunk"], 1);  // an interleaved schedule's chunk; absent where there is none
  const json& send = spans[2];
  EXPECT_EQ(send["pid"], 1);
  EXPECT_EQ(send["args"]["bytes"], 4096);
  EXPECT_EQ(send["args"]["stage"], 1);
  EXPECT_DOUBLE_EQ(send["dur"].get<double>(), 0.001);  // 1 ns is kept

  const json& counter = ev.back();
  EXPECT_EQ(counter["ph"], "C");
  EXPECT_EQ(counter["name"], "tokens/expert");
  EXPECT_DOUBLE_EQ(counter["args"]["value"].get<double>(), 12.5);
}

TEST(ExportChrome, EverySpanOfASyntheticRunIsAnEvent) {
  SyntheticOptions o;
  o.spans = 3000;
  const Trace t = syntheticTrace(o);
  const json j = exportAndParse(t);
  size_t complete = 0;
  for (const json& e : j["traceEvents"]) complete += e["ph"] == "X";
  EXPECT_EQ(complete, t.spanCount());
}

TEST(ExportChrome, AnEmptyTraceIsValidJson) {
  const json j = exportAndParse(Trace{});
  EXPECT_TRUE(j["traceEvents"].empty());
}

}  // namespace
}  // namespace moescope::storage
