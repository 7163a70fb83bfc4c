// The NVTX side of the injection library. NVTX (header-only v3, and the older libnvToolsExt) loads the
// library named in NVTX_INJECTION64_PATH at a program's first NVTX call and calls its
// InitializeInjectionNvtx2 with a function that hands out NVTX's tables of function pointers; the
// library writes its own functions into the slots it implements (the slots it leaves become no-ops).
// Every copy of NVTX in the process does this on its own (PyTorch's, NCCL's, the program's), so the
// function may run several times, once per copy. This is how Nsight Systems sees NVTX: CUPTI's NVTX
// path only sees what reaches libcupti's own injection, which PyTorch's ranges did not on the server
// (../shared/GPU-SERVER.md).
#include <nvtx3/nvToolsExt.h>

#include <string>

#include "tracer/inject/session.h"

namespace moescope::tracer::inject {
namespace {

// What nvtxDomainCreate and nvtxDomainRegisterString hand out: NVTX's handles are opaque pointers, so
// these stand behind them. Never freed: handles may be used until the process ends.
struct Domain {
  uint32_t id = 0;
};
struct Registered {
  uint32_t name = 0;
};

uint32_t domainOf(nvtxDomainHandle_t handle) {
  return handle ? reinterpret_cast<const Domain*>(handle)->id : 0;
}

std::string narrow(const wchar_t* text) {
  std::string out;
  for (; text && *text; ++text) out += *text < 0x80 ? static_cast<char>(*text) : '?';
  return out;
}

uint32_t nameOf(ProcessRecorder& r, const nvtxEventAttributes_t* a) {
  if (!a) return r.name("");
  switch (a->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
      return r.name(a->message.ascii ? a->message.ascii : "");
    case NVTX_MESSAGE_TYPE_UNICODE:
      return r.name(narrow(a->message.unicode));
    case NVTX_MESSAGE_TYPE_REGISTERED:
      return a->message.registered ? reinterpret_cast<const Registered*>(a->message.registered)->name
                                   : r.name("");
    default:
      return r.name("");
  }
}

ProcessRecorder* recorder() {
  Session* s = session();
  return s ? &s->recorder : nullptr;
}

// --- core -------------------------------------------------------------------------------------------
void NVTX_API markEx(const nvtxEventAttributes_t* a) {
  if (auto* r = recorder()) r->mark(0, nameOf(*r, a));
}
void NVTX_API markA(const char* m) {
  if (auto* r = recorder()) r->mark(0, r->name(m ? m : ""));
}
void NVTX_API markW(const wchar_t* m) {
  if (auto* r = recorder()) r->mark(0, r->name(narrow(m)));
}
nvtxRangeId_t NVTX_API rangeStartEx(const nvtxEventAttributes_t* a) {
  auto* r = recorder();
  return r ? r->start(0, nameOf(*r, a)) : 0;
}
nvtxRangeId_t NVTX_API rangeStartA(const char* m) {
  auto* r = recorder();
  return r ? r->start(0, r->name(m ? m : "")) : 0;
}
nvtxRangeId_t NVTX_API rangeStartW(const wchar_t* m) {
  auto* r = recorder();
  return r ? r->start(0, r->name(narrow(m))) : 0;
}
void NVTX_API rangeEnd(nvtxRangeId_t id) {
  if (auto* r = recorder()) r->end(id);
}
int NVTX_API rangePushEx(const nvtxEventAttributes_t* a) {
  if (auto* r = recorder()) r->push(0, nameOf(*r, a));
  return 0;
}
int NVTX_API rangePushA(const char* m) {
  if (auto* r = recorder()) r->push(0, r->name(m ? m : ""));
  return 0;
}
int NVTX_API rangePushW(const wchar_t* m) {
  if (auto* r = recorder()) r->push(0, r->name(narrow(m)));
  return 0;
}
int NVTX_API rangePop() {
  if (auto* r = recorder()) r->pop(0);
  return 0;
}
void NVTX_API nameOsThreadA(uint32_t thread, const char* name) {
  if (auto* r = recorder()) r->nameThread(thread, name ? name : "");
}
void NVTX_API nameOsThreadW(uint32_t thread, const wchar_t* name) {
  if (auto* r = recorder()) r->nameThread(thread, narrow(name));
}

// --- domains ----------------------------------------------------------------------------------------
void NVTX_API domainMarkEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t* a) {
  if (auto* r = recorder()) r->mark(domainOf(d), nameOf(*r, a));
}
nvtxRangeId_t NVTX_API domainRangeStartEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t* a) {
  auto* r = recorder();
  return r ? r->start(domainOf(d), nameOf(*r, a)) : 0;
}
void NVTX_API domainRangeEnd(nvtxDomainHandle_t, nvtxRangeId_t id) {
  if (auto* r = recorder()) r->end(id);
}
int NVTX_API domainRangePushEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t* a) {
  if (auto* r = recorder()) r->push(domainOf(d), nameOf(*r, a));
  return 0;
}
int NVTX_API domainRangePop(nvtxDomainHandle_t d) {
  if (auto* r = recorder()) r->pop(domainOf(d));
  return 0;
}
nvtxStringHandle_t NVTX_API domainRegisterStringA(nvtxDomainHandle_t, const char* text) {
  auto* r = recorder();
  if (!r) return nullptr;
  return reinterpret_cast<nvtxStringHandle_t>(new Registered{r->name(text ? text : "")});
}
nvtxStringHandle_t NVTX_API domainRegisterStringW(nvtxDomainHandle_t, const wchar_t* text) {
  auto* r = recorder();
  if (!r) return nullptr;
  return reinterpret_cast<nvtxStringHandle_t>(new Registered{r->name(narrow(text))});
}
nvtxDomainHandle_t NVTX_API domainCreateA(const char* name) {
  auto* r = recorder();
  if (!r) return nullptr;
  return reinterpret_cast<nvtxDomainHandle_t>(new Domain{r->domain(name ? name : "")});
}
nvtxDomainHandle_t NVTX_API domainCreateW(const wchar_t* name) {
  auto* r = recorder();
  if (!r) return nullptr;
  return reinterpret_cast<nvtxDomainHandle_t>(new Domain{r->domain(narrow(name))});
}
void NVTX_API domainDestroy(nvtxDomainHandle_t) {
  // Kept: ranges of the domain may still be in the store.
}

