// The import's speed and memory on a generated PyTorch profiler trace (issue 16: >= 150 MB/s of JSON,
// peak memory <= 0.5 x the JSON's size, on 1 GB). See docs/bench-import.md.
//
//   bench_import [--size-mb 1024] [--reps 3] [--dir /tmp] [--keep] [--gzip]
//
// Writes a Kineto-shaped trace of the given size (streamed to disk, as Kineto's ChromeTraceLogger
// writes it: pretty-printed events with their args), then, once per repetition and in turns:
//   import    moescope's whole import (importTraces) into a run file, in a child process;
//   tokenize  moescope's JSON tokenizer alone over the file;
//   sax       nlohmann-json's SAX parser over the file with a handler that does nothing.
// Each runs in a forked child so that its peak resident memory (wait4's ru_maxrss) is its own. Prints
// every repetition and the medians: wall seconds, MB/s of JSON, CPU seconds, peak RSS and RSS/JSON.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "storage/import_input.h"
#include "storage/import_json.h"
#include "storage/import_traces.h"

namespace {

namespace fs = std::filesystem;
using moescope::storage::ImportOptions;

// --- the generated trace -------------------------------------------------------------------------

class TraceText {
 public:
  explicit TraceText(const fs::path& path, bool gzip) : gzip_(gzip) {
    if (gzip) {
      gz_ = gzopen(path.c_str(), "wb6");
    } else {
      file_ = std::fopen(path.c_str(), "wb");
    }
    if (!gz_ && !file_) {
      std::perror(path.c_str());
      std::exit(1);
    }
  }
  ~TraceText() {
    if (gz_) gzclose(gz_);
    if (file_) std::fclose(file_);
  }
  template <typename... Args>
  void put(const char* format, Args... args) {
    const int n = std::snprintf(buf_, sizeof buf_, format, args...);
    if (gzip_) {
      gzwrite(gz_, buf_, static_cast<unsigned>(n));
    } else {
      std::fwrite(buf_, 1, static_cast<size_t>(n), file_);
    }
    bytes_ += static_cast<uint64_t>(n);
  }
  uint64_t bytes() const { return bytes_; }

 private:
  bool gzip_;
  gzFile gz_ = nullptr;
  FILE* file_ = nullptr;
  char buf_[4096];
  uint64_t bytes_ = 0;
};

// Events in Kineto's layout (libkineto output_json.cpp: writeCompleteEvent, writeFlowEvent).
struct Generator {
  TraceText& out;
  int64_t ns = 1'000'000;  // time from the base, advancing
  int64_t correlation = 0, external = 0;
  static constexpr int kPid = 4242, kMain = 4242, kAutograd = 4250, kDevice = 0, kCompute = 7, kComm = 20;

