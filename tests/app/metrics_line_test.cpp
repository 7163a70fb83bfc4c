#include "app/metrics_line.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace moescope::app {
namespace {

engine::StepReport report(int64_t peak) {
  engine::StepReport r;
  r.step = 3;
  r.losses = {.loss = 5.5, .ce = 5.25, .aux = 0.25, .grad_norm = 1.5};
  r.tokens = 512;
  r.step_ms = 20;
  r.tokens_per_s = 25600;
  r.peak_memory_bytes = peak;
  return r;
}

// One JSON object per line, every field under its name; the device memory peak where the backend
// counted it (a CUDA run), absent where it did not (the CPU: 0).
TEST(MetricsLine, HoldsTheStepAndThePeakWhereCounted) {
  const std::string counted = metricsLine(report(int64_t{19} << 30));
  ASSERT_EQ(counted.back(), '\n');
  EXPECT_EQ(counted.find('\n'), counted.size() - 1);
  const auto j = nlohmann::json::parse(counted);
  EXPECT_EQ(j["step"], 3);
  EXPECT_EQ(j["loss"], 5.5);
  EXPECT_EQ(j["ce_loss"], 5.25);
  EXPECT_EQ(j["aux_loss"], 0.25);
  EXPECT_EQ(j["tokens"], 512);
  EXPECT_EQ(j["step_ms"], 20.0);
  EXPECT_EQ(j["tokens_per_s"], 25600.0);
  EXPECT_EQ(j["grad_norm"], 1.5);
  EXPECT_EQ(j["peak_memory_bytes"], int64_t{19} << 30);

  const auto cpu = nlohmann::json::parse(metricsLine(report(0)));
  EXPECT_FALSE(cpu.contains("peak_memory_bytes"));
  EXPECT_EQ(cpu.size(), j.size() - 1);
}

// A diverged step's NaN loss is written as null: the line stays valid JSON.
TEST(MetricsLine, ANanLossIsNull) {
  engine::StepReport r = report(0);
  r.losses.loss = std::nan("");
  EXPECT_TRUE(nlohmann::json::parse(metricsLine(r))["loss"].is_null());
}

}  // namespace
}  // namespace moescope::app
