// The cores this process may run on: its CPU affinity mask (taskset, a container's cpuset), not the
// host's count. std::thread::hardware_concurrency() reads the host's online CPUs (glibc 2.36:
// `taskset -c 0,1` on a 16-core host still says 16), which overstates what a pinned CPU run's rank
// threads share, and the planner predicts from the count a run records.
#pragma once

namespace moescope::engine {

// At least 1; the host's count where the affinity mask cannot be read.
int usableCores();

}  // namespace moescope::engine
