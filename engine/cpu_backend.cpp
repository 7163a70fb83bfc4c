// The CPU reference backend: ranks are threads, communicating through a ThreadWorld.
#include "engine/backend.h"
#include "engine/cpu_stage.h"
#include "engine/host_cores.h"
#include "engine/memory_estimate.h"
#include "engine/thread_communicator.h"

namespace moescope::engine {
namespace {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string devices(const Config& config) const override {
    return "cpu (" + std::to_string(config.worldSize()) + " rank threads on " +
           std::to_string(usableCores()) + " cores)";
  }
  // Every rank is a thread of this process: the whole model and its activations in host memory.
  void check(const Config& config) const override { checkHostMemory(config); }
  std::unique_ptr<CommWorld> makeWorld(int size) override { return std::make_unique<ThreadWorld>(size); }
  std::unique_ptr<StageExecutor> makeExecutor(const RankSetup& setup) override {
    return makeCpuStage<float>(setup);
  }
};

}  // namespace

std::unique_ptr<Backend> makeCpuBackend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace moescope::engine