template <typename F>
void put(NvtxFunctionTable table, unsigned size, unsigned slot, F function) {
  if (table && slot < size && table[slot]) *table[slot] = reinterpret_cast<NvtxFunctionPointer>(function);
}

}  // namespace
}  // namespace moescope::tracer::inject

extern "C" __attribute__((visibility("default"))) int InitializeInjectionNvtx2(
    NvtxGetExportTableFunc_t getTable) {
  using namespace moescope::tracer::inject;
  Session* s = session();
  if (!s || !s->settings.nvtx || !getTable) return 0;  // 0: NVTX turns every call into a no-op
  const auto* callbacks = static_cast<const NvtxExportTableCallbacks*>(getTable(NVTX_ETID_CALLBACKS));
  if (!callbacks || !callbacks->GetModuleFunctionTable) return 0;
  NvtxFunctionTable table = nullptr;
  unsigned size = 0;
  if (callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &table, &size)) {
    put(table, size, NVTX_CBID_CORE_MarkEx, markEx);
    put(table, size, NVTX_CBID_CORE_MarkA, markA);
    put(table, size, NVTX_CBID_CORE_MarkW, markW);
    put(table, size, NVTX_CBID_CORE_RangeStartEx, rangeStartEx);
    put(table, size, NVTX_CBID_CORE_RangeStartA, rangeStartA);
    put(table, size, NVTX_CBID_CORE_RangeStartW, rangeStartW);
    put(table, size, NVTX_CBID_CORE_RangeEnd, rangeEnd);
    put(table, size, NVTX_CBID_CORE_RangePushEx, rangePushEx);
    put(table, size, NVTX_CBID_CORE_RangePushA, rangePushA);
    put(table, size, NVTX_CBID_CORE_RangePushW, rangePushW);
    put(table, size, NVTX_CBID_CORE_RangePop, rangePop);
    put(table, size, NVTX_CBID_CORE_NameOsThreadA, nameOsThreadA);
    put(table, size, NVTX_CBID_CORE_NameOsThreadW, nameOsThreadW);
  }
  if (callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &table, &size)) {
    put(table, size, NVTX_CBID_CORE2_DomainMarkEx, domainMarkEx);
    put(table, size, NVTX_CBID_CORE2_DomainRangeStartEx, domainRangeStartEx);
    put(table, size, NVTX_CBID_CORE2_DomainRangeEnd, domainRangeEnd);
    put(table, size, NVTX_CBID_CORE2_DomainRangePushEx, domainRangePushEx);
    put(table, size, NVTX_CBID_CORE2_DomainRangePop, domainRangePop);
    put(table, size, NVTX_CBID_CORE2_DomainRegisterStringA, domainRegisterStringA);
    put(table, size, NVTX_CBID_CORE2_DomainRegisterStringW, domainRegisterStringW);
    put(table, size, NVTX_CBID_CORE2_DomainCreateA, domainCreateA);
    put(table, size, NVTX_CBID_CORE2_DomainCreateW, domainCreateW);
    put(table, size, NVTX_CBID_CORE2_DomainDestroy, domainDestroy);
  }
  return 1;
}
