#include "storage/import_schedule.h"

namespace moescope::storage {

std::vector<int32_t> microbatchesOfPasses(Schedule schedule, int32_t /*stages*/, int32_t /*stage*/,
                                          std::span<const Phase> passes) {
  std::vector<int32_t> out;
  out.reserve(passes.size());
  int32_t forwards = 0, backwards = 0, weights = 0;
  switch (schedule) {
    case Schedule::GPipe:
    case Schedule::OneFOneB:
    case Schedule::ZbH1:  // its B passes, and its W passes, each go in micro-batch order too
      for (Phase p : passes) {
        if (p == Phase::Forward) {
          out.push_back(forwards++);
        } else if (p == Phase::Backward) {
          out.push_back(backwards++);
        } else if (p == Phase::BackwardWeight) {
          out.push_back(weights++);
        } else {
          out.push_back(kNone);
        }
      }
      break;
    case Schedule::Interleaved:
      // The k-th forward is micro-batch k of Megatron's schedule table only given the pass's chunk and
      // the virtual stages, which the range names do not carry: left unnumbered.
      out.assign(passes.size(), kNone);
      break;
  }
  return out;
}

}  // namespace moescope::storage
