// What the launcher told this process through its environment, read without starting MPI: Open MPI's
// mpirun (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK), Slurm's srun (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID) and the PMI variables of other launchers (PMI_RANK, PMI_SIZE, MPI_LOCALRANKID). A
// process started by hand has none of them and runs alone, as before.
#pragma once

#include <functional>
#include <string>

namespace moescope::engine {

struct LaunchEnvironment {
  bool launched = false;  // a launcher started this process as one of several (or one of one)
  std::string launcher;   // "mpirun", "srun", "pmi"; "" when not launched
  int process = 0, processes = 1, local_rank = 0;
  bool operator==(const LaunchEnvironment&) const = default;
};

// getenv is a parameter so tests can give an environment of their own. A variable that is set but is
// not a number in range is bad input (InputError naming it).
LaunchEnvironment detectLaunch(const std::function<const char*(const char*)>& getenv);
LaunchEnvironment detectLaunch();

}  // namespace moescope::engine
