// Checks of an imported run against the Kineto JSON it came from, read independently of the importer
// (nlohmann-json over the whole file: test traces are small): every kernel, memcpy, memset and
// annotation is in the run with its name and time, every ac2g flow ties its kernel to the call that
// launched it, and every NCCL kernel with collective fields is drawn in a communication category with
// its bytes. Used on the hand-written traces and on the real ones in samples/kineto/.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "storage/import_input.h"
#include "storage/import_kineto.h"
#include "storage/trace.h"

namespace moescope::testing {

inline nlohmann::json readTraceJson(const std::filesystem::path& path) {
  auto in = storage::TraceInput::open(path);
  std::string text;
  std::vector<char> buf(1 << 16);
  for (size_t n; (n = in->read(buf.data(), buf.size())) > 0;) text.append(buf.data(), n);
  return nlohmann::json::parse(text);
}

// Kineto's microseconds as nanoseconds: integers exactly (older traces write epoch microseconds, beyond
// a double's precision once in nanoseconds), "123.456" through a double, as any JSON reader would.
inline int64_t jsonNs(const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<int64_t>() * 1000;
  return static_cast<int64_t>(std::llround(v.get<double>() * 1000.0));
}

struct JsonTraceCounts {
  std::map<std::string, int64_t> byCategory;  // complete events by "cat"
  int64_t flows = 0, ncclKernels = 0;
};

// (rank, name, start, end) of a GPU record or a span, for comparing multisets.
using TimedName = std::tuple<int32_t, std::string, int64_t, int64_t>;

inline const storage::TrackInfo* trackOf(const storage::Trace& t, int32_t id) {
  return id >= 0 && static_cast<size_t>(id) < t.tracks.size() ? &t.tracks[static_cast<size_t>(id)] : nullptr;
}

// Checks one rank's trace file against the run; `counts` gets what the JSON held.
inline void checkRankAgainstJson(const storage::Trace& trace, const std::filesystem::path& path, int32_t rank,
                                 JsonTraceCounts& counts) {
  const nlohmann::json j = readTraceJson(path);
  const int64_t base = j.contains("baseTimeNanoseconds") ? j["baseTimeNanoseconds"].get<int64_t>() : 0;
  counts = {};
  std::multiset<TimedName> jsonGpu[3], runGpu[3];  // kernel, memcpy, memset
  std::multiset<TimedName> jsonAnnotations, runSpans;
  const std::map<std::string, int> gpuKinds = {{"kernel", 0}, {"Kernel", 0},     {"gpu_memcpy", 1},
                                               {"Memcpy", 1}, {"gpu_memset", 2}, {"Memset", 2}};
  std::map<int64_t, std::pair<nlohmann::json, nlohmann::json>> flows;  // id -> (s, f)
  std::vector<nlohmann::json> ncclKernels;
  for (const nlohmann::json& e : j["traceEvents"]) {
    const std::string ph = e.value("ph", "");
    if ((ph == "s" || ph == "f") && e.value("cat", "") == "ac2g") {
      (ph == "s" ? flows[e["id"].get<int64_t>()].first : flows[e["id"].get<int64_t>()].second) = e;
      continue;
    }
    if (ph != "X" || !e.contains("ts")) continue;
    const std::string cat = e.value("cat", "");
    if (cat == "Trace") continue;
    ++counts.byCategory[cat];
    const int64_t start = base + jsonNs(e["ts"]);
    const int64_t end = start + std::max<int64_t>(0, e.contains("dur") ? jsonNs(e["dur"]) : 0);
    const std::string name = e.value("name", "");
    if (auto k = gpuKinds.find(cat); k != gpuKinds.end()) {
      jsonGpu[k->second].insert({rank, name, start, end});
      if (k->second == 0 && e.contains("args") && e["args"].contains("Collective name"))
        ncclKernels.push_back(e);
    }
    if (cat == "user_annotation" || cat == "gpu_user_annotation")
      jsonAnnotations.insert({rank, name, start, end});
  }
  for (const storage::GpuActivityRecord& g : trace.gpu) {
    const storage::TrackInfo* track = trackOf(trace, g.track);
    if (!track || track->rank != rank) continue;
    runGpu[static_cast<int>(g.kind)].insert({rank, std::string(trace.name(g.name)), g.start, g.end});
  }
  for (size_t t = 0; t < trace.tracks.size(); ++t) {
    if (trace.tracks[t].rank != rank) continue;
    const storage::SpanColumns& c = trace.spans[t];
    for (size_t i = 0; i < c.size(); ++i)
      runSpans.insert({rank, std::string(trace.name(c.name[i])), c.start[i], c.endAt(i)});
  }
  for (int k = 0; k < 3; ++k) EXPECT_EQ(runGpu[k], jsonGpu[k]) << path << ": GPU records of kind " << k;
  for (const TimedName& a : jsonAnnotations)
    EXPECT_GE(runSpans.count(a), jsonAnnotations.count(a))
        << path << ": annotation " << std::get<1>(a) << " at " << std::get<2>(a);

  // Launch -> kernel flows: the record at the flow's end is tied to the span at its start.
  auto recordAt = [&](int64_t device, int64_t stream, int64_t start) -> const storage::GpuActivityRecord* {
    for (const storage::GpuActivityRecord& g : trace.gpu) {
      const storage::TrackInfo* track = trackOf(trace, g.track);
      if (track && track->rank == rank && g.device == device && g.stream == stream && g.start == start)
        return &g;
    }
    return nullptr;
  };
  for (const auto& [id, sf] : flows) {
    const auto& [s, f] = sf;
    if (s.is_null() || f.is_null()) continue;
    ++counts.flows;
    const storage::GpuActivityRecord* g =
        recordAt(f["pid"].get<int64_t>(), f["tid"].get<int64_t>(), base + jsonNs(f["ts"]));
    ASSERT_NE(g, nullptr) << path << ": no GPU record at the end of flow " << id;
    const storage::LinkedSpan* launch = trace.linkedSpan(g->span);
    ASSERT_NE(launch, nullptr) << path << ": flow " << id << "'s kernel is not tied to a span";
    EXPECT_EQ(launch->span.start, base + jsonNs(s["ts"])) << path << ": flow " << id;
    const storage::TrackInfo* host = trackOf(trace, launch->span.track);
    ASSERT_NE(host, nullptr);
    EXPECT_EQ(host->kind, storage::TrackKind::HostThread);
  }

  // NCCL kernels: a communication category and the collective's bytes.
  for (const nlohmann::json& e : ncclKernels) {
    ++counts.ncclKernels;
    const nlohmann::json& a = e["args"];
    const storage::GpuActivityRecord* g =
        recordAt(a.value("device", e["pid"].get<int64_t>()), a.value("stream", e["tid"].get<int64_t>()),
                 base + jsonNs(e["ts"]));
    ASSERT_NE(g, nullptr) << path << ": NCCL kernel at " << e["ts"];
    const int64_t elements =
        std::max(a.value("In msg nelems", int64_t{0}), a.value("Out msg nelems", int64_t{0}));
    EXPECT_EQ(g->bytes, elements * storage::dtypeBytes(a.value("dtype", ""))) << path << ": " << e["name"];
    const storage::LinkedSpan* launch = trace.linkedSpan(g->span);
    ASSERT_NE(launch, nullptr) << path << ": NCCL kernel at " << e["ts"] << " without its launch";
    EXPECT_TRUE(storage::isCommunication(launch->span.category))
        << path << ": NCCL kernel " << e["name"] << " drawn as "
        << storage::categoryName(launch->span.category);
  }
}

}  // namespace moescope::testing
