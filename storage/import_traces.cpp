#include "storage/import_traces.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <set>

#include "storage/import_error.h"
#include "storage/import_input.h"
#include "storage/import_kineto.h"
#include "storage/import_output.h"
#include "storage/import_rank_writer.h"
#include "storage/import_resolve.h"
#include "storage/rules.h"
#include "storage/run_writer.h"

namespace moescope::storage {
namespace {

// Two traces whose recorded windows lie further apart than this are not of one run: the ranks of a run
// profile the same steps, so their windows overlap up to the hosts' clock offsets (NTP keeps those
// well under a second).
constexpr int64_t kMaxWindowGapNs = 10'000'000'000;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

// The host a file name from torch.profiler.tensorboard_trace_handler carries:
// "<host>_<pid>.<time>.pt.trace.json[.gz]".
std::string hostFromFileName(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.find(".pt.trace.json") == std::string::npos) return {};
  const std::string worker = name.substr(0, name.find('.'));
  const size_t underscore = worker.rfind('_');
  if (underscore == std::string::npos || underscore == 0 || underscore + 1 == worker.size()) return {};
  if (worker.find_first_not_of("0123456789", underscore + 1) != std::string::npos) return {};
  return worker.substr(0, underscore);
}

struct FileSummary {
  std::string path;
  int32_t rank = 0;
  int32_t world = -1;
  std::map<std::string, std::string> job;
  std::string ncclVersion;
  int64_t first = 0, last = 0;  // the recorded window on the run clock
  bool hasEvents = false;
};

std::string seconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(ns) / 1e9);
  return buf;
}

// Refuses a trace that cannot be of the same run as those read before it.
void checkSameRun(const FileSummary& f, const std::vector<FileSummary>& before) {
  for (const FileSummary& b : before) {
    const std::string pair = b.path + " and " + f.path;
    if (b.rank == f.rank)
      throw ImportError(pair + " are both rank " + std::to_string(f.rank) +
                        ": traces of one rank twice, or of different runs");
    if (b.world > 0 && f.world > 0 && b.world != f.world)
      throw ImportError(pair + " have world sizes " + std::to_string(b.world) + " and " +
                        std::to_string(f.world) + ": traces of different runs");
    for (const auto& [key, value] : f.job) {
      const auto it = b.job.find(key);
      if (it != b.job.end() && it->second != value)
        throw ImportError(pair + " have " + key + " " + it->second + " and " + value +
                          ": traces of different runs");
    }
    if (!b.ncclVersion.empty() && !f.ncclVersion.empty() && b.ncclVersion != f.ncclVersion)
      throw ImportError(pair + " have NCCL versions " + b.ncclVersion + " and " + f.ncclVersion +
                        ": traces of different runs");
    if (b.hasEvents && f.hasEvents) {
      const int64_t gap = std::max(b.first, f.first) - std::min(b.last, f.last);
      if (gap > kMaxWindowGapNs)
        throw ImportError(pair + " were recorded " + seconds(gap) +
                          " s apart (by their hosts' clocks): traces of different runs");
    }
  }
}

ParallelLayout layoutFor(const ImportOptions& o, int32_t world) {
  std::string error;
  const auto order = parseRankOrder(o.order, error);
  if (!order) throw ImportError(error);
  ParallelLayout l;
  l.order = *order;
  for (const auto& [name, v] : {std::pair{"--pp", o.pp}, std::pair{"--tp", o.tp}, std::pair{"--dp", o.dp}}) {
    if (v && *v < 1) throw ImportError(std::string(name) + " must be at least 1");
  }
  l.pp = o.pp.value_or(1);
  l.tp = o.tp.value_or(1);
  if (o.dp) {
    l.dp = *o.dp;
  } else {
    if (world % (l.pp * l.tp) != 0)
      throw ImportError("pp " + std::to_string(l.pp) + " x tp " + std::to_string(l.tp) +
                        " does not divide the world size " + std::to_string(world) + " of the traces");
    l.dp = world / (l.pp * l.tp);
  }
  if (l.world() != world)
    throw ImportError("the layout pp " + std::to_string(l.pp) + " x tp " + std::to_string(l.tp) + " x dp " +
                      std::to_string(l.dp) + " = " + std::to_string(l.world()) +
                      " ranks, but the traces' world size is " + std::to_string(world));
  return l;
}

