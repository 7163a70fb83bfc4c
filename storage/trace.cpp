#include "storage/trace.h"

#include <algorithm>
#include <numeric>
#include <tuple>

#include "storage/saturating.h"

namespace moescope::storage {
namespace {

int16_t narrow16(int32_t v) {
  return (v >= std::numeric_limits<int16_t>::min() && v <= std::numeric_limits<int16_t>::max())
             ? static_cast<int16_t>(v)
             : static_cast<int16_t>(kNone);
}

int8_t narrow8(int32_t v) {
  return v >= 0 && v <= std::numeric_limits<int8_t>::max() ? static_cast<int8_t>(v)
                                                           : static_cast<int8_t>(kNone);
}

template <typename T>
T sparseAt(const std::vector<uint32_t>& index, const std::vector<T>& value, size_t i, T none) {
  auto it = std::lower_bound(index.begin(), index.end(), static_cast<uint32_t>(i));
  if (it == index.end() || *it != i) return none;
  return value[static_cast<size_t>(it - index.begin())];
}

template <typename T>
void permute(std::vector<T>& column, const std::vector<uint32_t>& order) {
  std::vector<T> out(column.size());
  for (size_t i = 0; i < order.size(); ++i) out[i] = column[order[i]];
  column = std::move(out);
}

// Re-keys a sparse column after a permutation: newIndex[old] is where old went.
template <typename T>
void permuteSparse(std::vector<uint32_t>& index, std::vector<T>& value,
                   const std::vector<uint32_t>& newIndex) {
  std::vector<std::pair<uint32_t, T>> pairs(index.size());
  for (size_t k = 0; k < index.size(); ++k) pairs[k] = {newIndex[index[k]], value[k]};
  std::sort(pairs.begin(), pairs.end());
  for (size_t k = 0; k < pairs.size(); ++k) {
    index[k] = pairs[k].first;
    value[k] = pairs[k].second;
  }
}

template <typename T>
size_t bytesOf(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

}  // namespace

int64_t SpanColumns::durationAt(size_t i) const {
  const uint32_t d = duration[i];
  return d != kLongDuration ? d : sparseAt<int64_t>(long_index, long_duration, i, kLongDuration);
}

int64_t SpanColumns::bytesAt(size_t i) const {
  const uint8_t code = bytes_code[i];
  if (code == 0) return 0;
  if (code != kBytesInSparse) return bytes_table[code - 1u];
  return sparseAt<int64_t>(bytes_index, bytes_value, i, 0);
}

SpanColumns::CommCall SpanColumns::commAt(size_t i) const {
  return sparseAt<CommCall>(comm_index, comm_call, i, CommCall{});
}

SpanView SpanColumns::at(size_t i, int32_t track) const {
  SpanView v;
  v.track = track;
  v.start = start[i];
  v.end = endAt(i);
  v.name = name[i];
  v.category = category[i];
  v.phase = phase[i];
  v.step = stepAt(i);
  v.microbatch = microbatch[i];
  v.layer = layer[i];
  v.expert = expert[i];
  v.bytes = bytesAt(i);
  v.chunk = chunk[i];
  if (!comm_index.empty()) {
    const CommCall call = commAt(i);
    v.comm = call.comm;
    v.seq = call.seq;
    v.peer = call.peer;
  }
  return v;
}

std::pair<size_t, size_t> SpanColumns::window(int64_t t0, int64_t t1) const {
  if (t1 <= t0) return {0, 0};
  const auto first = std::lower_bound(start.begin(), start.end(), saturatingSub(t0, maxDuration));
  const auto last = std::lower_bound(first, start.end(), t1);
  return {static_cast<size_t>(first - start.begin()), static_cast<size_t>(last - start.begin())};
}

size_t SpanColumns::residentBytes() const {
  return bytesOf(start) + bytesOf(duration) + bytesOf(name) + step.residentBytes() + bytesOf(microbatch) +
         bytesOf(layer) + bytesOf(expert) + bytesOf(category) + bytesOf(phase) + bytesOf(chunk) +
         bytesOf(bytes_code) + bytesOf(bytes_table) + bytesOf(bytes_index) + bytesOf(bytes_value) +
         bytesOf(long_index) + bytesOf(long_duration) + bytesOf(comm_index) + bytesOf(comm_call) +
         sizeof(SpanColumns);
}

void appendSpan(SpanColumns& c, const SpanRecord& s) {
  const auto i = static_cast<uint32_t>(c.start.size());
  const int64_t d = std::max<int64_t>(0, saturatingSub(s.end, s.start));
  c.start.push_back(s.start);
  if (d < SpanColumns::kLongDuration) {
    c.duration.push_back(static_cast<uint32_t>(d));
  } else {
    c.duration.push_back(SpanColumns::kLongDuration);
    c.long_index.push_back(i);
    c.long_duration.push_back(d);
  }
  c.name.push_back(s.name);
  c.step.push_back(s.step);
  c.microbatch.push_back(narrow16(s.microbatch));
  c.layer.push_back(narrow16(s.layer));
  c.expert.push_back(narrow16(s.expert));
  c.category.push_back(s.category);
  c.phase.push_back(s.phase);
  c.chunk.push_back(narrow8(s.chunk));
  uint8_t code = 0;
  if (s.bytes > 0) {
    auto it = std::find(c.bytes_table.begin(), c.bytes_table.end(), s.bytes);
    if (it != c.bytes_table.end()) {
      code = static_cast<uint8_t>(it - c.bytes_table.begin() + 1);
    } else if (c.bytes_table.size() + 1 < SpanColumns::kBytesInSparse) {
      c.bytes_table.push_back(s.bytes);
      code = static_cast<uint8_t>(c.bytes_table.size());
    } else {
      code = SpanColumns::kBytesInSparse;
      c.bytes_index.push_back(i);
      c.bytes_value.push_back(s.bytes);
    }
  }
  c.bytes_code.push_back(code);
  if (s.comm != kNone || s.seq != kNone || s.peer != kNone) {
    c.comm_index.push_back(i);
    c.comm_call.push_back({s.comm, s.seq, s.peer});
  }
  c.maxDuration = std::max(c.maxDuration, d);
}

void appendSpans(SpanColumns& into, const SpanColumns& from) {
  for (size_t i = 0; i < from.size(); ++i) {
    const SpanView v = from.at(i, 0);
    appendSpan(into, {0, v.start, v.end, v.name, v.category, v.phase, v.step, v.microbatch, v.layer, v.expert,
                      v.bytes, v.chunk, v.comm, v.seq, v.peer});
  }
}

void sortSpans(SpanColumns& c, size_t sortedBefore) {
  const size_t n = c.size();
  auto less = [&c](size_t a, size_t b) {
    return c.start[a] != c.start[b] ? c.start[a] < c.start[b] : c.durationAt(a) < c.durationAt(b);
  };
  bool sorted = true;
  for (size_t i = std::max<size_t>(sortedBefore, 1); i < n && sorted; ++i) sorted = !less(i, i - 1);
  if (sorted) return;
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), less);
  std::vector<uint32_t> newIndex(n);
  for (size_t i = 0; i < n; ++i) newIndex[order[i]] = static_cast<uint32_t>(i);
  permuteSparse(c.bytes_index, c.bytes_value, newIndex);
  permuteSparse(c.long_index, c.long_duration, newIndex);
  permuteSparse(c.comm_index, c.comm_call, newIndex);
  permute(c.start, order);
  permute(c.duration, order);
  permute(c.name, order);
  c.step = permuted(c.step, order);
  permute(c.microbatch, order);
  permute(c.layer, order);
  permute(c.expert, order);
  permute(c.category, order);
  permute(c.phase, order);
  permute(c.chunk, order);
  permute(c.bytes_code, order);
}

