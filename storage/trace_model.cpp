#include "storage/trace_model.h"

#include <array>

namespace moescope::storage {
namespace {

constexpr std::array<std::string_view, kCategoryCount> kCategoryNames = {
    "compute.embed",
    "compute.attention",
    "compute.ffn",
    "compute.router",
    "compute.expert",
    "compute.loss",
    "moe.slice",
    "moe.permute",
    "comm.tp_allreduce",
    "comm.ep_alltoall",
    "comm.pp_sendrecv",
    "comm.dp_allreduce",
    "optimizer",
    "wait",
    "user",
};
// Tableau-10 based, chosen so compute (blues, greens), MoE work (oranges), communication (reds,
// browns) and waiting (light grey) read apart at a glance.
constexpr std::array<uint32_t, kCategoryCount> kCategoryColours = {
    0xFFA0CBE8,  // compute.embed
    0xFF4E79A7,  // compute.attention
    0xFF76B7B2,  // compute.ffn
    0xFFEDC948,  // compute.router
    0xFF59A14F,  // compute.expert
    0xFFB07AA1,  // compute.loss
    0xFFF28E2B,  // moe.slice
    0xFFFF9DA7,  // moe.permute
    0xFFE15759,  // comm.tp_allreduce
    0xFF9C755F,  // comm.ep_alltoall
    0xFF7F7F7F,  // comm.pp_sendrecv
    0xFFD37295,  // comm.dp_allreduce
    0xFF8CD17D,  // optimizer
    0xFFDDDDDD,  // wait
    0xFFBAB0AC,  // user: Tableau's warm grey, apart from wait's light grey
};
constexpr std::array<std::string_view, kPhaseCount> kPhaseNames = {"", "forward", "backward", "optimizer",
                                                                   "backward_weight"};
constexpr std::array<std::string_view, kRunStatusCount> kStatusNames = {"running", "complete", "failed",
                                                                        "cancelled"};
constexpr std::array<std::string_view, kTrackKindCount> kTrackKindNames = {"host", "gpu_stream", "counter"};
constexpr std::array<std::string_view, kScheduleCount> kScheduleNames = {"gpipe", "1f1b", "interleaved",
                                                                         "zb-h1"};
constexpr std::array<std::string_view, kGpuActivityKindCount> kGpuActivityKindNames = {"kernel", "memcpy",
                                                                                       "memset"};

template <typename Enum, size_t N>
std::optional<Enum> lookup(const std::array<std::string_view, N>& names, std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

template <size_t N>
std::string_view nameAt(const std::array<std::string_view, N>& names, size_t i) {
  return i < N ? names[i] : std::string_view{"?"};
}

}  // namespace

std::string_view categoryName(Category c) {
  return nameAt(kCategoryNames, static_cast<size_t>(c));
}
std::optional<Category> categoryFromName(std::string_view name) {
  return lookup<Category>(kCategoryNames, name);
}
bool isCommunication(Category c) {
  return c == Category::CommTpAllreduce || c == Category::CommEpAlltoall || c == Category::CommPpSendrecv ||
         c == Category::CommDpAllreduce;
}
bool isComputation(Category c) {
  return !isCommunication(c) && c != Category::Wait && c != Category::User;
}
uint32_t categoryColour(Category c) {
  auto i = static_cast<size_t>(c);
  return i < kCategoryColours.size() ? kCategoryColours[i] : 0xFF000000;
}

std::string_view phaseName(Phase p) {
  return nameAt(kPhaseNames, static_cast<size_t>(p));
}
std::optional<Phase> phaseFromName(std::string_view name) {
  return lookup<Phase>(kPhaseNames, name);
}

std::string_view runStatusName(RunStatus s) {
  return nameAt(kStatusNames, static_cast<size_t>(s));
}
std::optional<RunStatus> runStatusFromName(std::string_view name) {
  return lookup<RunStatus>(kStatusNames, name);
}

std::string_view trackKindName(TrackKind k) {
  return nameAt(kTrackKindNames, static_cast<size_t>(k));
}

std::string_view scheduleName(Schedule s) {
  return nameAt(kScheduleNames, static_cast<size_t>(s));
}

std::string_view gpuActivityKindName(GpuActivityKind k) {
  return nameAt(kGpuActivityKindNames, static_cast<size_t>(k));
}
std::optional<Schedule> scheduleFromName(std::string_view name) {
  return lookup<Schedule>(kScheduleNames, name);
}

}  // namespace moescope::storage
