// What a run traced on GPUs must show (issue 6's acceptance): every comm.tp_allreduce span has NCCL
// all-reduce kernels tied to it, every compute.expert span matrix-product kernels, save the spans whose
// experts got no tokens in their micro-batch (the CUDA stage launches nothing for them, so they have no
// GPU records at all; counted apart). Runs since the experts computed in one span per layer and
// micro-batch have one such span where they had one per expert. Shared by the test
// on the committed H200 sample and the GPU test that makes a run.
#pragma once

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

#include "storage/trace.h"

namespace moescope::testing {

inline std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

inline bool isNcclAllReduce(std::string_view kernel) {
  const std::string k = lowered(kernel);
  return k.find("nccl") != std::string::npos && k.find("allreduce") != std::string::npos;
}

// cuBLAS(Lt) and CUTLASS kernels: "nvjet_...", "sm90_xmma_gemm_...", "cutlass...gemm...".
inline bool isMatrixProduct(std::string_view kernel) {
  const std::string k = lowered(kernel);
  for (const char* p : {"gemm", "nvjet", "xmma", "cutlass", "matmul", "gemv"})
    if (k.find(p) != std::string::npos) return true;
  return false;
}

struct GpuRunCheck {
  int allreduceSpans = 0,
      allreduceWithNccl = 0;                  // comm.tp_allreduce spans, those with NCCL all-reduce kernels
  int expertSpans = 0, expertWithMatmul = 0;  // compute.expert spans, those with matrix-product kernels
  int expertWithRecords = 0;                  // compute.expert spans that launched any GPU work
  std::string kernels;                        // kernel names seen per category, for a failure message
};

inline GpuRunCheck checkGpuRun(const storage::Trace& t) {
  using storage::Category;
  GpuRunCheck c;
  for (size_t track = 0; track < t.spans.size() && track < t.tracks.size(); ++track) {
    if (t.tracks[track].kind != storage::TrackKind::HostThread) continue;
    const storage::SpanColumns& columns = t.spans[track];
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns.category[i] == Category::CommTpAllreduce) ++c.allreduceSpans;
      if (columns.category[i] == Category::ComputeExpert) ++c.expertSpans;
    }
  }
  std::map<int64_t, std::pair<bool, bool>> bySpan;  // span id -> (NCCL all-reduce, matrix product)
  for (const auto& g : t.gpu) {
    const storage::LinkedSpan* l = t.linkedSpan(g.span);
    if (l && l->span.category == Category::ComputeExpert) bySpan.try_emplace(l->id, false, false);
  }
  c.expertWithRecords = static_cast<int>(bySpan.size());
  std::map<std::string, std::map<std::string, int>> names;
  for (const auto& g : t.gpu) {
    const storage::LinkedSpan* l = t.linkedSpan(g.span);
    if (!l || g.kind != storage::GpuActivityKind::Kernel) continue;
    auto& seen = bySpan[l->id];
    if (l->span.category == Category::CommTpAllreduce && isNcclAllReduce(t.name(g.name))) seen.first = true;
    if (l->span.category == Category::ComputeExpert && isMatrixProduct(t.name(g.name))) seen.second = true;
    ++names[std::string(storage::categoryName(l->span.category))][std::string(t.name(g.name)).substr(0, 60)];
  }
  for (const auto& [id, seen] : bySpan) {
    c.allreduceWithNccl += seen.first;
    c.expertWithMatmul += seen.second;
  }
  for (const auto& [category, kernels] : names) {
    c.kernels += category + ":";
    for (const auto& [name, n] : kernels) c.kernels += " " + name + " x" + std::to_string(n) + ";";
    c.kernels += "\n";
  }
  return c;
}

}  // namespace moescope::testing
