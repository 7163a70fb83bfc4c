#include "engine/cuda/cudnn_attention.h"

#include <array>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/cuda/cuda_check.h"

#if __has_include(<cudnn_graph.h>)
#define MOESCOPE_HAVE_CUDNN_HEADERS 1
#include "engine/cuda/cudnn_library.h"
#endif

namespace moescope::engine::cuda {

bool cudnnAttentionSupports(int Tlen, int D) {
  return Tlen >= 128 && Tlen % 128 == 0 && D >= 8 && D <= 128 && D % 8 == 0;
}

#ifdef MOESCOPE_HAVE_CUDNN_HEADERS

namespace {

// One backend descriptor, destroyed with the object.
class Desc {
 public:
  Desc(const CudnnLibrary& lib, cudnnBackendDescriptorType_t type) : lib_(&lib), type_(type) {
    const cudnnStatus_t s = lib.createDescriptor(type, &d_);
    if (s != CUDNN_STATUS_SUCCESS)
      throwCudnnError(lib, s, "creating descriptor type " + std::to_string(type), __FILE__, __LINE__);
  }
  ~Desc() {
    if (d_) lib_->destroyDescriptor(d_);
  }
  Desc(Desc&& o) noexcept : lib_(o.lib_), type_(o.type_), d_(std::exchange(o.d_, nullptr)) {}
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  Desc& operator=(Desc&&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }

  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
           const void* values) {
    const cudnnStatus_t s = lib_->setAttribute(d_, name, type, count, values);
    if (s != CUDNN_STATUS_SUCCESS)
      throwCudnnError(*lib_, s, where("setting attribute", name), __FILE__, __LINE__);
  }
  void setDesc(cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t value) {
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
  }
  void finalize() {
    const cudnnStatus_t s = lib_->finalize(d_);
    if (s != CUDNN_STATUS_SUCCESS) throwCudnnError(*lib_, s, where("finalizing", -1), __FILE__, __LINE__);
  }

 private:
  std::string where(const char* what, int attribute) const {
    std::string s = what;
    if (attribute >= 0) {
      s += ' ';
      s += std::to_string(attribute);
    }
    s += " of descriptor type ";
    s += std::to_string(type_);
    return s;
  }
  const CudnnLibrary* lib_;
  cudnnBackendDescriptorType_t type_;
  cudnnBackendDescriptor_t d_ = nullptr;
};

using Dims = std::array<int64_t, 4>;
using Tensor = cudnnBackendDescriptor_t;

// The non-virtual tensors' ids: the variant pack binds device (or, for scalars, host) pointers to them.
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kO,
  kStats,
  kDO,
  kDQ,
  kDK,
  kDV,
  kScale,
  kNegInf,
  kOne,
  kSoftmaxSum,  // backward: rowsum(dO ⊙ O), fp32 [B,NH,T,1], in the workspace
  kDQAccum,     // backward: dQ accumulated in fp32 [B,NH,T,D], in the workspace
};

// The tensors and operations of one graph, alive as long as it is.
class GraphBuilder {
 public:
  explicit GraphBuilder(const CudnnLibrary& lib) : lib_(lib) {}

  Tensor tensor(int64_t uid, cudnnDataType_t type, const Dims& dims, const Dims& strides) {
    return make(uid, type, dims.data(), strides.data(), 4, false, false);
  }
  Tensor virt(cudnnDataType_t type, const Dims& dims, const Dims& strides) {
    return make(nextVirtual_++, type, dims.data(), strides.data(), 4, true, false);
  }
  // An fp32 scalar passed by value (a host pointer in the variant pack), [1,1,1,1]: a pointwise
  // operation's operands must have the same rank (cuDNN 9.19 refuses a rank-1 one when finalizing).
  Tensor scalar(int64_t uid) {
    const Dims ones = {1, 1, 1, 1};
    return make(uid, CUDNN_DATA_FLOAT, ones.data(), ones.data(), 4, false, true);
  }

