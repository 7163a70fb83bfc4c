// Helpers for the CUDA kernel tests: skipping without a device, device buffers, bf16 conversion on the
// host, NaN poisoning of outputs and the precision-dependent comparison with the CPU reference.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/cuda/cuda_check.h"

// Skips the current test, with the reason, where no CUDA device can be used.
#define MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE()                                                           \
  do {                                                                                                \
    int moescope_device_count_ = 0;                                                                   \
    const cudaError_t moescope_device_status_ = cudaGetDeviceCount(&moescope_device_count_);          \
    if (moescope_device_status_ != cudaSuccess) {                                                     \
      GTEST_SKIP() << "no CUDA device: " << cudaGetErrorString(moescope_device_status_);              \
    }                                                                                                 \
    if (moescope_device_count_ == 0) GTEST_SKIP() << "no CUDA device: cudaGetDeviceCount returned 0"; \
  } while (0)

namespace moescope::engine::cuda::test {

using Bf16 = __nv_bfloat16;

inline uint16_t floatToBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16BitsToFloat(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// x as the storage type T would hold it (identity for float).
template <typename T>
std::vector<float> roundTo(std::vector<float> x) {
  if constexpr (std::is_same_v<T, Bf16>) {
    for (float& v : x) v = bf16BitsToFloat(floatToBf16Bits(v));
  }
  return x;
}

inline std::vector<float> randomFloats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

inline std::vector<int32_t> randomIds(size_t n, int32_t limit, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> dist(0, limit - 1);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = dist(gen);
  return v;
}

// A device array of n elements of T, freed on destruction.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_ > 0) MOESCOPE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }

  // Every byte 0xFF: NaN in float and in bf16, -1 in integers.
  void poison() {
    if (n_ > 0) MOESCOPE_CUDA_CHECK(cudaMemset(ptr_, 0xFF, n_ * sizeof(T)));
  }

  void upload(const std::vector<T>& host) {
    EXPECT_EQ(host.size(), n_);
    if (n_ > 0) MOESCOPE_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }

  std::vector<T> download() const {
    std::vector<T> host(n_);
    MOESCOPE_CUDA_CHECK(cudaDeviceSynchronize());  // surfaces errors of the kernels before
    if (n_ > 0) MOESCOPE_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// Uploads float values as T (rounded to bf16 where T is bf16).
template <typename T>
void uploadAs(DeviceBuffer<T>& dst, const std::vector<float>& values) {
  ASSERT_EQ(values.size(), dst.size());
  if constexpr (std::is_same_v<T, float>) {
    dst.upload(values);
  } else {
    std::vector<uint16_t> bits(values.size());
    for (size_t i = 0; i < values.size(); ++i) bits[i] = floatToBf16Bits(values[i]);
    if (!bits.empty()) {
      MOESCOPE_CUDA_CHECK(cudaMemcpy(dst.get(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
    }
  }
}

template <typename T>
std::vector<float> downloadAsFloat(const DeviceBuffer<T>& src) {
  if constexpr (std::is_same_v<T, float>) {
    return src.download();
  } else {
    std::vector<uint16_t> bits(src.size());
    MOESCOPE_CUDA_CHECK(cudaDeviceSynchronize());
    if (!bits.empty()) {
      MOESCOPE_CUDA_CHECK(cudaMemcpy(bits.data(), src.get(), bits.size() * 2, cudaMemcpyDeviceToHost));
    }
    std::vector<float> out(bits.size());
    for (size_t i = 0; i < bits.size(); ++i) out[i] = bf16BitsToFloat(bits[i]);
    return out;
  }
}

// Tolerance by precision: |got − ref| <= tol + |ref|·eps.
struct Tolerance {
  double tol;
  double eps;
};

template <typename T>
Tolerance toleranceFor(Tolerance fp32, Tolerance bf16) {
  return std::is_same_v<T, float> ? fp32 : bf16;
}

template <typename Ref>
void expectClose(const std::vector<float>& got, const std::vector<Ref>& ref, Tolerance t,
                 const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double r = static_cast<double>(ref[i]);
    const double g = got[i];
    const bool ok = std::isfinite(g) && std::abs(g - r) <= t.tol + std::abs(r) * t.eps;
    if (!ok && reported < 10) {
      ADD_FAILURE() << what << "[" << i << "]: got " << g << ", reference " << r;
      ++reported;
    }
  }
}

// ‖got − ref‖ / ‖ref‖ over the whole array; infinity where got holds a non-finite value (an unwritten,
// poisoned element). Beside expectClose's element bounds it shows how close a result is as a whole.
template <typename Ref>
double relativeError(const std::vector<float>& got, const std::vector<Ref>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double d = static_cast<double>(got[i]) - static_cast<double>(ref[i]);
    diff += d * d;
    norm += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

template <typename T>
const char* precisionName() {
  return std::is_same_v<T, float> ? "fp32" : "bf16";
}

// Typed tests run each kernel test for both storage types.
using StorageTypes = ::testing::Types<float, Bf16>;

class StorageTypeNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return precisionName<T>();
  }
};

}  // namespace moescope::engine::cuda::test
