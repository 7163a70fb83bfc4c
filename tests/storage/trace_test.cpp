#include "storage/trace.h"

#include <gtest/gtest.h>

namespace moescope::storage {
namespace {

SpanRecord span(int64_t start, int64_t end, int64_t bytes = 0) {
  SpanRecord s;
  s.start = start;
  s.end = end;
  s.bytes = bytes;
  return s;
}

TEST(SpanColumns, SortsByStartThenEndAndKeepsSparseColumnsAligned) {
  SpanColumns c;
  appendSpan(c, span(50, 60, 7));
  appendSpan(c, span(0, int64_t{10} << 32));  // longer than a uint32 duration
  appendSpan(c, span(0, 40, 9));
  appendSpan(c, span(20, 30));
  sortSpans(c);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c.at(0, 0).end, 40);
  EXPECT_EQ(c.at(0, 0).bytes, 9);
  EXPECT_EQ(c.at(1, 0).end, int64_t{10} << 32);
  EXPECT_EQ(c.at(1, 0).bytes, 0);
  EXPECT_EQ(c.at(2, 0).start, 20);
  EXPECT_EQ(c.at(3, 0).bytes, 7);
  EXPECT_EQ(c.maxDuration, int64_t{10} << 32);
}

TEST(SpanColumns, CommunicationCallsAreSparseAndFollowTheirSpansThroughASort) {
  SpanColumns c;
  SpanRecord send = span(50, 60, 7);
  send.comm = 3;
  send.seq = 12;
  send.peer = 5;
  appendSpan(c, send);
  appendSpan(c, span(0, 10));
  SpanRecord wait = span(20, 30);
  wait.peer = 2;
  appendSpan(c, wait);
  EXPECT_EQ(c.comm_index.size(), 2u);  // the computation span has none
  sortSpans(c);
  EXPECT_EQ(c.at(0, 0).comm, kNone);
  EXPECT_EQ(c.at(1, 0).peer, 2);
  EXPECT_EQ(c.at(1, 0).comm, kNone);
  EXPECT_EQ(c.at(2, 0).comm, 3);
  EXPECT_EQ(c.at(2, 0).seq, 12);
  EXPECT_EQ(c.at(2, 0).peer, 5);
  SpanColumns d;
  appendSpans(d, c);
  EXPECT_EQ(d.at(2, 0).seq, 12);
}

TEST(SpanColumns, ByteCountsBeyondTheCodeTableGoToTheSparseColumn) {
  SpanColumns c;
  for (int i = 0; i < 300; ++i) appendSpan(c, span(i, i + 1, 1000 + i));
  appendSpan(c, span(400, 401, 1000));  // a repeated size reuses its code
  EXPECT_EQ(c.bytes_table.size(), 254u);
  EXPECT_EQ(c.bytes_index.size(), 46u);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(c.bytesAt(static_cast<size_t>(i)), 1000 + i);
  EXPECT_EQ(c.bytesAt(300), 1000);
}

TEST(SpanColumns, AppendingColumnsRecodesTheirByteCounts) {
  SpanColumns a, b;
  appendSpan(a, span(0, 10, 100));
  appendSpan(b, span(20, 30, 200));
  appendSpan(b, span(40, 50, 100));
  appendSpans(a, b);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a.bytesAt(1), 200);
  EXPECT_EQ(a.bytesAt(2), 100);
  EXPECT_EQ(a.bytes_table.size(), 2u);
}

TEST(SpanColumns, WindowFindsSpansThatStartedBeforeIt) {
  SpanColumns c;
  appendSpan(c, span(0, 1000));  // long: reaches into every window below
  for (int64_t t = 100; t < 1000; t += 100) appendSpan(c, span(t, t + 10));
  sortSpans(c);
  auto [first, last] = c.window(450, 620);
  std::vector<int64_t> hits;
  for (size_t i = first; i < last; ++i) {
    if (c.endAt(i) > 450) hits.push_back(c.start[i]);
  }
  EXPECT_EQ(hits, (std::vector<int64_t>{0, 500, 600}));
  EXPECT_EQ(c.window(10, 10), (std::pair<size_t, size_t>{0, 0}));
}