  // y = mode(x [, b [, t]]) computed in prec; axis for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t prec, Tensor x, Tensor b, Tensor t, Tensor y,
                 int64_t axis = -1) {
    Desc& pw = keep(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    pw.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    if (mode == CUDNN_POINTWISE_GEN_INDEX) pw.set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
    pw.finalize();
    Desc& op = keep(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw.get());
    op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b) op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b);
    if (t) op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t);
    op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    const float alpha = 1.0f;
    op.set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &alpha);
    op.set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &alpha);
    op.finalize();
    ops_.push_back(op.get());
  }
  void unary(cudnnPointwiseMode_t mode, Tensor x, Tensor y) {
    pointwise(mode, CUDNN_DATA_FLOAT, x, nullptr, nullptr, y);
  }
  void binary(cudnnPointwiseMode_t mode, Tensor x, Tensor b, Tensor y) {
    pointwise(mode, CUDNN_DATA_FLOAT, x, b, nullptr, y);
  }

  // c = a · b over the last two dimensions, fp32 accumulation.
  void matmul(Tensor a, Tensor b, Tensor c) {
    Desc& mm = keep(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    mm.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    mm.finalize();
    Desc& op = keep(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    op.setDesc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a);
    op.setDesc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b);
    op.setDesc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c);
    op.setDesc(CUDNN_ATTR_OPERATION_MATMUL_DESC, mm.get());
    op.finalize();
    ops_.push_back(op.get());
  }

  // y = reduce(x) over the dimensions where y has size 1, in fp32.
  void reduction(cudnnReduceTensorOp_t mode, Tensor x, Tensor y) {
    Desc& red = keep(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    red.set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    red.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode);
    red.finalize();
    Desc& op = keep(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    op.setDesc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, red.get());
    op.setDesc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x);
    op.setDesc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y);
    op.finalize();
    ops_.push_back(op.get());
  }

  // y is x viewed with other dimensions and strides (a transpose here).
  void reshape(Tensor x, Tensor y) {
    Desc& op = keep(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    op.setDesc(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x);
    op.setDesc(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y);
    op.finalize();
    ops_.push_back(op.get());
  }

  // The causal mask as cudnn-frontend's diagonal band with right bound 0: scores where row >= column,
  // negInf elsewhere.
  Tensor causalMask(Tensor s, Tensor negInf, const Dims& dims, const Dims& strides) {
    const Tensor row = virt(CUDNN_DATA_INT32, dims, strides);
    const Tensor col = virt(CUDNN_DATA_INT32, dims, strides);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, s, nullptr, nullptr, row, 2);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, s, nullptr, nullptr, col, 3);
    const Tensor keepIt = virt(CUDNN_DATA_BOOLEAN, dims, strides);
    pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, nullptr, keepIt);
    const Tensor masked = virt(CUDNN_DATA_FLOAT, dims, strides);
    pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, s, negInf, keepIt, masked);
    return masked;
  }

  const std::vector<cudnnBackendDescriptor_t>& ops() const { return ops_; }

 private:
  Desc& keep(cudnnBackendDescriptorType_t type) {
    descs_.emplace_back(lib_, type);
    return descs_.back();
  }
  Tensor make(int64_t uid, cudnnDataType_t type, const int64_t* dims, const int64_t* strides, int rank,
              bool isVirtual, bool byValue) {
    Desc& t = keep(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t alignment = 16;
    t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, rank, dims);
    t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, rank, strides);
    t.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    t.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    if (isVirtual) t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &isVirtual);
    if (byValue) t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &byValue);
    t.finalize();
    return t.get();
  }

  const CudnnLibrary& lib_;
  std::deque<Desc> descs_;  // a deque: references to its elements survive later insertions
  std::vector<cudnnBackendDescriptor_t> ops_;
  int64_t nextVirtual_ = 100;
};

