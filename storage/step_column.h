// The step of each span of a track in 2 bytes: a value relative to the track's base step, with codes
// for "no step" and for a step that does not fit (kept in a sparse side column, 8 bytes each).
//
// Why not int32: at 10M spans the 2 bytes saved are 20 MB of a trace of about 300 MB, and the viewer's
// goal is at most 32 bytes per span resident (docs/bench-ui.md). Why a base: a run recorded from a late
// step (record attached at step 40,000) would otherwise put every span into the sparse column. The base
// is 0 unless the track's first step is beyond +-32,766; steps within 32,766 of the base are dense.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "storage/trace_model.h"

namespace moescope::storage {

struct StepColumn {
  static constexpr int16_t kNoneCode = std::numeric_limits<int16_t>::min();
  static constexpr int16_t kSparseCode = kNoneCode + 1;

  int32_t base = 0;
  bool based = false;           // base is fixed (a step other than kNone was pushed)
  std::vector<int16_t> code;    // kNoneCode, kSparseCode, or step - base
  std::vector<uint32_t> index;  // sparse: spans with kSparseCode, ascending index
  std::vector<int32_t> value;

  size_t size() const { return code.size(); }
  int32_t at(size_t i) const {
    const int16_t c = code[i];
    if (c > kSparseCode) return base + c;
    return c == kNoneCode ? kNone : sparseAt(i);
  }
  void push_back(int32_t step);
  void reserve(size_t n) { code.reserve(n); }
  void shrink_to_fit();
  size_t residentBytes() const;
  // The same steps span by span: two columns built in different orders may differ in base.
  bool operator==(const StepColumn& other) const;

 private:
  int32_t sparseAt(size_t i) const;
};

// out[i] = in.at(order[i]) (the columns' sort permutation).
StepColumn permuted(const StepColumn& in, const std::vector<uint32_t>& order);

}  // namespace moescope::storage