SpanRecord stepped(int64_t start, int32_t step) {
  SpanRecord s = span(start, start + 5);
  s.step = step;
  return s;
}

TEST(SpanColumns, StepsBeyondTwoBytesGoToTheSparseColumnAndFollowASort) {
  SpanColumns c;
  const std::vector<int32_t> steps = {kNone, 0, 32766, 32767, 32768, -2, 100000, kNone, 2'000'000'000, 7};
  for (size_t i = 0; i < steps.size(); ++i) appendSpan(c, stepped(static_cast<int64_t>(100 - i), steps[i]));
  EXPECT_EQ(c.step.base, 0);
  EXPECT_EQ(c.step.index.size(), 3u);  // 32768, 100000, 2e9
  sortSpans(c);                        // reverses the order
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(c.stepAt(steps.size() - 1 - i), steps[i]) << i;
    EXPECT_EQ(c.at(steps.size() - 1 - i, 0).step, steps[i]) << i;
  }
  SpanColumns d;
  appendSpans(d, c);
  EXPECT_EQ(d, c);
  shrinkSpans(d);
  EXPECT_EQ(d.stepAt(0), 7);
  EXPECT_EQ(d.stepAt(1), 2'000'000'000);
}

TEST(SpanColumns, ATrackFromALateStepKeepsItsStepsInTwoBytes) {
  SpanColumns c;
  appendSpan(c, stepped(0, kNone));
  for (int32_t k = 0; k < 1000; ++k) appendSpan(c, stepped(10 + k, 40000 + k * 30));  // 40,000 to 69,970
  appendSpan(c, stepped(5000, 3));  // far below the base: sparse
  EXPECT_EQ(c.step.base, 40000);
  EXPECT_EQ(c.step.index, (std::vector<uint32_t>{1001}));
  EXPECT_EQ(c.stepAt(0), kNone);
  for (int32_t k = 0; k < 1000; ++k) ASSERT_EQ(c.stepAt(static_cast<size_t>(k) + 1), 40000 + k * 30);
  EXPECT_EQ(c.stepAt(1001), 3);
  // The same steps appended from another first span have another base and still compare equal.
  SpanColumns d;
  appendSpan(d, stepped(5000, 3));
  for (size_t i = 0; i + 1 < c.size(); ++i) appendSpan(d, stepped(c.start[i], c.stepAt(i)));
  sortSpans(d);
  sortSpans(c);
  EXPECT_EQ(d.step.base, 0);
  EXPECT_EQ(d, c);
  d.step.code[1] = StepColumn::kNoneCode;
  EXPECT_NE(d, c);
}

TEST(SpanColumns, ResidentBytesPerSpanStayUnder32) {
  SpanColumns c;
  for (int i = 0; i < 10000; ++i) {
    SpanRecord s = span(i * 10, i * 10 + 5, i % 3 == 0 ? 4096 : 0);
    s.step = i / 100;
    appendSpan(c, s);
  }
  shrinkSpans(c);
  // 28 bytes of dense columns (trace.h) and the columns' headers spread over 10,000 spans.
  EXPECT_LE(static_cast<double>(c.residentBytes()) / 10000.0, 28.1);
}

TEST(Trace, StartEndAndRankLookup) {
  Trace t;
  t.run.start_ns = 5;
  t.run.end_ns = 6;
  EXPECT_EQ(t.startTime(), 5);
  EXPECT_EQ(t.endTime(), 6);
  addSpan(t, {1, 100, 500});
  addSpan(t, {1, 200, 300});
  addSpan(t, {0, 50, 60});
  t.ranks = {{2, 1}, {0, 0}};
  finishTrace(t);
  EXPECT_EQ(t.spanCount(), 3u);
  EXPECT_EQ(t.startTime(), 50);
  EXPECT_EQ(t.endTime(), 500);
  ASSERT_NE(t.rank(2), nullptr);
  EXPECT_EQ(t.rank(2)->stage, 1);
  EXPECT_EQ(t.rank(1), nullptr);
}

}  // namespace
}  // namespace moescope::storage
