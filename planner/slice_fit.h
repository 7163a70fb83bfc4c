// The host scheduler's time slice (host_scheduler.h) from a CPU run's pipeline transfers.
//
// A send or a receive of the CPU backend does almost no work (a copy of tens of kilobytes: its median
// was 6 to 100 us on the development VM), so when one takes milliseconds its thread waited for a core:
// a sender lost its core to the receiver it woke and waited until that thread's slice ended; a woken
// receiver waited for a running thread's slice. Such a wait lasts about one slice: the thread ahead
// runs its full slice unless it blocks sooner (shorter), and two queued ahead make it two (longer), so
// the median of the waits is the estimate. Measured: the waits of real pp 4 runs on 2 cores had
// medians of 3.2 to 4.2 ms, a tick of the 250 Hz kernel that preempts there.
//
// A run whose transfers hardly ever waited (2 rank threads on 2 cores and a quiet host: 1 to 2 of 40)
// cannot show the slice; then the default, 4 ms: Linux's EEVDF scheduler preempts a thread that used up
// its base slice (0.75 ms x (1 + log2 cores), 1.5 to 3 ms) at the next tick, 4 ms at 250 Hz (Debian's
// kernels) and 1 ms at 1000 Hz.
#pragma once

#include <cstdint>
#include <functional>

#include "storage/trace.h"

namespace moescope::planner {

constexpr double kDefaultSliceMs = 4;
// Waits needed for a fit; a wait is a transfer that took this much longer than its kind's median.
constexpr int kSliceFitMinWaits = 8;
constexpr double kSliceWaitNs = 0.5e6;

struct SliceFit {
  double slice_ns = kDefaultSliceMs * 1e6;
  int waits = 0;        // transfers that waited for a core
  bool fitted = false;  // false: too few waits, the default
  bool operator==(const SliceFit&) const = default;
};

// skipped(step): steps left out of the fit (warm-up, stalls; the cost model's choice).
SliceFit fitSlice(const storage::Trace& trace, const std::function<bool(int32_t)>& skipped);

}  // namespace moescope::planner
