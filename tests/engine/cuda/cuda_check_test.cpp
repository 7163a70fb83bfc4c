#include "engine/cuda/cuda_check.h"

#include <gtest/gtest.h>

#include <string>

namespace moescope::engine::cuda {
namespace {

// These run without a device: error names and messages come from the runtime library alone.
TEST(CudaCheck, FailingCallThrowsWithCallFileAndLine) {
  try {
    MOESCOPE_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "no exception";
  } catch (const CudaError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cudaErrorInvalidValue"), std::string::npos) << what;
    EXPECT_NE(what.find("cuda_check_test.cpp:"), std::string::npos) << what;
  }
}

TEST(CudaCheck, FailingCublasCallThrows) {
  EXPECT_THROW(MOESCOPE_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE), CudaError);
  EXPECT_NO_THROW(MOESCOPE_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
}

TEST(CudaCheck, RequireNamesTheLauncherAndTheCondition) {
  const int K = 9;
  try {
    MOESCOPE_CUDA_REQUIRE("routerSoftmaxTopK", K <= 8);
    FAIL() << "no exception";
  } catch (const CudaError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("routerSoftmaxTopK"), std::string::npos) << what;
    EXPECT_NE(what.find("K <= 8"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace moescope::engine::cuda