  static std::string ts(int64_t t) {
    char b[40];
    std::snprintf(b, sizeof b, "%lld.%03lld", static_cast<long long>(t / 1000),
                  static_cast<long long>(t % 1000));
    return b;
  }
  void complete(const char* cat, const char* name, int pid, int tid, int64_t start, int64_t dur,
                const std::string& args) {
    out.put(R"JSON(
  {
    "ph": "X", "cat": "%s", "name": "%s", "pid": %d, "tid": %d,
    "ts": %s, "dur": %s,
    "args": {
      %s
    }
  },)JSON",
            cat, name, pid, tid, ts(start).c_str(), ts(dur).c_str(), args.c_str());
  }
  void flow(char ph, int64_t id, int pid, int tid, int64_t t) {
    out.put(R"JSON(
  {
    "ph": "%c", "id": %lld, "pid": %d, "tid": %d, "ts": %s,
    "cat": "ac2g", "name": "ac2g"%s
  },)JSON",
            ph, static_cast<long long>(id), pid, tid, ts(t).c_str(), ph == 'f' ? R"(, "bp": "e")" : "");
  }
  // One op on a host thread that launches one kernel: cpu_op, cudaLaunchKernel, kernel, two flows.
  void op(int tid, const char* name, const char* kernel, int stream, int64_t dur,
          const std::string& collective = "") {
    const int64_t start = ns;
    const int64_t ext = ++external, corr = ++correlation;
    complete(
        "cpu_op", name, kPid, tid, start, dur,
        "\"External id\": " + std::to_string(ext) +
            ",\"Record function id\": 0, \"Ev Idx\": " + std::to_string(ext) +
            ", \"Input Dims\": [[8, 1024, 2048], [2048, 6144]], \"Input type\": [\"c10::BFloat16\", "
            "\"c10::BFloat16\"], \"Input Strides\": [[2097152, 2048, 1], [1, 2048]], \"Concrete Inputs\": "
            "[\"\", \"\"]" +
            collective);
    const int64_t launch = start + dur / 3;
    complete("cuda_runtime", "cudaLaunchKernel", kPid, tid, launch, 4'100,
             "\"External id\": " + std::to_string(ext) +
                 ", \"cbid\": 211, \"correlation\": " + std::to_string(corr));
    flow('s', corr, kPid, tid, launch);
    const int64_t kstart = launch + 20'000;
    complete("kernel", kernel, kDevice, stream, kstart, dur * 2,
             "\"External id\": " + std::to_string(ext) +
                 ", \"queued\": 0, \"device\": 0, \"context\": 1, \"stream\": " + std::to_string(stream) +
                 ", \"correlation\": " + std::to_string(corr) +
                 ", \"registers per thread\": 168, \"shared memory\": 98304, \"blocks per SM\": 1.939394, "
                 "\"warps per SM\": 7.757576, \"grid\": [256, 1, 1], \"block\": [128, 1, 1], \"est. achieved "
                 "occupancy %\": 12" +
                 collective);
    flow('f', corr, kDevice, stream, kstart);
    ns = start + dur + 1'000;
  }
  void layer(int tid, int index) {
    const int64_t start = ns;
    ns += 500;
    for (const char* name :
         {"aten::layer_norm", "aten::linear", "aten::_scaled_dot_product_flash_attention", "aten::linear",
          "aten::layer_norm", "aten::linear", "aten::gelu", "aten::linear"}) {
      op(tid, name, "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute",
         kCompute, 20'000);
    }
    const std::string module = "nn.Module: TransformerLayer_" + std::to_string(index);
    complete("python_function", module.c_str(), kPid, tid, start, ns - start, "\"Python id\": 1");
    ns += 500;
  }
  void step(int s) {
    const int64_t stepStart = ns;
    const std::string comm =
        ", \"Collective name\": \"send\", \"dtype\": \"BFloat16\", \"In msg nelems\": 16777216, \"Out msg "
        "nelems\": "
        "16777216, \"Group size\": 2, \"Process Group Name\": \"1\", \"Process Group Description\": \"pp\", "
        "\"Process Group Ranks\": \"[0, 1]\", \"Dst Rank\": 1";
    for (int mb = 0; mb < 4; ++mb) {
      const int64_t start = ns;
      for (int l = 0; l < 4; ++l) layer(kMain, l);
      complete("python_function", "megatron/core/pipeline_parallel/schedules.py(403): forward_step", kPid,
               kMain, start, ns - start, "\"Python id\": 2");
      op(kMain, "record_param_comms", "ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", kComm,
         30'000, comm);
    }
    for (int mb = 0; mb < 4; ++mb) {
      const int64_t start = ns;
      for (int l = 0; l < 4; ++l) {
        for (int k = 0; k < 8; ++k)
          op(kAutograd, "autograd::engine::evaluate_function: AddmmBackward0",
             "sm90_xmma_gemm_bf16bf16_bf16f32_f32_nt_n_tilesize128x128x64_warpgroupsize1x1x1_execute",
             kCompute, 25'000);
      }
      complete("python_function", "megatron/core/pipeline_parallel/schedules.py(539): backward_step", kPid,
               kMain, start, ns - start, "\"Python id\": 3");
    }
    const std::string name = "ProfilerStep#" + std::to_string(s);
    complete("user_annotation", name.c_str(), kPid, kMain, stepStart, ns - stepStart, "\"External id\": 1");
    complete("gpu_user_annotation", name.c_str(), kDevice, kCompute, stepStart + 20'000, ns - stepStart,
             "\"External id\": 1");
  }
};

void generate(const fs::path& path, uint64_t bytes, bool gzip, int rank, int world) {
  TraceText out(path, gzip);
  out.put(R"JSON({
  "schemaVersion": 1,
  "deviceProperties": [
    {
      "id": 0, "name": "NVIDIA H200", "totalGlobalMem": 150754820096,
      "computeMajor": 9, "computeMinor": 0,
      "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,
      "regsPerBlock": 65536, "warpSize": 32,
      "sharedMemPerBlock": 49152, "numSms": 132
    }
  ],
  "distributedInfo": {"backend": "nccl", "rank": %d, "world_size": %d, "nccl_version": "2.28.3"},
  "record_shapes": 1,
  "displayTimeUnit": "ms",
  "baseTimeNanoseconds": 1700000000000000000,
  "traceEvents": [)JSON",
          rank, std::max(world, 2));
  Generator g{out};
  for (int s = 0; out.bytes() < bytes; ++s) g.step(s);
  out.put(R"JSON(
  {
    "ph": "i", "s": "g", "name": "Record Window End", "pid": "", "tid": "",
    "ts": %s
  }
  ],
  "traceName": "bench.pt.trace.json"
})JSON",
          Generator::ts(g.ns).c_str());
}

// --- the measured runs ---------------------------------------------------------------------------

struct Measure {
  double wall = 0, cpu = 0;
  long maxRssKb = 0;
};

template <typename Work>
Measure inChild(Work work) {
  std::fflush(stdout);  // or the child would print the parent's buffered lines again
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    const int rc = work();
    std::fflush(stdout);
    _exit(rc);
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  Measure m;
  m.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
          static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  m.maxRssKb = usage.ru_maxrss;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench_import: a measured run failed (status %d)\n", status);
    std::exit(1);
  }
  return m;
}

