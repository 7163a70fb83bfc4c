#include "storage/step_column.h"

#include <algorithm>

namespace moescope::storage {

int32_t StepColumn::sparseAt(size_t i) const {
  auto it = std::lower_bound(index.begin(), index.end(), static_cast<uint32_t>(i));
  return it != index.end() && *it == i ? value[static_cast<size_t>(it - index.begin())] : kNone;
}

void StepColumn::push_back(int32_t step) {
  if (step == kNone) {
    code.push_back(kNoneCode);
    return;
  }
  constexpr int64_t kLow = kSparseCode + 1, kHigh = std::numeric_limits<int16_t>::max();
  // The first step of the track fixes the base (every code before it is kNoneCode).
  if (!based && (step < kLow || step > kHigh)) base = step;
  based = true;
  const int64_t rel = int64_t{step} - base;
  if (rel >= kLow && rel <= kHigh) {
    code.push_back(static_cast<int16_t>(rel));
  } else {
    index.push_back(static_cast<uint32_t>(code.size()));
    value.push_back(step);
    code.push_back(kSparseCode);
  }
}

void StepColumn::shrink_to_fit() {
  code.shrink_to_fit();
  index.shrink_to_fit();
  value.shrink_to_fit();
}

size_t StepColumn::residentBytes() const {
  return code.capacity() * sizeof(int16_t) + index.capacity() * sizeof(uint32_t) +
         value.capacity() * sizeof(int32_t);
}

bool StepColumn::operator==(const StepColumn& other) const {
  if (size() != other.size()) return false;
  if (base == other.base) return code == other.code && index == other.index && value == other.value;
  for (size_t i = 0; i < size(); ++i)
    if (at(i) != other.at(i)) return false;
  return true;
}

StepColumn permuted(const StepColumn& in, const std::vector<uint32_t>& order) {
  StepColumn out;
  out.base = in.base;
  out.based = in.based;
  out.code.reserve(order.size());
  for (uint32_t from : order) {
    const int16_t c = in.code[from];
    if (c != StepColumn::kSparseCode) {
      out.code.push_back(c);
    } else {
      out.index.push_back(static_cast<uint32_t>(out.code.size()));
      out.value.push_back(in.at(from));
      out.code.push_back(c);
    }
  }
  return out;
}

}  // namespace moescope::storage