void addCounts(std::map<std::string, int64_t>& total, const KinetoFile& f, const RankResolution& r) {
  const KinetoCounts& c = f.counts;
  total["import.events"] += c.events;
  total["import.cpu_ops"] += c.kept[static_cast<size_t>(KinetoKind::CpuOp)];
  total["import.user_annotations"] += c.kept[static_cast<size_t>(KinetoKind::UserAnnotation)];
  total["import.python_functions"] += c.kept[static_cast<size_t>(KinetoKind::PythonFunction)];
  total["import.cuda_runtime"] += c.kept[static_cast<size_t>(KinetoKind::CudaRuntime)];
  total["import.cuda_driver"] += c.kept[static_cast<size_t>(KinetoKind::CudaDriver)];
  total["import.gpu_user_annotations"] += c.kept[static_cast<size_t>(KinetoKind::GpuUserAnnotation)];
  total["import.cuda_sync"] += c.kept[static_cast<size_t>(KinetoKind::GpuSync)];
  total["import.kernels"] += c.kept[static_cast<size_t>(KinetoKind::Kernel)];
  total["import.memcpy"] += c.kept[static_cast<size_t>(KinetoKind::Memcpy)];
  total["import.memset"] += c.kept[static_cast<size_t>(KinetoKind::Memset)];
  total["import.unknown_categories"] += c.unknown_categories;
  total["import.flows_ac2g"] += c.flow_starts;
  total["import.negative_durations"] += c.negative_durations;
  total["import.zero_durations"] += c.zero_durations;
  total["import.skipped"] += c.metadata + c.instants + c.counters + c.profiler_spans + c.unknown_phases +
                             c.without_time + c.other_flows + c.flow_starts + c.flow_ends;
  total["import.linked_by_correlation"] += r.counts.linked_by_correlation;
  total["import.linked_by_flow"] += r.counts.linked_by_flow;
  total["import.unlinked_gpu_records"] += r.counts.unlinked;
  total["import.user_spans"] += r.counts.user_spans;
  total["import.collectives"] += r.counts.collectives;
  total["import.passes"] += r.counts.passes;
  total["import.numbered_passes"] += r.counts.numbered_passes;
}

void noteAnomalies(const KinetoFile& f, const RankResolution& r, std::vector<std::string>& notes) {
  const KinetoCounts& c = f.counts;
  if (c.unknown_categories > 0) {
    std::string names;
    for (const std::string& n : c.unknown_category_names) names += (names.empty() ? "" : ", ") + n;
    notes.push_back(f.path + ": " + std::to_string(c.unknown_categories) + " events of unknown categories (" +
                    names + ") kept as user");
  }
  if (c.negative_durations > 0)
    notes.push_back(f.path + ": " + std::to_string(c.negative_durations) +
                    " events with a negative duration taken as 0");
  if (c.without_time > 0)
    notes.push_back(f.path + ": " + std::to_string(c.without_time) +
                    " complete events without a time left out");
  if (c.unknown_phases > 0)
    notes.push_back(f.path + ": " + std::to_string(c.unknown_phases) +
                    " events of phases other than X, s, f, M, i, C left out");
  if (r.counts.unlinked > 0)
    notes.push_back(f.path + ": " + std::to_string(r.counts.unlinked) +
                    " GPU records whose launching call is not in the trace (kept, drawn without a category)");
}

}  // namespace

std::optional<int32_t> rankFromFileName(const std::filesystem::path& path) {
  const std::string name = lower(path.filename().string());
  std::optional<int32_t> found;
  for (size_t at = name.find("rank"); at != std::string::npos; at = name.find("rank", at + 1)) {
    size_t p = at + 4;
    if (p < name.size() && (name[p] == '-' || name[p] == '_' || name[p] == '.')) ++p;
    size_t q = p;
    while (q < name.size() && name[q] >= '0' && name[q] <= '9' && q - p < 9) ++q;
    if (q > p) found = std::stoi(name.substr(p, q - p));
  }
  return found;
}

