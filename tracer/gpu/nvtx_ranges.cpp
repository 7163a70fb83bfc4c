#include "tracer/gpu/nvtx_ranges.h"

#include <nvtx3/nvToolsExt.h>

#include <mutex>
#include <string>
#include <unordered_map>

namespace moescope::tracer::gpu {
namespace {

struct Domain {
  nvtxDomainHandle_t handle = nullptr;
  Domain() {
    handle = nvtxDomainCreateA("moescope");
    for (int c = 0; c < storage::kCategoryCount; ++c) {
      std::string name(storage::categoryName(static_cast<storage::Category>(c)));
      nvtxDomainNameCategoryA(handle, static_cast<uint32_t>(c + 1), name.c_str());
    }
  }
};

Domain& domain() {
  static Domain d;
  return d;
}

// Registered strings are cheaper for NVTX tools than copies of the text at every push.
nvtxStringHandle_t registered(std::string_view name) {
  thread_local std::unordered_map<const char*, nvtxStringHandle_t> cache;
  auto it = cache.find(name.data());
  if (it != cache.end()) return it->second;
  std::string text(name);
  nvtxStringHandle_t handle = nvtxDomainRegisterStringA(domain().handle, text.c_str());
  cache.emplace(name.data(), handle);
  return handle;
}

}  // namespace

void nvtxPush(std::string_view name, storage::Category category) {
  nvtxEventAttributes_t attributes{};
  attributes.version = NVTX_VERSION;
  attributes.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  attributes.category = static_cast<uint32_t>(category) + 1;
  attributes.colorType = NVTX_COLOR_ARGB;
  attributes.color = storage::categoryColour(category);
  attributes.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
  attributes.message.registered = registered(name);
  nvtxDomainRangePushEx(domain().handle, &attributes);
}

void nvtxPop() {
  nvtxDomainRangePop(domain().handle);
}

}  // namespace moescope::tracer::gpu
