#include "storage/import_kineto.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "storage/import_error.h"
#include "storage/import_input.h"
#include "storage/import_json.h"

namespace moescope::storage {
namespace {

using Token = JsonReader::Token;

// Events between two progress calls: often enough for a progress bar and a prompt cancel, rare enough
// to cost nothing (a call every ~2 MB of JSON).
constexpr int64_t kProgressEvery = 8192;
constexpr size_t kUnknownCategoryNamesKept = 5;

struct CategoryName {
  std::string_view name;
  KinetoKind kind;
};
// Kineto's category names (ActivityType's toString), and the names older versions wrote.
constexpr std::array<CategoryName, 17> kCategories = {{
    {"cpu_op", KinetoKind::CpuOp},
    {"Operator", KinetoKind::CpuOp},
    {"user_annotation", KinetoKind::UserAnnotation},
    {"python_function", KinetoKind::PythonFunction},
    {"cuda_runtime", KinetoKind::CudaRuntime},
    {"Runtime", KinetoKind::CudaRuntime},
    {"cuda_driver", KinetoKind::CudaDriver},
    {"Driver", KinetoKind::CudaDriver},
    {"gpu_user_annotation", KinetoKind::GpuUserAnnotation},
    {"cuda_sync", KinetoKind::GpuSync},
    {"kernel", KinetoKind::Kernel},
    {"Kernel", KinetoKind::Kernel},
    {"gpu_memcpy", KinetoKind::Memcpy},
    {"Memcpy", KinetoKind::Memcpy},
    {"gpu_memset", KinetoKind::Memset},
    {"Memset", KinetoKind::Memset},
    {"overhead", KinetoKind::Other},
}};

std::optional<KinetoKind> kindOf(std::string_view cat) {
  for (const CategoryName& c : kCategories) {
    if (c.name == cat) return c.kind;
  }
  return std::nullopt;
}

// One event's fields as read, in any key order; turned into a KinetoEvent at its end.
struct EventFields {
  char ph = 0;
  std::string cat, name;
  bool hasTs = false;
  int64_t ts = 0, dur = 0;
  int64_t pid = 0, tid = 0;
  bool hasId = false;
  int64_t id = 0;
  // args
  int64_t correlation = 0, bytes = 0;
  std::optional<int64_t> device, stream;
  std::string argName;  // "M" events: args.name
  bool collective = false;
  KinetoCollective coll;

  void reset() {
    ph = 0;
    cat.clear();
    name.clear();
    hasTs = false;
    ts = dur = pid = tid = 0;
    hasId = false;
    id = 0;
    correlation = bytes = 0;
    device.reset();
    stream.reset();
    argName.clear();
    if (collective) {
      collective = false;
      coll = KinetoCollective{};
    }
  }
};

class Reader {
 public:
  Reader(TraceInput& input, NameTable& names, const KinetoReadOptions& options)
      : input_(input), json_(input, options.window), names_(names), options_(options) {
    file_.path = input.name();
    // Room for the events a trace of this size holds, so the columns never move while they fill: growing
    // by doubling copied every event once more and touched twice the memory (page faults were a tenth of
    // the import's CPU time at 1 GB). Kineto writes 250-700 bytes per kept event; gzip shrinks JSON about
    // 8x. Pages reserved and never written cost address space only.
    const uint64_t text = input.compressed() ? input.fileSize() * 8 : input.fileSize();
    file_.events.reserve(static_cast<size_t>(text / 256));
    file_.flow_starts.reserve(static_cast<size_t>(text / 1024));
    file_.flow_ends.reserve(static_cast<size_t>(text / 1024));
  }

  KinetoFile read() {
    const Token first = json_.next();
    if (first != Token::ObjectBegin) notKineto("a JSON value that is not an object with traceEvents");
    bool sawEvents = false;
    for (Token t = json_.next(); t != Token::ObjectEnd; t = json_.next()) {
      const std::string_view key = json_.text();
      if (key == "traceEvents") {
        readEvents();
        sawEvents = true;
      } else if (key == "schemaVersion") {
        file_.schema_version = integer(json_.next(), "schemaVersion");
      } else if (key == "baseTimeNanoseconds") {
        file_.base_time_ns = integer(json_.next(), "baseTimeNanoseconds");
      } else if (key == "distributedInfo") {
        readDistributed();
      } else if (key == "deviceProperties") {
        readDevices();
      } else if (key == "host_name") {
        file_.host_name = string(json_.next(), "host_name");
      } else if (key.starts_with("PT_PROFILER_JOB_")) {
        const std::string k(key);
        file_.job[k] = string(json_.next(), k);
      } else {
        json_.skip(json_.next());
      }
    }
    if (json_.next() != Token::End) json_.fail("text after the end of the document");
    if (!sawEvents) notKineto("no traceEvents");
    bool kinetoEvents = false;  // of a category Kineto writes (Other holds the unknown ones)
    for (size_t k = 0; k < file_.counts.kept.size(); ++k)
      kinetoEvents =
          kinetoEvents || (k != static_cast<size_t>(KinetoKind::Other) && file_.counts.kept[k] > 0);
    if (file_.schema_version < 0 && !kinetoEvents && file_.counts.events > 0)
      notKineto("no schemaVersion, and none of Kineto's event categories");
    return std::move(file_);
  }