void shrinkSpans(SpanColumns& c) {
  c.start.shrink_to_fit();
  c.duration.shrink_to_fit();
  c.name.shrink_to_fit();
  c.step.shrink_to_fit();
  c.microbatch.shrink_to_fit();
  c.layer.shrink_to_fit();
  c.expert.shrink_to_fit();
  c.category.shrink_to_fit();
  c.phase.shrink_to_fit();
  c.chunk.shrink_to_fit();
  c.bytes_code.shrink_to_fit();
  c.bytes_table.shrink_to_fit();
  c.bytes_index.shrink_to_fit();
  c.bytes_value.shrink_to_fit();
  c.long_index.shrink_to_fit();
  c.long_duration.shrink_to_fit();
  c.comm_index.shrink_to_fit();
  c.comm_call.shrink_to_fit();
}

size_t Trace::spanCount() const {
  size_t n = 0;
  for (size_t t = 0; t < spans.size(); ++t) {
    if (t >= tracks.size() || tracks[t].kind != TrackKind::GpuStream) n += spans[t].size();
  }
  return n;
}

int64_t Trace::startTime() const {
  int64_t t = std::numeric_limits<int64_t>::max();
  for (const SpanColumns& c : spans) {
    if (c.size()) t = std::min(t, c.start.front());
  }
  return t == std::numeric_limits<int64_t>::max() ? run.start_ns : t;
}