struct Shape {
  int64_t B, T, NH, D;
  int64_t C() const { return NH * D; }
  // Q, K and V inside the packed qkv [B,T,3,NH,D] as [B,NH,T,D] views (K and V start C elements later).
  Dims qkvStrides() const { return {T * 3 * C(), D, 3 * C(), 1}; }
  // ... and K or V transposed, [B,NH,D,T].
  Dims qkvStridesT() const { return {T * 3 * C(), D, 1, 3 * C()}; }
  Dims headDims() const { return {B, NH, T, D}; }
  Dims headDimsT() const { return {B, NH, D, T}; }
  Dims outStrides() const { return {T * C(), D, C(), 1}; }  // out and dout [B,T,NH,D]
  Dims squareDims() const { return {B, NH, T, T}; }
  Dims squareStrides() const { return {NH * T * T, T * T, T, 1}; }
  Dims squareStridesT() const { return {NH * T * T, T * T, 1, T}; }
  Dims rowDims() const { return {B, NH, T, 1}; }
  Dims rowStrides() const { return {NH * T, T, 1, 1}; }
  bool operator<(const Shape& o) const { return std::tie(B, T, NH, D) < std::tie(o.B, o.T, o.NH, o.D); }
};

// S = Q Kᵀ · scale, causal mask, P = softmax(S) with its log-sum-exp, O = P V.
void buildForward(GraphBuilder& g, const Shape& s) {
  const Tensor q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, s.headDims(), s.qkvStrides());
  const Tensor kT = g.tensor(kK, CUDNN_DATA_BFLOAT16, s.headDimsT(), s.qkvStridesT());
  const Tensor v = g.tensor(kV, CUDNN_DATA_BFLOAT16, s.headDims(), s.qkvStrides());
  const Tensor o = g.tensor(kO, CUDNN_DATA_BFLOAT16, s.headDims(), s.outStrides());
  const Tensor stats = g.tensor(kStats, CUDNN_DATA_FLOAT, s.rowDims(), s.rowStrides());
  const Tensor scale = g.scalar(kScale);
  const Tensor negInf = g.scalar(kNegInf);
  const Dims sq = s.squareDims(), sqs = s.squareStrides(), row = s.rowDims(), rows = s.rowStrides();

  const Tensor scores = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.matmul(q, kT, scores);
  const Tensor scaled = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.binary(CUDNN_POINTWISE_MUL, scores, scale, scaled);
  const Tensor masked = g.causalMask(scaled, negInf, sq, sqs);
  const Tensor max = g.virt(CUDNN_DATA_FLOAT, row, rows);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, masked, max);
  const Tensor shifted = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.binary(CUDNN_POINTWISE_SUB, masked, max, shifted);
  const Tensor e = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.unary(CUDNN_POINTWISE_EXP, shifted, e);
  const Tensor sum = g.virt(CUDNN_DATA_FLOAT, row, rows);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, sum);
  const Tensor logSum = g.virt(CUDNN_DATA_FLOAT, row, rows);
  g.unary(CUDNN_POINTWISE_LOG, sum, logSum);
  g.binary(CUDNN_POINTWISE_ADD, max, logSum, stats);
  const Tensor p = g.virt(CUDNN_DATA_BFLOAT16, sq, sqs);  // the second product takes P in the io type
  g.binary(CUDNN_POINTWISE_DIV, e, sum, p);
  g.matmul(p, v, o);
}