 private:
  [[noreturn]] void notKineto(std::string_view why) {
    throw ImportError(file_.path + ": not a PyTorch profiler (Kineto) trace (" + std::string(why) + ")");
  }
  [[noreturn]] void badField(std::string_view field, std::string_view what) {
    throw ImportError(file_.path + ": byte " + std::to_string(json_.offset()) + ": " + std::string(field) +
                      " " + std::string(what));
  }

  int64_t integer(Token t, std::string_view field) {
    int64_t v = 0;
    if (t == Token::Number && jsonInteger(json_.text(), v)) return v;
    if (t == Token::String && jsonInteger(json_.text(), v)) return v;  // "rank": "0" in some writers
    badField(field, "is not an integer");
  }
  std::string string(Token t, std::string_view field) {
    if (t == Token::String) return std::string(json_.text());
    if (t == Token::Number) return std::string(json_.text());
    if (t == Token::Null) return {};
    badField(field, "is not a string");
  }
  // An integer field that may also be a string (pid "Spans"); true if it was an integer. Reads nothing.
  bool idOf(Token t, int64_t& out) {
    if ((t == Token::Number || t == Token::String) && jsonInteger(json_.text(), out)) return true;
    if (t == Token::String) {
      // A name in place of a number: one negative id per distinct name.
      auto [it, added] =
          textIds_.try_emplace(std::string(json_.text()), -2 - static_cast<int64_t>(textIds_.size()));
      out = it->second;
      return false;
    }
    out = 0;  // not an id at all (the caller skips the value)
    return false;
  }

  void readDistributed() {
    Token t = json_.next();
    if (t != Token::ObjectBegin) {
      json_.skip(t);
      return;
    }
    KinetoDistributed d;
    for (t = json_.next(); t != Token::ObjectEnd; t = json_.next()) {
      const std::string_view key = json_.text();
      if (key == "rank") {
        d.rank = static_cast<int32_t>(integer(json_.next(), "distributedInfo.rank"));
      } else if (key == "world_size") {
        d.world_size = static_cast<int32_t>(integer(json_.next(), "distributedInfo.world_size"));
      } else if (key == "backend") {
        d.backend = string(json_.next(), "distributedInfo.backend");
      } else if (key == "nccl_version") {
        d.nccl_version = string(json_.next(), "distributedInfo.nccl_version");
      } else if (key == "pg_config") {
        readGroups(d);
      } else {
        json_.skip(json_.next());
      }
    }
    if (d.rank < -1 || d.world_size < -1 || (d.world_size > 0 && d.rank >= d.world_size))
      badField("distributedInfo",
               "has rank " + std::to_string(d.rank) + " outside world size " + std::to_string(d.world_size));
    file_.distributed = std::move(d);
  }

  std::vector<int32_t> ranks(Token t) {
    if (t == Token::String) return parseRankList(json_.text());
    std::vector<int32_t> out;
    if (t != Token::ArrayBegin) {
      json_.skip(t);
      return out;
    }
    for (t = json_.next(); t != Token::ArrayEnd; t = json_.next())
      out.push_back(static_cast<int32_t>(integer(t, "ranks")));
    return out;
  }

  void readGroups(KinetoDistributed& d) {
    Token t = json_.next();
    if (t != Token::ArrayBegin) {
      json_.skip(t);
      return;
    }
    for (t = json_.next(); t != Token::ArrayEnd; t = json_.next()) {
      if (t != Token::ObjectBegin) {
        json_.skip(t);
        continue;
      }
      KinetoProcessGroup g;
      for (Token k = json_.next(); k != Token::ObjectEnd; k = json_.next()) {
        const std::string_view key = json_.text();
        if (key == "pg_name") {
          g.name = string(json_.next(), "pg_name");
        } else if (key == "pg_desc") {
          g.desc = string(json_.next(), "pg_desc");
        } else if (key == "pg_size") {
          g.size = static_cast<int32_t>(integer(json_.next(), "pg_size"));
        } else if (key == "ranks") {
          g.ranks = ranks(json_.next());
        } else {
          json_.skip(json_.next());
        }
      }
      d.groups.push_back(std::move(g));
    }
  }

