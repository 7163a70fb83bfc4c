#include "engine/mpi_launch.h"

#include <cstdlib>
#include <optional>

#include "engine/engine_error.h"

namespace moescope::engine {
namespace {

std::optional<int> number(const std::function<const char*(const char*)>& getenv, const char* name, int lo,
                          int hi) {
  const char* text = getenv(name);
  if (text == nullptr) return std::nullopt;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
    throw InputError(std::string("the launcher's ") + name + " is '" + text + "', not a number from " +
                     std::to_string(lo) + " to " + std::to_string(hi));
  }
  return static_cast<int>(v);
}

}  // namespace

LaunchEnvironment detectLaunch(const std::function<const char*(const char*)>& getenv) {
  constexpr int kMax = 1 << 20;
  struct Names {
    const char *launcher, *rank, *size, *local;
  };
  // Open MPI first: under `srun --mpi=pmix` or inside an allocation, Slurm's variables are set too,
  // and mpirun's are the ones that describe this job.
  for (const Names& n :
       {Names{"mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        Names{"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
        Names{"srun", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}}) {
    const auto size = number(getenv, n.size, 1, kMax);
    const auto rank = number(getenv, n.rank, 0, kMax);
    if (!size || !rank) continue;
    // sbatch sets SLURM_PROCID = 0 and SLURM_NTASKS for the batch script itself: only srun's tasks
    // have SLURM_STEP_ID.
    if (std::string(n.launcher) == "srun" && getenv("SLURM_STEP_ID") == nullptr) continue;
    if (*rank >= *size) {
      throw InputError(std::string("the launcher's ") + n.rank + " " + std::to_string(*rank) +
                       " is not below " + n.size + " " + std::to_string(*size));
    }
    LaunchEnvironment env;
    env.launched = true;
    env.launcher = n.launcher;
    env.process = *rank;
    env.processes = *size;
    env.local_rank = number(getenv, n.local, 0, kMax).value_or(0);
    return env;
  }
  return {};
}

LaunchEnvironment detectLaunch() {
  return detectLaunch([](const char* name) { return std::getenv(name); });
}

}  // namespace moescope::engine