// P = exp(S · scale − lse) under the causal mask; dV = Pᵀ dO; dS = P ⊙ (dO Vᵀ − rowsum(dO ⊙ O)) · scale;
// dK = dSᵀ Q; dQ = dS K, accumulated in fp32 and then converted.
void buildBackward(GraphBuilder& g, const Shape& s) {
  const Tensor q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, s.headDims(), s.qkvStrides());
  const Tensor kT = g.tensor(kK, CUDNN_DATA_BFLOAT16, s.headDimsT(), s.qkvStridesT());
  const Tensor vT = g.tensor(kV, CUDNN_DATA_BFLOAT16, s.headDimsT(), s.qkvStridesT());
  const Tensor o = g.tensor(kO, CUDNN_DATA_BFLOAT16, s.headDims(), s.outStrides());
  const Tensor dO = g.tensor(kDO, CUDNN_DATA_BFLOAT16, s.headDims(), s.outStrides());
  const Tensor stats = g.tensor(kStats, CUDNN_DATA_FLOAT, s.rowDims(), s.rowStrides());
  const Tensor dQ = g.tensor(kDQ, CUDNN_DATA_BFLOAT16, s.headDims(), s.qkvStrides());
  const Tensor dK = g.tensor(kDK, CUDNN_DATA_BFLOAT16, s.headDims(), s.qkvStrides());
  const Tensor dV = g.tensor(kDV, CUDNN_DATA_BFLOAT16, s.headDims(), s.qkvStrides());
  const Tensor scale = g.scalar(kScale);
  const Tensor negInf = g.scalar(kNegInf);
  const Tensor one = g.scalar(kOne);
  const Tensor softmaxSum = g.tensor(kSoftmaxSum, CUDNN_DATA_FLOAT, s.rowDims(), s.rowStrides());
  const Tensor dQAccum =
      g.tensor(kDQAccum, CUDNN_DATA_FLOAT, s.headDims(), {s.NH * s.T * s.D, s.T * s.D, s.D, 1});
  const Dims sq = s.squareDims(), sqs = s.squareStrides();

  // rowsum(dO ⊙ O), with the [B,NH,T,D] view strides cudnn-frontend gives the product
  const Tensor dOo = g.virt(CUDNN_DATA_FLOAT, s.headDims(), {s.NH * s.T * s.D, s.T * s.D, s.NH * s.D, 1});
  g.binary(CUDNN_POINTWISE_MUL, dO, o, dOo);
  const Tensor rowSum = g.virt(CUDNN_DATA_FLOAT, s.rowDims(), s.rowStrides());
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, dOo, rowSum);
  g.binary(CUDNN_POINTWISE_MUL, rowSum, one, softmaxSum);

  const Tensor scores = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.matmul(q, kT, scores);
  const Tensor scaled = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.binary(CUDNN_POINTWISE_MUL, scores, scale, scaled);
  const Tensor shifted = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.binary(CUDNN_POINTWISE_SUB, scaled, stats, shifted);
  const Tensor masked = g.causalMask(shifted, negInf, sq, sqs);
  const Tensor p = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.unary(CUDNN_POINTWISE_EXP, masked, p);

  const Tensor pT = g.virt(CUDNN_DATA_BFLOAT16, sq, s.squareStridesT());
  g.reshape(p, pT);
  g.matmul(pT, dO, dV);

  const Tensor dP = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.matmul(dO, vT, dP);
  const Tensor dPc = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.binary(CUDNN_POINTWISE_SUB, dP, softmaxSum, dPc);
  const Tensor dSu = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.binary(CUDNN_POINTWISE_MUL, dPc, p, dSu);
  const Tensor dS = g.virt(CUDNN_DATA_FLOAT, sq, sqs);
  g.binary(CUDNN_POINTWISE_MUL, dSu, scale, dS);

  const Tensor dST = g.virt(CUDNN_DATA_BFLOAT16, sq, s.squareStridesT());
  g.reshape(dS, dST);
  g.matmul(dST, q, dK);

  // K back from its transposed view; cudnn-frontend leaves this view in the intermediate type.
  const Tensor k = g.virt(CUDNN_DATA_FLOAT, s.headDims(), s.qkvStrides());
  g.reshape(kT, k);
  g.matmul(dS, k, dQAccum);
  g.unary(CUDNN_POINTWISE_IDENTITY, dQAccum, dQ);
}

size_t roundUp256(size_t n) {
  return (n + 255) / 256 * 256;
}