struct NullSax : nlohmann::json_sax<nlohmann::json> {
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t sizeMb = 1024;
  int reps = 3;
  fs::path dir = fs::temp_directory_path();
  bool keep = false, gzip = false;
  int ranks = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--size-mb" && i + 1 < argc) {
      sizeMb = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--gzip") {
      gzip = true;
    } else if (a == "--ranks" && i + 1 < argc) {
      ranks = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(
          stderr, "usage: bench_import [--size-mb N] [--ranks N] [--reps N] [--dir DIR] [--keep] [--gzip]\n");
      return 2;
    }
  }
  // One file per rank, the size shared out among them (a run's trace is its ranks' files together).
  std::vector<fs::path> traces;
  for (int r = 0; r < ranks; ++r) {
    const std::string name = "moescope-bench-import-rank" + std::to_string(r) + ".pt.trace.json";
    traces.push_back(dir / (gzip ? name + ".gz" : name));
  }
  const fs::path run = dir / "moescope-bench-import.moescope";
  auto t0 = std::chrono::steady_clock::now();
  double jsonBytes = 0, diskBytes = 0;
  for (int r = 0; r < ranks; ++r) {
    generate(traces[static_cast<size_t>(r)], (sizeMb << 20) / static_cast<uint64_t>(ranks), gzip, r, ranks);
    auto in = moescope::storage::TraceInput::open(traces[static_cast<size_t>(r)]);
    std::vector<char> buf(1 << 20);
    for (size_t got; (got = in->read(buf.data(), buf.size())) > 0;) jsonBytes += static_cast<double>(got);
    diskBytes += static_cast<double>(fs::file_size(traces[static_cast<size_t>(r)]));
  }
  std::printf("trace: %d file(s) like %s, %.1f MB of JSON%s (%.1f MB on disk), written in %.1f s\n", ranks,
              traces[0].c_str(), jsonBytes / 1e6, gzip ? " gzipped" : "", diskBytes / 1e6,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  const std::map<std::string, std::function<int()>> modes = {
      {"import",
       [&] {
         ImportOptions o;
         o.traces = traces;
         o.output = run;
         o.pp = ranks;
         const auto s = moescope::storage::importTraces(o);
         std::printf("    import: %lld spans, %lld GPU records\n", static_cast<long long>(s.spans),
                     static_cast<long long>(s.gpu_records));
         return 0;
       }},
      {"tokenize",
       [&] {
         size_t n = 0;
         for (const fs::path& trace : traces) {
           auto in = moescope::storage::TraceInput::open(trace);
           moescope::storage::JsonReader r(*in);
           while (r.next() != moescope::storage::JsonReader::Token::End) ++n;
         }
         return n > 0 ? 0 : 1;
       }},
      {"sax",
       [&] {
         NullSax sax;
         for (const fs::path& trace : traces) {
           std::ifstream in(trace, std::ios::binary);
           if (!nlohmann::json::sax_parse(in, &sax)) return 1;
         }
         return 0;
       }},
  };
  std::map<std::string, std::vector<double>> wall, cpu, rss;
  std::printf("%-9s %4s %8s %9s %8s %10s %8s\n", "mode", "rep", "wall s", "MB/s", "CPU s", "peak RSS",
              "RSS/JSON");
  for (int r = 0; r < reps; ++r) {
    for (const auto& [name, work] : modes) {
      if (gzip && name == "sax") continue;
      fs::remove(run);
      const Measure m = inChild(work);
      const double mbps = jsonBytes / m.wall / 1e6;
      const double rssMb = static_cast<double>(m.maxRssKb) / 1024.0;
      std::printf("%-9s %4d %8.2f %9.1f %8.2f %7.0f MB %8.3f\n", name.c_str(), r, m.wall, mbps, m.cpu, rssMb,
                  rssMb * 1048576.0 / jsonBytes);
      std::fflush(stdout);
      wall[name].push_back(m.wall);
      cpu[name].push_back(m.cpu);
      rss[name].push_back(rssMb);
    }
  }
  std::printf("\nmedians of %d (JSON %.1f MB)\n", reps, jsonBytes / 1e6);
  for (const auto& [name, w] : wall) {
    const double mw = median(w);
    std::printf(
        "%-9s wall %.2f s = %.1f MB/s; CPU %.2f s = %.1f MB/s of CPU; peak RSS %.0f MB = %.3f x JSON\n",
        name.c_str(), mw, jsonBytes / mw / 1e6, median(cpu[name]), jsonBytes / median(cpu[name]) / 1e6,
        median(rss[name]), median(rss[name]) * 1048576.0 / jsonBytes);
  }
  if (!keep) {
    for (const fs::path& trace : traces) fs::remove(trace);
    fs::remove(run);
  }
  return 0;
}
