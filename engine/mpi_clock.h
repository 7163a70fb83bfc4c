// Each process's clock against process 0's (rank 0's), by ping-pong over MPI: process 0 sends its time,
// the other answers with its own, process 0 notes the round trip; of kRounds round trips the shortest
// wins (the least delayed by scheduling), and the peer's time is taken to be read at its middle, so
// the error is at most half that round trip. Measured at the start and the end of a run, the two give a
// linear drift. Collective over all processes.
#pragma once

#include <cstdint>

namespace moescope::engine {

class MpiRuntime;

struct ClockSample {
  int64_t local_ns = 0;       // this process's time at the measurement
  int64_t offset_ns = 0;      // add to this process's time to get process 0's
  int64_t round_trip_ns = 0;  // the best round trip (0 on process 0)
  bool operator==(const ClockSample&) const = default;
};

// One measurement on every process (process 0's is 0/0 at its own time).
ClockSample measureClock(const MpiRuntime& mpi, int rounds = 32);

}  // namespace moescope::engine