// One graph's execution plan.
struct Plan {
  explicit Plan(const CudnnLibrary& lib) : graph(lib) {}
  GraphBuilder graph;
  std::deque<Desc> keep;  // operation graph, heuristics, engine configs, plan
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t workspace = 0;
  int64_t engine = -1;
};

std::unique_ptr<Plan> makePlan(const CudnnLibrary& lib, cudnnHandle_t handle, const Shape& s, bool backward) {
  auto plan = std::make_unique<Plan>(lib);
  if (backward) {
    buildBackward(plan->graph, s);
  } else {
    buildForward(plan->graph, s);
  }
  Desc& graph = plan->keep.emplace_back(lib, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnHandle_t h = handle;
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  const auto& ops = plan->graph.ops();
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops.size()),
            ops.data());
  graph.finalize();

  std::string failures;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Desc& heur = plan->keep.emplace_back(lib, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heur.setDesc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph.get());
    heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    cudnnStatus_t st = lib.finalize(heur.get());
    int64_t count = 0;
    if (st == CUDNN_STATUS_SUCCESS)
      st = lib.getAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                            &count, nullptr);
    if (st != CUDNN_STATUS_SUCCESS) {
      char last[512] = {0};
      lib.getLastErrorString(last, sizeof last);
      failures +=
          " heuristics mode " + std::to_string(mode) + ": " + lib.getErrorString(st) + " " + last + ";";
      continue;
    }
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i)
      raw.push_back(plan->keep.emplace_back(lib, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR).get());
    int64_t got = 0;
    MOESCOPE_CUDNN_CHECK(lib, lib.getAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                               CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, raw.data()));
    for (int64_t i = 0; i < got; ++i) {
      Desc candidate(lib, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      candidate.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
      candidate.setDesc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, raw[static_cast<size_t>(i)]);
      st = lib.finalize(candidate.get());
      if (st != CUDNN_STATUS_SUCCESS) {
        char last[512] = {0};
        lib.getLastErrorString(last, sizeof last);
        failures += " config " + std::to_string(i) + ": " + lib.getErrorString(st) + " " + last + ";";
        continue;
      }
      int64_t n = 0;
      MOESCOPE_CUDNN_CHECK(lib, lib.getAttribute(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                 CUDNN_TYPE_INT64, 1, &n, &plan->workspace));
      // Which engine, for the logs only.
      Desc engine(lib, CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      cudnnBackendDescriptor_t e = engine.get();
      if (lib.getAttribute(raw[static_cast<size_t>(i)], CUDNN_ATTR_ENGINECFG_ENGINE,
                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e) == CUDNN_STATUS_SUCCESS) {
        lib.getAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &plan->engine);
      }
      plan->plan = candidate.get();
      plan->keep.push_back(std::move(candidate));
      return plan;
    }
  }
  throw CudaError("cuDNN attention: no engine runs the " + std::string(backward ? "backward" : "forward") +
                  " graph for B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                  " NH=" + std::to_string(s.NH) + " D=" + std::to_string(s.D) + ":" + failures);
}

}  // namespace

bool cudnnAttentionAvailable() {
  return cudnnLibrary() != nullptr;
}

std::string cudnnAttentionUnavailableReason() {
  return cudnnUnavailableReason();
}

std::string cudnnAttentionCheckDescriptors(int B, int Tlen, int NH, int D) {
  const CudnnLibrary* lib = cudnnLibrary();
  if (!lib) return cudnnUnavailableReason();
  const Shape s{B, Tlen, NH, D};
  try {
    GraphBuilder forward(*lib);
    buildForward(forward, s);
    GraphBuilder backward(*lib);
    buildBackward(backward, s);
  } catch (const CudaError& e) {
    return e.what();
  }
  return "";
}

struct CudnnAttention::Impl {
  const CudnnLibrary* lib = nullptr;
  cudnnHandle_t handle = nullptr;
  std::map<Shape, std::pair<std::unique_ptr<Plan>, std::unique_ptr<Plan>>> plans;  // forward, backward
  // Scalars passed by value: the variant pack holds their host addresses.
  float scale = 1.0f, negInf = 0.0f, one = 1.0f;

