#include "tracer/gpu_trace_options.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "tests/common/fake_env.h"

namespace moescope::tracer::gpu {
namespace {

GpuTraceSettings read(const moescope::testing::FakeEnv& env) {
  return readGpuTraceSettings(moescope::testing::getenvOf(env));
}

std::string refusal(const moescope::testing::FakeEnv& env) {
  return moescope::testing::refusalOf([&] { read(env); });
}

TEST(GpuTraceOptions, UnsetOrEmptyGivesTheDefaults) {
  EXPECT_EQ(read({}), GpuTraceSettings{});
  EXPECT_EQ(read({{"MOESCOPE_GPU_FLUSH", ""}, {"MOESCOPE_GPU_TRACE", ""}}), GpuTraceSettings{});
  const GpuTraceSettings d;
  EXPECT_TRUE(d.enabled);
  EXPECT_TRUE(d.nvtx);
  EXPECT_EQ(d.correlation, Correlation::Callbacks);
  EXPECT_EQ(d.flush, Flush::WhenFull);
}

// MOESCOPE_GPU_FLUSH=drain was accepted and ran as full: drain must select Flush::OnDrain.
TEST(GpuTraceOptions, EveryFlushValueSelectsItsFlush) {
  EXPECT_EQ(read({{"MOESCOPE_GPU_FLUSH", "drain"}}).flush, Flush::OnDrain);
  EXPECT_EQ(read({{"MOESCOPE_GPU_FLUSH", "worker"}}).flush, Flush::Worker);
  EXPECT_EQ(read({{"MOESCOPE_GPU_FLUSH", "full"}}).flush, Flush::WhenFull);
}

TEST(GpuTraceOptions, EachVariableSetsItsOwnField) {
  GpuTraceSettings expected;
  expected.correlation = Correlation::ActivityRecords;
  EXPECT_EQ(read({{"MOESCOPE_GPU_CORRELATION", "activity"}}), expected);
  expected = {};
  expected.enabled = false;
  EXPECT_EQ(read({{"MOESCOPE_GPU_TRACE", "0"}}), expected);
  expected = {};
  expected.nvtx = false;
  EXPECT_EQ(read({{"MOESCOPE_GPU_NVTX", "0"}}), expected);
  EXPECT_EQ(read({{"MOESCOPE_GPU_TRACE", "1"},
                  {"MOESCOPE_GPU_NVTX", "1"},
                  {"MOESCOPE_GPU_CORRELATION", "callbacks"}}),
            GpuTraceSettings{});
}

// A value's name in the table is the name the run's meta records for what it selected (cupti.flush,
// cupti.correlation), so the two cannot disagree as drain and full once did.
TEST(GpuTraceOptions, TheTableNamesWhatEachValueSelects) {
  int checked = 0;
  for (const GpuTraceVariable& variable : gpuTraceVariables()) {
    ASSERT_FALSE(variable.values.empty()) << variable.name;
    GpuTraceSettings defaults;
    variable.values.front().apply(defaults);
    EXPECT_EQ(defaults, GpuTraceSettings{}) << variable.name << ": the first value is the default";
    for (const GpuTraceValue& v : variable.values) {
      const GpuTraceSettings s = read({{std::string(variable.name), std::string(v.value)}});
      if (variable.name == "MOESCOPE_GPU_FLUSH") {
        EXPECT_EQ(flushName(s.flush), v.value);
        ++checked;
      }
      if (variable.name == "MOESCOPE_GPU_CORRELATION") {
        EXPECT_EQ(correlationName(s.correlation), v.value);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 5);
}

TEST(GpuTraceOptions, AnotherValueIsRefusedNamingTheVariableAndWhatItTakes) {
  EXPECT_EQ(refusal({{"MOESCOPE_GPU_FLUSH", "drian"}}),
            "MOESCOPE_GPU_FLUSH must be full, drain or worker, got 'drian'");
  EXPECT_EQ(refusal({{"MOESCOPE_GPU_CORRELATION", "both"}}),
            "MOESCOPE_GPU_CORRELATION must be callbacks or activity, got 'both'");
  // Before, anything but "0" meant on.
  EXPECT_EQ(refusal({{"MOESCOPE_GPU_TRACE", "off"}}), "MOESCOPE_GPU_TRACE must be 1 or 0, got 'off'");
  EXPECT_EQ(refusal({{"MOESCOPE_GPU_NVTX", "no"}}), "MOESCOPE_GPU_NVTX must be 1 or 0, got 'no'");
}

TEST(GpuTraceOptions, HelpListsEveryVariableAndValue) {
  const std::string help = gpuTraceVariablesHelp();
  for (const GpuTraceVariable& variable : gpuTraceVariables()) {
    for (const GpuTraceValue& v : variable.values)
      EXPECT_NE(help.find(std::string(variable.name) + "=" + std::string(v.value) + " "), std::string::npos)
          << help;
  }
}

}  // namespace
}  // namespace moescope::tracer::gpu