int64_t Trace::endTime() const {
  int64_t t = std::numeric_limits<int64_t>::min();
  for (const SpanColumns& c : spans) {
    // Sorted by start, so the latest end is among the spans that start within maxDuration of the last.
    if (!c.size()) continue;
    const int64_t last = c.start.back();
    for (size_t i = c.window(last, last + 1).first; i < c.size(); ++i) t = std::max(t, c.endAt(i));
  }
  return t == std::numeric_limits<int64_t>::min() ? run.end_ns : t;
}

size_t Trace::residentBytes() const {
  size_t n = sizeof(Trace);
  for (const SpanColumns& c : spans) n += c.residentBytes();
  n += bytesOf(gpu) + bytesOf(linked) + bytesOf(counters) + bytesOf(steps) + bytesOf(routing) +
       bytesOf(ranks) + bytesOf(tracks);
  for (const std::string& s : strings) n += sizeof(std::string) + s.capacity();
  for (const MoeRouting& g : routing) n += g.kept.capacity() * sizeof(int64_t);
  return n;
}

const RankInfo* Trace::rank(int32_t id) const {
  auto it = std::lower_bound(ranks.begin(), ranks.end(), id,
                             [](const RankInfo& r, int32_t v) { return r.rank < v; });
  return it != ranks.end() && it->rank == id ? &*it : nullptr;
}

const LinkedSpan* Trace::linkedSpan(int64_t id) const {
  auto it = std::lower_bound(linked.begin(), linked.end(), id,
                             [](const LinkedSpan& l, int64_t v) { return l.id < v; });
  return it != linked.end() && it->id == id ? &*it : nullptr;
}

void addSpan(Trace& trace, const SpanRecord& span) {
  if (span.track < 0) return;
  if (static_cast<size_t>(span.track) >= trace.spans.size())
    trace.spans.resize(static_cast<size_t>(span.track) + 1);
  appendSpan(trace.spans[static_cast<size_t>(span.track)], span);
}

namespace {

template <typename T, typename Less>
void sortIfNeeded(std::vector<T>& v, Less less) {
  if (!std::is_sorted(v.begin(), v.end(), less)) std::stable_sort(v.begin(), v.end(), less);
}

}  // namespace

void finishTrace(Trace& trace, std::span<const size_t> sortedBefore) {
  if (trace.spans.size() < trace.tracks.size()) trace.spans.resize(trace.tracks.size());
  sortIfNeeded(trace.linked, [](const auto& a, const auto& b) { return a.id < b.id; });
  trace.linked.erase(std::unique(trace.linked.begin(), trace.linked.end(),
                                 [](const auto& a, const auto& b) { return a.id == b.id; }),
                     trace.linked.end());
  // New GPU records are at the end of `gpu` (the reader appends them; sorting comes below).
  for (size_t i = trace.gpuInSpans; i < trace.gpu.size(); ++i) {
    const GpuActivityRecord& g = trace.gpu[i];
    if (g.track < 0 || static_cast<size_t>(g.track) >= trace.tracks.size() ||
        trace.tracks[static_cast<size_t>(g.track)].kind != TrackKind::GpuStream)
      continue;
    const LinkedSpan* l = trace.linkedSpan(g.span);
    if (!l) continue;  // launched outside any span: no category to draw it in
    SpanRecord s = l->span;
    s.track = g.track;
    s.start = g.start;
    s.end = g.end;
    s.name = g.name;
    s.bytes = g.bytes;
    appendSpan(trace.spans[static_cast<size_t>(g.track)], s);
  }
  trace.gpuInSpans = trace.gpu.size();
  for (size_t t = 0; t < trace.spans.size(); ++t)
    sortSpans(trace.spans[t], t < sortedBefore.size() ? sortedBefore[t] : 0);
  sortIfNeeded(trace.gpu, [](const auto& a, const auto& b) {
    return a.track != b.track ? a.track < b.track : a.start < b.start;
  });
  sortIfNeeded(trace.counters, [](const auto& a, const auto& b) {
    return a.track != b.track ? a.track < b.track : a.time < b.time;
  });
  sortIfNeeded(trace.steps, [](const auto& a, const auto& b) { return a.step < b.step; });
  sortIfNeeded(trace.routing, [](const MoeRouting& a, const MoeRouting& b) {
    return std::tie(a.step, a.microbatch, a.layer, a.replica) <
           std::tie(b.step, b.microbatch, b.layer, b.replica);
  });
  sortIfNeeded(trace.ranks, [](const auto& a, const auto& b) { return a.rank < b.rank; });
}

}  // namespace moescope::storage