  std::pair<std::unique_ptr<Plan>, std::unique_ptr<Plan>>& plansFor(const Shape& s) {
    auto it = plans.find(s);
    if (it == plans.end()) {
      auto forward = makePlan(*lib, handle, s, false);
      auto backward = makePlan(*lib, handle, s, true);
      it = plans.emplace(s, std::make_pair(std::move(forward), std::move(backward))).first;
    }
    return it->second;
  }

  void execute(const Plan& plan, const std::vector<int64_t>& uids, const std::vector<void*>& ptrs,
               void* workspace, cudaStream_t stream) {
    Desc pack(*lib, CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, static_cast<int64_t>(uids.size()),
             uids.data());
    pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, static_cast<int64_t>(ptrs.size()),
             ptrs.data());
    pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    pack.finalize();
    MOESCOPE_CUDNN_CHECK(*lib, lib->setStream(handle, stream));
    MOESCOPE_CUDNN_CHECK(*lib, lib->execute(handle, plan.plan, pack.get()));
  }
};

CudnnAttention::CudnnAttention() : impl_(std::make_unique<Impl>()) {
  impl_->lib = cudnnLibrary();
  if (!impl_->lib) throw CudaError("cuDNN attention: " + cudnnUnavailableReason());
  MOESCOPE_CUDNN_CHECK(*impl_->lib, impl_->lib->create(&impl_->handle));
  // cuDNN before 9.10 wants the lowest float rather than −inf under the mask, as cudnn-frontend gives it.
  impl_->negInf = impl_->lib->version < 91000 ? std::numeric_limits<float>::lowest()
                                              : -std::numeric_limits<float>::infinity();
}

CudnnAttention::~CudnnAttention() {
  impl_->plans.clear();
  if (impl_->handle) impl_->lib->destroy(impl_->handle);
}

namespace {

void requireShape(const char* launcher, int B, int Tlen, int NH, int D) {
  MOESCOPE_CUDA_REQUIRE(launcher, B > 0 && NH > 0 && cudnnAttentionSupports(Tlen, D));
}

// Backward workspace: the plan's, then rowsum(dO ⊙ O), then the fp32 dQ.
size_t backwardBytes(const Plan& plan, const Shape& s) {
  return roundUp256(static_cast<size_t>(plan.workspace)) +
         roundUp256(static_cast<size_t>(s.B * s.NH * s.T) * 4) +
         static_cast<size_t>(s.B * s.NH * s.T * s.D) * 4;
}

}  // namespace

size_t CudnnAttention::workspaceBytes(int B, int Tlen, int NH, int D) {
  requireShape("CudnnAttention::workspaceBytes", B, Tlen, NH, D);
  const Shape s{B, Tlen, NH, D};
  auto& [forward, backward] = impl_->plansFor(s);
  return std::max(static_cast<size_t>(forward->workspace), backwardBytes(*backward, s));
}

void CudnnAttention::forward(__nv_bfloat16* out, float* lse, const __nv_bfloat16* qkv, void* workspace, int B,
                             int Tlen, int NH, int D, cudaStream_t stream) {
  NvtxRange range("cudnnAttentionForward");
  requireShape("CudnnAttention::forward", B, Tlen, NH, D);
  MOESCOPE_CUDA_REQUIRE("CudnnAttention::forward", out && lse && qkv);
  const Shape s{B, Tlen, NH, D};
  const Plan& plan = *impl_->plansFor(s).first;
  MOESCOPE_CUDA_REQUIRE("CudnnAttention::forward", workspace || plan.workspace == 0);
  impl_->scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  auto* q = const_cast<__nv_bfloat16*>(qkv);
  const size_t C = s.C();
  impl_->execute(plan, {kQ, kK, kV, kO, kStats, kScale, kNegInf},
                 {q, q + C, q + 2 * C, out, lse, &impl_->scale, &impl_->negInf}, workspace, stream);
}

