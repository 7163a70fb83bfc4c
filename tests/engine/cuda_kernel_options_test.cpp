#include "engine/cuda_kernel_options.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "tests/common/fake_env.h"

namespace moescope::engine {
namespace {

CudaKernelOptions read(const moescope::testing::FakeEnv& env) {
  return readCudaKernelOptions(moescope::testing::getenvOf(env));
}

std::string refusal(const moescope::testing::FakeEnv& env) {
  return moescope::testing::refusalOf([&] { read(env); });
}

// Every fused path on, except the grouped experts, which wait for a measurement that shows them faster
// than a product per expert, and BGRADB, which the bias-gradient kernel measured faster than
// (docs/bench-gpu-perf.md).
TEST(CudaKernelOptions, UnsetOrEmptyGivesTheDefaults) {
  const CudaKernelOptions d = read({});
  EXPECT_EQ(d, CudaKernelOptions{});
  EXPECT_EQ(read({{"MOESCOPE_CUDA_ATTENTION", ""}}), d);
  EXPECT_EQ(d.attention, AttentionKernel::Cudnn);
  EXPECT_TRUE(d.gelu_epilogue && d.residual_norm && d.adamw_one_launch);
  EXPECT_FALSE(d.bias_epilogue);
  EXPECT_FALSE(d.grouped_experts);
  EXPECT_EQ(d.dgelu_epilogue, DgeluEpilogue::Alone);
}

// Each value of each variable changes its own field only, and a value's name is what
// cudaKernelOptionsText writes for what it selected, so logs and run files name the switch that gives it.
TEST(CudaKernelOptions, EachValueSetsItsOwnFieldAndIsWrittenBack) {
  int values = 0;
  std::set<std::string> changed;
  for (const auto& variable : cudaKernelVariables()) {
    ASSERT_FALSE(variable.values.empty()) << variable.name;
    CudaKernelOptions first;
    variable.values.front().apply(first);
    EXPECT_EQ(first, CudaKernelOptions{}) << variable.name << ": the first value is the default";
    for (const auto& v : variable.values) {
      const std::string name(variable.name), value(v.value);
      const CudaKernelOptions o = read({{name, value}});
      EXPECT_NE(cudaKernelOptionsText(o).find(name + "=" + value), std::string::npos)
          << cudaKernelOptionsText(o);
      if (!(o == CudaKernelOptions{})) changed.insert(name);
      ++values;
    }
  }
  EXPECT_EQ(values, 18);
  EXPECT_EQ(changed.size(), 8u) << "a variable none of whose values changes anything";
  CudaKernelOptions all;
  all.attention = AttentionKernel::Cublas;
  all.gelu_epilogue = all.residual_norm = all.adamw_one_launch = false;
  all.grouped_experts = all.bias_epilogue = true;
  all.dgelu_epilogue = DgeluEpilogue::WithBias;
  all.keep_gelu_output = false;
  EXPECT_EQ(read({{"MOESCOPE_CUDA_ATTENTION", "cublas"},
                  {"MOESCOPE_CUDA_GELU_EPILOGUE", "0"},
                  {"MOESCOPE_CUDA_DGELU_EPILOGUE", "1"},
                  {"MOESCOPE_CUDA_BIAS_EPILOGUE", "1"},
                  {"MOESCOPE_CUDA_RESIDUAL_NORM", "0"},
                  {"MOESCOPE_CUDA_ADAMW", "runs"},
                  {"MOESCOPE_CUDA_EXPERTS", "grouped"},
                  {"MOESCOPE_CUDA_GELU_OUTPUT", "recompute"}}),
            all);
  EXPECT_EQ(cudaKernelOptionsText(all),
            "MOESCOPE_CUDA_ATTENTION=cublas MOESCOPE_CUDA_GELU_EPILOGUE=0 MOESCOPE_CUDA_DGELU_EPILOGUE=1 "
            "MOESCOPE_CUDA_BIAS_EPILOGUE=1 "
            "MOESCOPE_CUDA_RESIDUAL_NORM=0 MOESCOPE_CUDA_ADAMW=runs MOESCOPE_CUDA_EXPERTS=grouped "
            "MOESCOPE_CUDA_GELU_OUTPUT=recompute");
}

TEST(CudaKernelOptions, UnfusedSwitchesEveryFusedPathOff) {
  const CudaKernelOptions u = unfusedKernelOptions();
  EXPECT_EQ(u.attention, AttentionKernel::Flash);
  EXPECT_FALSE(u.gelu_epilogue || u.bias_epilogue || u.residual_norm || u.adamw_one_launch ||
               u.grouped_experts);
  EXPECT_EQ(u.dgelu_epilogue, DgeluEpilogue::Off);
  EXPECT_EQ(read({{"MOESCOPE_CUDA_ATTENTION", "flash"},
                  {"MOESCOPE_CUDA_GELU_EPILOGUE", "0"},
                  {"MOESCOPE_CUDA_DGELU_EPILOGUE", "0"},
                  {"MOESCOPE_CUDA_RESIDUAL_NORM", "0"},
                  {"MOESCOPE_CUDA_ADAMW", "runs"}}),
            u);
}

TEST(CudaKernelOptions, AnotherValueIsRefusedNamingTheVariableAndWhatItTakes) {
  EXPECT_EQ(refusal({{"MOESCOPE_CUDA_ATTENTION", "cuDNN"}}),
            "MOESCOPE_CUDA_ATTENTION must be cudnn, flash or cublas, got 'cuDNN'");
  EXPECT_EQ(refusal({{"MOESCOPE_CUDA_GELU_EPILOGUE", "on"}}),
            "MOESCOPE_CUDA_GELU_EPILOGUE must be 1 or 0, got 'on'");
  EXPECT_EQ(refusal({{"MOESCOPE_CUDA_EXPERTS", "group"}}),
            "MOESCOPE_CUDA_EXPERTS must be loop or grouped, got 'group'");
  EXPECT_EQ(refusal({{"MOESCOPE_CUDA_ADAMW", "1"}}), "MOESCOPE_CUDA_ADAMW must be one or runs, got '1'");
}

TEST(CudaKernelOptions, HelpListsEveryVariableAndValueAndTheDefaults) {
  const std::string help = cudaKernelOptionsHelp();
  for (const auto& variable : cudaKernelVariables()) {
    for (const auto& v : variable.values)
      EXPECT_NE(help.find(std::string(variable.name) + "=" + std::string(v.value) + " "), std::string::npos)
          << help;
  }
  EXPECT_NE(help.find("MOESCOPE_CUDA_EXPERTS=loop"), std::string::npos);
  EXPECT_LT(help.find("(default)"), help.find("MOESCOPE_CUDA_ATTENTION=flash"));
}

}  // namespace
}  // namespace moescope::engine
