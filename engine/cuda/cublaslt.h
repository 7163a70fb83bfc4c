// The cuBLASLt state a rank keeps: the handle, its workspace on the device, the algorithm chosen for each
// product seen, and a scratch vector for the epilogues' bias gradients. Used by linear.h, matmul.h,
// linear_gelu.h and grouped_linear.h.
#pragma once

#include <cublasLt.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace moescope::engine::cuda {

// A cuBLASLt handle, its workspace on the current device, and the algorithm cuBLASLt's heuristic chose
// for each matmul shape and epilogue seen (asked once per shape; none where an epilogue is not offered).
// One per device (per rank thread); not shared between streams running at the same time.
class CublasLt {
 public:
  explicit CublasLt(size_t workspaceBytes = size_t{32} << 20);
  ~CublasLt();
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;

  cublasLtHandle_t handle() const { return handle_; }
  void* workspace() const { return workspace_; }
  size_t workspaceBytes() const { return workspaceBytes_; }

  // types, operations, sizes, leading dimensions, epilogue (mode, bias type, bias and aux alignment, aux
  // leading dimension), operand alignments, batch count and strides
  using PlanKey = std::array<int64_t, 22>;
  std::map<PlanKey, std::optional<cublasLtMatmulAlgo_t>>& plans() { return plans_; }

  // A device buffer of at least `bytes` for the epilogues' bias gradients, kept between calls (it grows
  // when asked for more, which synchronises the device once).
  void* scratch(size_t bytes);

  // Whether weight-gradient products also give their bias gradient (BGRADB, linear.h); off: a
  // bias-gradient kernel each (MOESCOPE_CUDA_BIAS_EPILOGUE=0, for A/B measurements).
  bool biasGradientEpilogue() const { return biasGradientEpilogue_; }
  void setBiasGradientEpilogue(bool on) { biasGradientEpilogue_ = on; }

  // Products asked with an epilogue that cuBLASLt did not offer for their shape (each ran as a plain
  // product and separate kernels instead); for the benchmarks' reports.
  int64_t epilogueFallbacks() const { return epilogueFallbacks_; }
  void countEpilogueFallback() { ++epilogueFallbacks_; }
  // Why: one line per product (shape, epilogue) cuBLASLt refused, with the status its heuristic gave,
  // in the order they were first asked.
  const std::vector<std::string>& epilogueRefusals() const { return epilogueRefusals_; }
  void addEpilogueRefusal(std::string reason) { epilogueRefusals_.push_back(std::move(reason)); }

 private:
  std::map<PlanKey, std::optional<cublasLtMatmulAlgo_t>> plans_;
  void* scratch_ = nullptr;
  size_t scratchBytes_ = 0;
  int64_t epilogueFallbacks_ = 0;
  std::vector<std::string> epilogueRefusals_;
  bool biasGradientEpilogue_ = true;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
};

}  // namespace moescope::engine::cuda