  void readDevices() {
    Token t = json_.next();
    if (t != Token::ArrayBegin) {
      json_.skip(t);
      return;
    }
    for (t = json_.next(); t != Token::ArrayEnd; t = json_.next()) {
      if (t != Token::ObjectBegin) {
        json_.skip(t);
        continue;
      }
      KinetoDevice d;
      for (Token k = json_.next(); k != Token::ObjectEnd; k = json_.next()) {
        const std::string_view key = json_.text();
        if (key == "id") {
          d.id = static_cast<int32_t>(integer(json_.next(), "deviceProperties.id"));
        } else if (key == "name") {
          d.name = string(json_.next(), "deviceProperties.name");
        } else if (key == "totalGlobalMem") {
          d.memory = integer(json_.next(), "deviceProperties.totalGlobalMem");
        } else if (key == "numSms") {
          d.sms = static_cast<int32_t>(integer(json_.next(), "deviceProperties.numSms"));
        } else {
          json_.skip(json_.next());
        }
      }
      file_.devices.push_back(std::move(d));
    }
  }

  void readEvents() {
    Token t = json_.next();
    if (t != Token::ArrayBegin) notKineto("traceEvents is not an array");
    for (t = json_.next(); t != Token::ArrayEnd; t = json_.next()) {
      if (t != Token::ObjectBegin) {
        json_.skip(t);
        continue;
      }
      ++file_.counts.events;
      readEvent();
      if (file_.counts.events % kProgressEvery == 0 && options_.progress)
        options_.progress(input_.fileOffset());
    }
  }

  // Keys are told apart before their value is read: reading the value may move the tokenizer's window,
  // and with it the key's text.
  enum class ArgKey : uint8_t {
    Other,
    Correlation,
    Device,
    Stream,
    Bytes,
    Name,
    // The collective fields of kParamCommsCallName ops and NCCL kernels (libkineto output_json.cpp).
    CollectiveName,
    Dtype,
    InNelems,
    OutNelems,
    GroupSize,
    GroupName,
    GroupDesc,
    GroupRanks,
    SrcRank,
    DstRank,
  };
  static ArgKey argKey(std::string_view k) {
    static constexpr std::array<std::pair<std::string_view, ArgKey>, 15> kKeys = {{
        {"correlation", ArgKey::Correlation},
        {"device", ArgKey::Device},
        {"stream", ArgKey::Stream},
        {"bytes", ArgKey::Bytes},
        {"name", ArgKey::Name},
        {"Collective name", ArgKey::CollectiveName},
        {"dtype", ArgKey::Dtype},
        {"In msg nelems", ArgKey::InNelems},
        {"Out msg nelems", ArgKey::OutNelems},
        {"Group size", ArgKey::GroupSize},
        {"Process Group Name", ArgKey::GroupName},
        {"Process Group Description", ArgKey::GroupDesc},
        {"Process Group Ranks", ArgKey::GroupRanks},
        {"Src Rank", ArgKey::SrcRank},
        {"Dst Rank", ArgKey::DstRank},
    }};
    for (const auto& [name, key] : kKeys) {
      if (name == k) return key;
    }
    return ArgKey::Other;
  }

  void readArgs() {
    for (Token t = json_.next(); t != Token::ObjectEnd; t = json_.next()) {
      const ArgKey key = argKey(json_.text());
      const Token v = json_.next();
      int64_t n = 0;
      const bool isInteger = v == Token::Number && jsonInteger(json_.text(), n);
      KinetoCollective& c = ev_.coll;
      auto text = [&](std::string& field) {
        if (v == Token::String || v == Token::Number) field = json_.text();
      };
      if (key >= ArgKey::CollectiveName) ev_.collective = true;
      switch (key) {
        case ArgKey::Correlation:
          if (isInteger) ev_.correlation = n;
          break;
        case ArgKey::Device:
          if (isInteger) ev_.device = n;
          break;
        case ArgKey::Stream:
          if (isInteger) ev_.stream = n;
          break;
        case ArgKey::Bytes:
          if (isInteger && n >= 0) ev_.bytes = n;
          break;
        case ArgKey::Name:
          text(ev_.argName);
          break;
        case ArgKey::CollectiveName:
          text(c.name);
          break;
        case ArgKey::Dtype:
          text(c.dtype);
          break;
        case ArgKey::InNelems:
          if (isInteger) c.in_nelems = n;
          break;
        case ArgKey::OutNelems:
          if (isInteger) c.out_nelems = n;
          break;
        case ArgKey::GroupSize:
          if (isInteger) c.group_size = static_cast<int32_t>(n);
          break;
        case ArgKey::GroupName:
          text(c.group_name);
          break;
        case ArgKey::GroupDesc:
          text(c.group_desc);
          break;
        case ArgKey::GroupRanks:
          c.ranks = ranks(v);  // reads the whole value
          continue;
        case ArgKey::SrcRank:
          if (isInteger) c.src = static_cast<int32_t>(n);
          break;
        case ArgKey::DstRank:
          if (isInteger) c.dst = static_cast<int32_t>(n);
          break;
        case ArgKey::Other:
          break;
      }
      json_.skip(v);
    }
  }