void CudnnAttention::backward(__nv_bfloat16* dqkv, const __nv_bfloat16* dout, const __nv_bfloat16* qkv,
                              const __nv_bfloat16* out, const float* lse, void* workspace, int B, int Tlen,
                              int NH, int D, cudaStream_t stream) {
  NvtxRange range("cudnnAttentionBackward");
  requireShape("CudnnAttention::backward", B, Tlen, NH, D);
  MOESCOPE_CUDA_REQUIRE("CudnnAttention::backward", dqkv && dout && qkv && out && lse && workspace);
  const Shape s{B, Tlen, NH, D};
  const Plan& plan = *impl_->plansFor(s).second;
  impl_->scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  auto* bytes = static_cast<unsigned char*>(workspace);
  void* softmaxSum = bytes + roundUp256(static_cast<size_t>(plan.workspace));
  void* dqAccum =
      static_cast<unsigned char*>(softmaxSum) + roundUp256(static_cast<size_t>(s.B * s.NH * s.T) * 4);
  // cuDNN before 9.6 expects the fp32 dQ zeroed by the caller (cudnn-frontend did it then).
  if (impl_->lib->version < 90600) {
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dqAccum, 0, static_cast<size_t>(s.B * s.NH * s.T * s.D) * 4, stream));
  }
  auto* q = const_cast<__nv_bfloat16*>(qkv);
  const size_t C = s.C();
  impl_->execute(plan,
                 {kQ, kK, kV, kO, kDO, kStats, kDQ, kDK, kDV, kScale, kNegInf, kOne, kSoftmaxSum, kDQAccum},
                 {q, q + C, q + 2 * C, const_cast<__nv_bfloat16*>(out), const_cast<__nv_bfloat16*>(dout),
                  const_cast<float*>(lse), dqkv, dqkv + C, dqkv + 2 * C, &impl_->scale, &impl_->negInf,
                  &impl_->one, softmaxSum, dqAccum},
                 bytes, stream);
}

std::string CudnnAttention::describe(int B, int Tlen, int NH, int D) {
  requireShape("CudnnAttention::describe", B, Tlen, NH, D);
  auto& [forward, backward] = impl_->plansFor(Shape{B, Tlen, NH, D});
  return "cuDNN " + std::to_string(impl_->lib->version) + " (" + impl_->lib->path + "), forward engine " +
         std::to_string(forward->engine) + ", backward engine " + std::to_string(backward->engine);
}

#else  // built without cuDNN's headers: the engine keeps its own attention kernels

bool cudnnAttentionAvailable() {
  return false;
}

std::string cudnnAttentionUnavailableReason() {
  return "built without cuDNN's headers";
}

std::string cudnnAttentionCheckDescriptors(int, int, int, int) {
  return cudnnAttentionUnavailableReason();
}

struct CudnnAttention::Impl {};

CudnnAttention::CudnnAttention() {
  throw CudaError("cuDNN attention: " + cudnnAttentionUnavailableReason());
}
CudnnAttention::~CudnnAttention() = default;
// Unreachable: the constructor throws.
size_t CudnnAttention::workspaceBytes(int, int, int, int) {
  throw CudaError("cuDNN attention: " + cudnnAttentionUnavailableReason());
}
void CudnnAttention::forward(__nv_bfloat16*, float*, const __nv_bfloat16*, void*, int, int, int, int,
                             cudaStream_t) {
  throw CudaError("cuDNN attention: " + cudnnAttentionUnavailableReason());
}
void CudnnAttention::backward(__nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                              const __nv_bfloat16*, const float*, void*, int, int, int, int, cudaStream_t) {
  throw CudaError("cuDNN attention: " + cudnnAttentionUnavailableReason());
}
std::string CudnnAttention::describe(int, int, int, int) {
  return cudnnAttentionUnavailableReason();
}

#endif

}  // namespace moescope::engine::cuda
