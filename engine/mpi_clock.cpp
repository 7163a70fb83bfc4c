#include "engine/mpi_clock.h"

#include <mpi.h>

#include <limits>

#include "engine/mpi_runtime.h"
#include "tracer/span.h"

namespace moescope::engine {

ClockSample measureClock(const MpiRuntime& mpi, int rounds) {
  constexpr int kTag = 7001;
  ClockSample mine;
  mine.local_ns = tracer::nowNs();
  // Process 0 measures every peer in turn; the peers answer and then receive their result.
  if (mpi.process() == 0) {
    for (int p = 1; p < mpi.processes(); ++p) {
      int64_t best = std::numeric_limits<int64_t>::max(), bestOffset = 0, bestPeerTime = 0;
      for (int i = 0; i < rounds; ++i) {
        int64_t sent = tracer::nowNs(), peer = 0;
        MPI_Send(&sent, 1, MPI_INT64_T, p, kTag, MPI_COMM_WORLD);
        MPI_Recv(&peer, 1, MPI_INT64_T, p, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        const int64_t back = tracer::nowNs();
        if (back - sent < best) {
          best = back - sent;
          bestOffset = sent + (back - sent) / 2 - peer;
          bestPeerTime = peer;
        }
      }
      const int64_t result[3] = {bestOffset, best, bestPeerTime};
      MPI_Send(result, 3, MPI_INT64_T, p, kTag, MPI_COMM_WORLD);
    }
    return mine;
  }
  for (int i = 0; i < rounds; ++i) {
    int64_t sent = 0;
    MPI_Recv(&sent, 1, MPI_INT64_T, 0, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    const int64_t now = tracer::nowNs();
    MPI_Send(&now, 1, MPI_INT64_T, 0, kTag, MPI_COMM_WORLD);
  }
  int64_t result[3] = {0, 0, 0};
  MPI_Recv(result, 3, MPI_INT64_T, 0, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  mine.offset_ns = result[0];
  mine.round_trip_ns = result[1];
  mine.local_ns = result[2];
  return mine;
}

}  // namespace moescope::engine