  enum class EventKey : uint8_t { Other, Ph, Cat, Name, Ts, Dur, Pid, Tid, Id, Args };
  static EventKey eventKey(std::string_view k) {
    switch (k.size()) {
      case 2:
        return k == "ph"   ? EventKey::Ph
               : k == "ts" ? EventKey::Ts
               : k == "id" ? EventKey::Id
                           : EventKey::Other;
      case 3:
        return k == "cat"   ? EventKey::Cat
               : k == "dur" ? EventKey::Dur
               : k == "pid" ? EventKey::Pid
               : k == "tid" ? EventKey::Tid
                            : EventKey::Other;
      case 4:
        return k == "name" ? EventKey::Name : k == "args" ? EventKey::Args : EventKey::Other;
      default:
        return EventKey::Other;
    }
  }

  void readEvent() {
    ev_.reset();
    for (Token t = json_.next(); t != Token::ObjectEnd; t = json_.next()) {
      const EventKey key = eventKey(json_.text());
      const Token v = json_.next();
      switch (key) {
        case EventKey::Ph:
          if (v == Token::String && !json_.text().empty()) ev_.ph = json_.text()[0];
          break;
        case EventKey::Cat:
          if (v == Token::String) ev_.cat = json_.text();
          break;
        case EventKey::Name:
          if (v == Token::String) ev_.name = json_.text();
          break;
        case EventKey::Ts:
          if (v != Token::Number || !jsonMicrosToNanos(json_.text(), ev_.ts))
            badField("ts", "is not a time in microseconds");
          ev_.hasTs = true;
          break;
        case EventKey::Dur:
          if (v != Token::Number || !jsonMicrosToNanos(json_.text(), ev_.dur))
            badField("dur", "is not a duration in microseconds");
          break;
        case EventKey::Pid:
          idOf(v, ev_.pid);
          break;
        case EventKey::Tid:
          idOf(v, ev_.tid);
          break;
        case EventKey::Id:
          ev_.hasId = v == Token::Number && jsonInteger(json_.text(), ev_.id);
          break;
        case EventKey::Args:
          if (v == Token::ObjectBegin) {
            readArgs();
            continue;
          }
          break;
        case EventKey::Other:
          break;
      }
      json_.skip(v);
    }
    switch (ev_.ph) {
      case 'X':
        complete();
        break;
      case 's':
      case 'f':
        flow();
        break;
      case 'M':
        ++file_.counts.metadata;
        if (ev_.name == "process_name" && !ev_.argName.empty()) file_.process_names[ev_.pid] = ev_.argName;
        if (ev_.name == "thread_name" && !ev_.argName.empty())
          file_.thread_names[{ev_.pid, ev_.tid}] = ev_.argName;
        break;
      case 'i':
      case 'I':
        ++file_.counts.instants;
        break;
      case 'C':
        ++file_.counts.counters;
        break;
      default:
        ++file_.counts.unknown_phases;
        break;
    }
  }

  uint32_t track(bool gpu, int64_t pid, int64_t tid) {
    const KinetoTrack key{gpu, pid, tid};
    if (lastTrack_ < file_.tracks.size() && file_.tracks[lastTrack_] == key) return lastTrack_;
    auto [it, added] =
        trackIds_.try_emplace(TrackKey{gpu, pid, tid}, static_cast<uint32_t>(file_.tracks.size()));
    if (added) file_.tracks.push_back(key);
    lastTrack_ = it->second;
    return it->second;
  }

