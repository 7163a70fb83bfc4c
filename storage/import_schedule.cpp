#include "storage/import_schedule.h"

namespace moescope::storage {

std::vector<int32_t> microbatchesOfPasses(Schedule schedule, int32_t /*stages*/, int32_t /*stage*/,
                                          std::span<const Phase> passes) {
  std::vector<int32_t> out;
  out.reserve(passes.size());
  int32_t forwards = 0, backwards = 0;
  switch (schedule) {
    case Schedule::GPipe:
    case Schedule::OneFOneB:
      for (Phase p : passes) {
        if (p == Phase::Forward) {
          out.push_back(forwards++);
        } else if (p == Phase::Backward) {
          out.push_back(backwards++);
        } else {
          out.push_back(kNone);
        }
      }
      break;
  }
  return out;
}

}  // namespace moescope::storage
