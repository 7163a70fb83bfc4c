// What an area selection holds: the spans of chosen tracks that intersect an exact time range [t0, t1),
// summed by category, by span name and by GPU kernel (Perfetto's area selection). Each span counts
// once, with its time inside the range (a span cut by the range's edge counts the part inside): count,
// total, mean, max, and share of the table's total. Host spans and GPU records are summed apart, as
// they measure different clocks of the same work: host time, and GPU time by the launching span's
// category.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "storage/trace.h"

namespace moescope::storage {

struct RangeRow {
  std::string label;  // a category's name, a span name or a kernel name
  int64_t count = 0;
  int64_t total_ns = 0, max_ns = 0;
  double mean_ns = 0;
  double share = 0;  // of the table's total time
  bool operator==(const RangeRow&) const = default;
};

struct RangeSummary {
  int64_t t0 = 0, t1 = 0;
  std::vector<RangeRow> hostCategories;  // host tracks' spans by category
  std::vector<RangeRow> gpuCategories;   // GPU records by their launching span's category
  std::vector<RangeRow> names;           // host tracks' spans by name
  std::vector<RangeRow> kernels;         // GPU records by name (kernels, copies, memsets)
  int64_t hostSpans = 0, gpuRecords = 0;
  bool operator==(const RangeSummary&) const = default;
};

// tracks: track ids (any order; unknown ids are left out). Each table is sorted by total time, the
// largest first, ties by label.
RangeSummary summarizeRange(const Trace& trace, std::span<const int32_t> tracks, int64_t t0, int64_t t1);

// Host spans of the tracks intersecting [t0, t1): what summarizeRange would visit (for callers that
// bound the work).
int64_t spansInRange(const Trace& trace, std::span<const int32_t> tracks, int64_t t0, int64_t t1);

}  // namespace moescope::storage