  void complete() {
    KinetoCounts& counts = file_.counts;
    if (ev_.cat == "Trace") {
      ++counts.profiler_spans;  // "PyTorch Profiler (0)": the profiling window itself, not work
      return;
    }
    std::optional<KinetoKind> kind = kindOf(ev_.cat);
    if (!ev_.hasTs) {
      ++counts.without_time;
      return;
    }
    if (!kind) {
      kind = KinetoKind::Other;
      ++counts.unknown_categories;
      if (counts.unknown_category_names.size() < kUnknownCategoryNamesKept &&
          std::find(counts.unknown_category_names.begin(), counts.unknown_category_names.end(), ev_.cat) ==
              counts.unknown_category_names.end())
        counts.unknown_category_names.push_back(ev_.cat);
    }
    if (ev_.dur < 0) {
      ++counts.negative_durations;
      ev_.dur = 0;
    }
    if (ev_.dur == 0) ++counts.zero_durations;
    KinetoEvent e;
    e.ts = ev_.ts;
    e.dur = ev_.dur;
    e.kind = *kind;
    e.name = names_.intern(ev_.name);
    const bool gpu = isGpuKind(*kind);
    // GPU work is placed by its device and stream (args), which Kineto also writes as pid and tid.
    e.track = gpu ? track(true, ev_.device.value_or(ev_.pid), ev_.stream.value_or(ev_.tid))
                  : track(false, ev_.pid, ev_.tid);
    e.correlation = ev_.correlation;
    e.bytes = ev_.bytes;
    if (ev_.collective) {
      e.collective = static_cast<int32_t>(file_.collectives.size());
      file_.collectives.push_back(std::move(ev_.coll));
      ev_.coll = KinetoCollective{};
      ev_.collective = false;
    }
    ++counts.kept[static_cast<size_t>(*kind)];
    file_.events.push_back(e);
  }

  void flow() {
    if (ev_.cat != "ac2g" || !ev_.hasId || !ev_.hasTs) {
      ++file_.counts.other_flows;
      return;
    }
    if (ev_.ph == 's') {
      ++file_.counts.flow_starts;
      file_.flow_starts.push_back({ev_.id, track(false, ev_.pid, ev_.tid), ev_.ts});
    } else {
      ++file_.counts.flow_ends;
      file_.flow_ends.push_back({ev_.id, track(true, ev_.pid, ev_.tid), ev_.ts});
    }
  }

  struct TrackKey {
    bool gpu;
    int64_t pid, tid;
    bool operator==(const TrackKey&) const = default;
  };
  struct TrackKeyHash {
    size_t operator()(const TrackKey& k) const {
      return std::hash<int64_t>{}(k.pid * 1000003 + k.tid) ^ (k.gpu ? 0x9e3779b97f4a7c15ull : 0);
    }
  };

  TraceInput& input_;
  JsonReader json_;
  NameTable& names_;
  const KinetoReadOptions& options_;
  KinetoFile file_;
  EventFields ev_;
  std::unordered_map<TrackKey, uint32_t, TrackKeyHash> trackIds_;
  uint32_t lastTrack_ = UINT32_MAX;
  std::map<std::string, int64_t> textIds_;
};

}  // namespace

KinetoFile readKinetoTrace(TraceInput& input, NameTable& names, const KinetoReadOptions& options) {
  Reader reader(input, names, options);
  KinetoFile file = reader.read();
  if (options.progress) options.progress(input.fileOffset());
  return file;
}

std::vector<int32_t> parseRankList(std::string_view text) {
  std::vector<int32_t> out;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    if (*p >= '0' && *p <= '9') {
      int32_t v = 0;
      const auto [next, ec] = std::from_chars(p, end, v);
      if (ec != std::errc()) return {};
      out.push_back(v);
      p = next;
    } else {
      ++p;
    }
  }
  return out;
}

int32_t dtypeBytes(std::string_view dtype) {
  struct Size {
    std::string_view name;
    int32_t bytes;
  };
  // c10::ScalarType names, as the profiler writes them.
  static constexpr std::array<Size, 20> kSizes = {{
      {"Double", 8},
      {"Float", 4},
      {"Half", 2},
      {"BFloat16", 2},
      {"Long", 8},
      {"Int", 4},
      {"Short", 2},
      {"Char", 1},
      {"Byte", 1},
      {"Bool", 1},
      {"ComplexFloat", 8},
      {"ComplexDouble", 16},
      {"UInt16", 2},
      {"UInt32", 4},
      {"UInt64", 8},
      {"Float8_e4m3fn", 1},
      {"Float8_e5m2", 1},
      {"Float8_e4m3fnuz", 1},
      {"Float8_e5m2fnuz", 1},
      {"Float8_e8m0fnu", 1},
  }};
  for (const Size& s : kSizes) {
    if (s.name == dtype) return s.bytes;
  }
  return 0;
}

}  // namespace moescope::storage