ImportSummary importTraces(const ImportOptions& options) {
  if (options.traces.empty()) throw ImportError("no trace to import");
  if (options.output.empty()) throw ImportError("no output file");
  if (options.rank && options.traces.size() != 1)
    throw ImportError("--rank names the rank of a single trace; " + std::to_string(options.traces.size()) +
                      " were given");
  if (options.rank && *options.rank < 0) throw ImportError("--rank must be 0 or more");
  std::error_code ec;
  uint64_t total = 0;
  for (const auto& t : options.traces) {
    if (std::filesystem::exists(options.output, ec) && std::filesystem::equivalent(options.output, t, ec))
      throw ImportError(options.output.string() + ": the output is one of the traces; it would be replaced");
    total += std::filesystem::file_size(t, ec);
  }
  const RuleSet rules = rulesFor(options.rules);
  {
    std::string error;
    if (!parseRankOrder(options.order, error)) throw ImportError(error);
  }

  ImportOutput output(options.output);
  RunInfo run;
  run.name = options.output.stem().string();
  run.backend = "pytorch";
  run.layout = "imported";
  run.clock =
      "host wall clock per rank (Kineto baseTimeNanoseconds + ts); ranks aligned by their hosts' clocks";
  run.schedule = options.schedule;
  auto writer = RunWriter::create(output.temporary(), run);

  ImportSummary summary;
  std::vector<FileSummary> seen;
  std::map<std::string, int64_t> counts;
  std::map<int32_t, StepWindow> steps;
  std::vector<RankInfo> rankInfos;
  std::map<std::string, int32_t> deviceNames;  // GPU name -> ranks on it
  std::optional<ParallelLayout> layout;
  int32_t world = -1;
  int64_t runStart = INT64_MAX, runEnd = INT64_MIN;

  // Files are read one ahead: while one rank is resolved and written, a second thread reads the next
  // (bench_import: a 1 GB trace of 4 ranks imported in 0.xx of the CPU-bound time). A file keeps its own
  // name table, so the two threads share only the progress report and the cancel flag.
  struct ReadFile {
    NameTable names;
    KinetoFile file;
  };
  uint64_t readDone = 0;  // the reading thread's, files read one after another
  std::atomic<bool> abandon{false};
  auto readAt = [&](size_t i) {
    auto r = std::make_unique<ReadFile>();
    auto input = TraceInput::open(options.traces[i]);
    KinetoReadOptions readOptions;
    readOptions.progress = [&](uint64_t offset) {
      if (abandon.load() || (options.cancel && options.cancel->load())) throw ImportCancelled();
      if (options.progress) options.progress(readDone + offset, total);
    };
    r->file = readKinetoTrace(*input, r->names, readOptions);
    readDone += input->fileSize();
    return r;
  };
  std::future<std::unique_ptr<ReadFile>> next = std::async(std::launch::async, readAt, 0);
  // Leaving early (an error, a cancel) stops a read in flight at its next progress report before
  // `next` waits for it.
  struct Abandon {
    std::atomic<bool>& flag;
    ~Abandon() { flag = true; }
  } abandonOnExit{abandon};

  for (size_t index = 0; index < options.traces.size(); ++index) {
    const std::filesystem::path& path = options.traces[index];
    if (options.cancel && options.cancel->load()) throw ImportCancelled();
    const std::unique_ptr<ReadFile> current = next.get();
    if (index + 1 < options.traces.size()) next = std::async(std::launch::async, readAt, index + 1);
    const KinetoFile& file = current->file;
    const NameTable& names = current->names;
    std::vector<NameFields> nameCache;
    std::vector<bool> nameCached;
    std::vector<uint32_t> writerNames;

    FileSummary fs;
    fs.path = path.string();
    if (options.rank) {
      fs.rank = *options.rank;
    } else if (file.distributed && file.distributed->rank >= 0) {
      fs.rank = file.distributed->rank;
    } else if (auto r = rankFromFileName(path)) {
      fs.rank = *r;
      summary.notes.push_back(fs.path + ": no rank in the trace (distributedInfo); rank " +
                              std::to_string(fs.rank) + " from the file name");
    } else if (options.traces.size() == 1) {
      fs.rank = 0;
      summary.notes.push_back(fs.path +
                              ": no rank in the trace or its file name; taken as rank 0 (--rank sets it)");
    } else {
      throw ImportError(
          fs.path + ": no rank in the trace (distributedInfo) or its file name; import it alone with --rank");
    }
    if (file.distributed) {
      fs.world = file.distributed->world_size;
      fs.ncclVersion = file.distributed->nccl_version;
    }
    fs.job = file.job;
    const int64_t base = file.base_time_ns.value_or(0);
    for (const KinetoEvent& e : file.events) {
      const int64_t s = base + e.ts;
      if (!fs.hasEvents || s < fs.first) fs.first = s;
      if (!fs.hasEvents || s + e.dur > fs.last) fs.last = s + e.dur;
      fs.hasEvents = true;
    }
    checkSameRun(fs, seen);
    if (!layout) {
      world = fs.world > 0 ? fs.world
                           : std::max<int32_t>(static_cast<int32_t>(options.traces.size()), fs.rank + 1);
      layout = layoutFor(options, world);
      summary.layout = *layout;
    }
    if (fs.rank >= world)
      throw ImportError(fs.path + ": rank " + std::to_string(fs.rank) + " is outside the world size " +
                        std::to_string(world));

    const RankCoord coord = rankCoord(*layout, fs.rank);
    ResolveContext ctx{rules, names, nameCache, nameCached, *layout, options.schedule};
    const RankResolution res = resolveRank(file, coord.stage, ctx);

    ImportedRank ir;
    ir.rank = fs.rank;
    ir.trace = fs.path;
    ir.stage = coord.stage;
    ir.tp_rank = coord.tp;
    ir.dp_rank = coord.dp;
    ir.device = res.device;
    ir.host = !file.host_name.empty() ? file.host_name : hostFromFileName(path);
    if (res.stage_from_names != kNone && res.stage_from_names != coord.stage)
      summary.notes.push_back(fs.path + ": names say stage " + std::to_string(res.stage_from_names) +
                              ", the layout " + std::to_string(coord.stage) + "; the layout's is kept");
    RankWriter(*writer, names, writerNames).write(file, res, fs.rank, ir);
    writer->addRank({fs.rank, coord.stage, coord.tp, coord.dp, ir.device, ir.host});
    for (const KinetoDevice& d : file.devices) {
      if (d.id == ir.device && !d.name.empty()) ++deviceNames[d.name];
    }
    for (const StepWindow& w : res.steps) {
      auto [it, added] = steps.try_emplace(w.step, w);
      if (!added) {
        it->second.start = std::min(it->second.start, w.start);
        it->second.end = std::max(it->second.end, w.end);
      }
    }
    summary.microbatches = std::max(summary.microbatches, res.microbatches);
    summary.spans += ir.spans;
    summary.gpu_records += ir.kernels + ir.memcpys + ir.memsets;
    if (fs.hasEvents) {
      runStart = std::min(runStart, fs.first);
      runEnd = std::max(runEnd, fs.last);
    }
    addCounts(counts, file, res);
    noteAnomalies(file, res, summary.notes);
    writer->setMeta("import.trace.rank" + std::to_string(fs.rank), fs.path);
    summary.ranks.push_back(std::move(ir));
    seen.push_back(std::move(fs));
  }
  if (options.progress) options.progress(total, total);

  for (const auto& [s, w] : steps) {
    StepMetric m;
    m.step = s;
    m.start_ns = w.start;
    m.end_ns = w.end;
    m.step_ms = static_cast<double>(w.end - w.start) / 1e6;
    writer->addStepMetric(m);
  }
  summary.steps = static_cast<int32_t>(steps.size());
  for (const auto& [key, value] : counts) writer->setMeta(key, std::to_string(value));
  writer->setMeta("import.clock",
                  "each rank at its trace's baseTimeNanoseconds + ts: aligned by the hosts' clocks, "
                  "which are not synchronised by the import");
  writer->setMeta("import.layout", "pp " + std::to_string(layout->pp) + " tp " + std::to_string(layout->tp) +
                                       " dp " + std::to_string(layout->dp) + " order " +
                                       rankOrderName(layout->order));
  std::string ruleFiles;
  for (const auto& r : options.rules) ruleFiles += r.string() + " ";
  writer->setMeta("import.rules",
                  ruleFiles + (rules.size() > 0 ? "(" + std::to_string(rules.size()) + " rules)" : ""));

  run.pp = layout->pp;
  run.tp = layout->tp;
  run.dp = layout->dp;
  run.microbatches = std::max(1, summary.microbatches);
  std::string devices;
  for (const auto& [name, n] : deviceNames)
    devices += (devices.empty() ? "" : ", ") + std::to_string(n) + " x " + name;
  run.devices = devices;
  run.config = "# imported from PyTorch profiler traces\n[import]\ntraces = [";
  for (size_t i = 0; i < options.traces.size(); ++i)
    run.config += (i ? ", \"" : "\"") + options.traces[i].string() + "\"";
  run.config += "]\npp = " + std::to_string(layout->pp) + "\ntp = " + std::to_string(layout->tp) +
                "\ndp = " + std::to_string(layout->dp) + "\norder = \"" + rankOrderName(layout->order) +
                "\"\nschedule = \"" + std::string(scheduleName(options.schedule)) + "\"\n";
  run.status = RunStatus::Complete;
  run.start_ns = runStart == INT64_MAX ? 0 : runStart;
  run.end_ns = runEnd == INT64_MIN ? 0 : runEnd;
  writer->updateRun(run);
  writer->finish();
  writer.reset();  // closes the file (and folds the WAL back in) before it moves
  if (options.cancel && options.cancel->load()) throw ImportCancelled();
  output.commit();
  return summary;
}

}  // namespace moescope::storage
