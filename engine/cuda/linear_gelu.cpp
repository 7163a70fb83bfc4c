#include "engine/cuda/linear_gelu.h"

#include <type_traits>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/elementwise.h"
#include "engine/cuda/gelu.h"
#include "engine/cuda/linear.h"
#include "engine/cuda/matmul.h"

namespace moescope::engine::cuda {

template <typename T>
bool linearGeluForward(CublasLt& lt, T* h, T* pre, const T* x, const T* w, const T* b, int n, int in, int out,
                       cudaStream_t stream) {
  NvtxRange range("linearGeluForward");
  MOESCOPE_CUDA_REQUIRE("linearGeluForward", n >= 0 && in > 0 && out > 0);
  if (n == 0) return false;
  MOESCOPE_CUDA_REQUIRE("linearGeluForward", h && pre && x && w && h != pre);
  // h col-major [out,n] = gelu(Wᵀ x + b), the pre-activation into aux (same layout; its leading dimension
  // must be a multiple of 8).
  if (out % 8 == 0) {
    MatmulEpilogue epilogue;
    epilogue.mode = b ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    epilogue.bias = b;
    epilogue.biasType = dataTypeOf<T>();
    epilogue.aux = pre;
    epilogue.auxLd = out;
    if (matmul(lt, dataTypeOf<T>(), dataTypeOf<T>(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w, in, x, in, h,
               out, 0.0f, epilogue, stream)) {
      return true;
    }
  }
  linearForward(lt, pre, x, w, b, n, in, out, stream);
  geluForward(h, pre, static_cast<size_t>(n) * out, stream);
  return false;
}

template <typename T>
bool linearBackwardDgelu(CublasLt& lt, T* dpre, float* dbPre, const T* dy, const T* w, const T* pre, int n,
                         int in, int out, cudaStream_t stream) {
  NvtxRange range("linearBackwardDgelu");
  MOESCOPE_CUDA_REQUIRE("linearBackwardDgelu", n >= 0 && in > 0 && out > 0);
  if (n == 0) return false;
  MOESCOPE_CUDA_REQUIRE("linearBackwardDgelu", dpre && dy && w && pre);
  // dpre col-major [in,n] = gelu'(pre) ⊙ (W(col-major [in,out]) · dy(col-major [out,n])); the bias gradient
  // is the sum over its n columns. cublasLt.h (CUBLASLT_MATMUL_DESC_BIAS_POINTER): "Bias gradient vector
  // elements are the same type as the output elements (Ctype)": bf16 for a bf16 product, rounded once and
  // then added into the fp32 gradient. (Asking fp32 there is what failed with INVALID_VALUE on an H200.)
  if (in % 8 == 0) {
    MatmulEpilogue epilogue;
    epilogue.aux = pre;
    epilogue.auxLd = in;
    epilogue.mode = dbPre ? CUBLASLT_EPILOGUE_DGELU_BGRAD : CUBLASLT_EPILOGUE_DGELU;
    if (dbPre) {
      epilogue.bias = lt.scratch(static_cast<size_t>(in) * sizeof(T));
      epilogue.biasType = dataTypeOf<T>();
    }
    if (matmul(lt, dataTypeOf<T>(), dataTypeOf<T>(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, in, dy, out,
               dpre, in, 0.0f, epilogue, stream)) {
      const auto* part = static_cast<const T*>(epilogue.bias);
      if constexpr (std::is_same_v<T, float>) {
        if (dbPre) addInPlace(dbPre, part, static_cast<size_t>(in), stream);
      } else {
        if (dbPre) accumulateToFloat(dbPre, part, static_cast<size_t>(in), stream);
      }
      return true;
    }
  }
  matmul(lt, dataTypeOf<T>(), dataTypeOf<T>(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, in, dy, out, dpre, in,
         0.0f, MatmulEpilogue{}, stream);
  geluBackwardInPlace(dpre, pre, static_cast<size_t>(n) * in, stream);
  if (dbPre) biasGradient(dbPre, dpre, n, in, stream);
  return false;
}

template bool linearGeluForward<float>(CublasLt&, float*, float*, const float*, const float*, const float*,
                                       int, int, int, cudaStream_t);
template bool linearGeluForward<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, __nv_bfloat16*,
                                               const __nv_bfloat16*, const __nv_bfloat16*,
                                               const __nv_bfloat16*, int, int, int, cudaStream_t);
template bool linearBackwardDgelu<float>(CublasLt&, float*, float*, const float*, const float*, const float*,
                                         int, int, int, cudaStream_t);
template bool linearBackwardDgelu<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, float*, const __nv_bfloat16*,
                                                 const __nv_bfloat16*, const __nv_bfloat16*, int, int, int,
                                                 cudaStream_t);

}  // namespace moescope::engine::cuda
