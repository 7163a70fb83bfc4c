#include "tracer/record_env.h"

#include <charconv>
#include <stdexcept>
#include <string_view>

namespace moescope::tracer {
namespace {

constexpr const char* kDir = "MOESCOPE_RECORD_DIR";
constexpr const char* kRunId = "MOESCOPE_RECORD_RUN_ID";
constexpr const char* kRules = "MOESCOPE_RECORD_RULES";
constexpr const char* kLayout = "MOESCOPE_RECORD_LAYOUT";
constexpr const char* kSteps = "MOESCOPE_RECORD_STEPS";
constexpr const char* kNvtx = "MOESCOPE_RECORD_NVTX";
constexpr const char* kKernels = "MOESCOPE_RECORD_KERNELS";
constexpr const char* kCommand = "MOESCOPE_RECORD_COMMAND";
constexpr const char* kLaunches = "MOESCOPE_RECORD_LAUNCHES";

std::optional<int32_t> number(std::string_view text) {
  int32_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t from = 0;
  while (from <= text.size()) {
    const size_t at = text.find(separator, from);
    out.emplace_back(text.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
    if (at == std::string_view::npos) break;
    from = at + 1;
  }
  return out;
}

[[noreturn]] void bad(const char* variable, std::string_view value, std::string_view why) {
  throw std::invalid_argument(std::string(variable) + "='" + std::string(value) + "': " + std::string(why));
}

bool flag(const char* variable, const char* value) {
  if (!value || std::string_view(value).empty() || std::string_view(value) == "1") return true;
  if (std::string_view(value) == "0") return false;
  bad(variable, value, "expected 1 or 0");
}

}  // namespace

const char* launchCallRecordingName(LaunchCallRecording r) {
  switch (r) {
    case LaunchCallRecording::Callbacks:
      return "callbacks";
    case LaunchCallRecording::Off:
      return "off";
    case LaunchCallRecording::Activity:
      break;
  }
  return "activity";
}

std::optional<LaunchCallRecording> launchCallRecordingFromName(std::string_view name) {
  for (auto r : {LaunchCallRecording::Activity, LaunchCallRecording::Callbacks, LaunchCallRecording::Off})
    if (name == launchCallRecordingName(r)) return r;
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> recordEnvironment(const RecordSettings& s) {
  std::string rules;
  for (const std::string& r : s.rules) rules += (rules.empty() ? "" : "\n") + r;
  std::string steps;
  if (s.steps) steps = std::to_string(s.steps->first) + ":" + std::to_string(s.steps->second);
  return {{kDir, s.dir},
          {kRunId, s.run_id},
          {kRules, rules},
          {kLayout, std::to_string(s.pp) + "," + std::to_string(s.tp) + "," + std::to_string(s.dp) + "," +
                        s.order + "," + s.schedule},
          {kSteps, steps},
          {kNvtx, s.nvtx ? "1" : "0"},
          {kKernels, s.kernels ? "1" : "0"},
          {kLaunches, launchCallRecordingName(s.launchCalls)},
          {kCommand, s.command}};
}

std::optional<RecordSettings> readRecordSettings(const GetEnv& getenv) {
  const char* dir = getenv(kDir);
  if (!dir || !*dir) return std::nullopt;
  RecordSettings s;
  s.dir = dir;
  if (const char* v = getenv(kRunId)) s.run_id = v;
  if (const char* v = getenv(kRules); v && *v) s.rules = split(v, '\n');
  if (const char* v = getenv(kLayout); v && *v) {
    const std::vector<std::string> parts = split(v, ',');
    if (parts.size() != 5) bad(kLayout, v, "expected pp,tp,dp,order,schedule");
    const auto pp = number(parts[0]), tp = number(parts[1]), dp = number(parts[2]);
    if (!pp || !tp || !dp || *pp < 1 || *tp < 1 || *dp < 1)
      bad(kLayout, v, "pp, tp and dp must be 1 or more");
    s.pp = *pp;
    s.tp = *tp;
    s.dp = *dp;
    s.order = parts[3];
    s.schedule = parts[4];
  }
  if (const char* v = getenv(kSteps); v && *v) {
    const std::string_view text(v);
    const size_t colon = text.find(':');
    const auto a = colon == std::string_view::npos ? std::nullopt : number(text.substr(0, colon));
    const auto b = colon == std::string_view::npos ? std::nullopt : number(text.substr(colon + 1));
    if (!a || !b || *a > *b) bad(kSteps, v, "expected A:B with 0 <= A <= B");
    s.steps = std::pair{*a, *b};
  }
  s.nvtx = flag(kNvtx, getenv(kNvtx));
  s.kernels = flag(kKernels, getenv(kKernels));
  if (const char* v = getenv(kLaunches); v && *v) {
    const auto launches = launchCallRecordingFromName(v);
    if (!launches) bad(kLaunches, v, "expected activity, callbacks or off");
    s.launchCalls = *launches;
  }
  if (const char* v = getenv(kCommand)) s.command = v;
  return s;
}

LaunchRank launchRank(const GetEnv& getenv) {
  constexpr std::pair<const char*, const char*> kLaunchers[] = {
      {"RANK", "WORLD_SIZE"},
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
      {"PMI_RANK", "PMI_SIZE"},
      {"SLURM_PROCID", "SLURM_NTASKS"},
  };
  LaunchRank out;
  for (const auto& [rankVar, worldVar] : kLaunchers) {
    const char* r = getenv(rankVar);
    const auto rank = r ? number(r) : std::nullopt;
    if (!rank) continue;
    out.rank = rank;
    out.source = rankVar;
    if (const char* w = getenv(worldVar)) {
      if (const auto world = number(w); world && *world > *rank) out.world = world;
    }
    break;
  }
  return out;
}

}  // namespace moescope::tracer
