// An experiment behind the run file's span table: how fast raw SQLite inserts span rows on this
// machine, for each way of declaring and filling the table that docs/bench-storage.md discusses. The
// rows are the synthetic run of bench_storage (4 stages x 2 tp x 2 dp, 16 host tracks), written in
// batches of 4096 spans per track, interleaved across tracks, as the tracer's flush thread writes
// them. Each variant runs --reps times, the variants taking turns so that a busy machine slows them
// alike; it prints the median wall and CPU (process) time, from the first INSERT to the file closed,
// and the file's bytes per row. Not a test; the winner is what storage/run_writer.cpp does.
//
//   bench_sqlite_insert [--rows N] [--reps R] [--memstatus 0|1] VARIANT...
//
// A VARIANT is a comma-separated list of options, "base" alone for the defaults (the v1 writer
// before this experiment: 12 NOT NULL columns, -1 for none, the (track, start) index maintained
// while inserting, 64 rows per INSERT, 4 KiB pages, synchronous=NORMAL, SQLite's secure_delete):
//   index=live|after|none  the (track, start) index: maintained, created at the end, or none
//   wor                    WITHOUT ROWID table, PRIMARY KEY (track, start, id)
//   idindex=live|after     with wor: an index on id (for reading by id ranges)
//   nulls                  NULL for a missing step/micro-batch/layer/expert and for bytes 0
//   nullable               no NOT NULL constraints on step..bytes (implied by nulls)
//   autoid                 id left to SQLite (max(rowid) + 1) instead of bound
//   cols=N                 only the first N columns (id, track, start, end, name, ...), as in 8
//   rows=N                 rows per INSERT statement
//   vtab                   INSERT ... SELECT from a table-valued function over the batch in memory
//                          (one statement per batch, no bound values)
//   page=BYTES cache=KIB sync=off|normal secdel=0|1 threads=N tempmem excl
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "storage/synthetic.h"

namespace {

using moescope::storage::kNone;
using moescope::storage::SpanRecord;

struct Variant {
  std::string text;
  std::string index = "live";
  bool withoutRowid = false;
  std::string idIndex = "none";
  bool nulls = false, notNull = true, autoId = false, tempMem = false, exclusive = false, vtab = false;
  int cols = 12, rowsPerInsert = 64, pageSize = 4096, cacheKiB = 65536, threads = 0;
  bool syncOff = false, secureDelete = true;
};

Variant parse(const std::string& text) {
  Variant v;
  v.text = text;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string opt = text.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t eq = opt.find('=');
    const std::string key = opt.substr(0, eq), value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    const int n = std::atoi(value.c_str());
    if (key == "base") {
    } else if (key == "index") {
      v.index = value;
    } else if (key == "wor") {
      v.withoutRowid = true;
    } else if (key == "idindex") {
      v.idIndex = value;
    } else if (key == "nulls") {
      v.nulls = true;
      v.notNull = false;
    } else if (key == "nullable") {
      v.notNull = false;
    } else if (key == "autoid") {
      v.autoId = true;
    } else if (key == "cols") {
      v.cols = n;
    } else if (key == "rows") {
      v.rowsPerInsert = n;
    } else if (key == "page") {
      v.pageSize = n;
    } else if (key == "cache") {
      v.cacheKiB = n;
    } else if (key == "sync") {
      v.syncOff = value == "off";
    } else if (key == "secdel") {
      v.secureDelete = n != 0;
    } else if (key == "threads") {
      v.threads = n;
    } else if (key == "tempmem") {
      v.tempMem = true;
    } else if (key == "vtab") {
      v.vtab = true;
    } else if (key == "excl") {
      v.exclusive = true;
    } else {
      std::fprintf(stderr, "unknown option '%s' in '%s'\n", opt.c_str(), text.c_str());
      std::exit(2);
    }
  }
  return v;
}

constexpr const char* kColumns[12] = {"id",    "track", "start",      "\"end\"", "name",   "category",
                                      "phase", "step",  "microbatch", "layer",   "expert", "bytes"};

void check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

void exec(sqlite3* db, const std::string& sql) {
  check(db, sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), sql.c_str());
}

double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The spans in the order the tracer writes them: batches of 4096 per track, interleaved.
std::vector<SpanRecord> spansInWriteOrder(int64_t rows) {
  moescope::storage::SyntheticOptions o;
  o.stages = 4;
  o.tp = 2;
  o.dp = 2;
  o.microbatches = 8;
  o.spans = rows;
  std::vector<std::vector<SpanRecord>> perTrack;
  moescope::storage::SyntheticSink sink;
  sink.begin = [&](const auto&, auto, auto tracks, auto) { perTrack.resize(tracks.size()); };
  sink.spans = [&](std::span<const SpanRecord> spans) {
    for (const SpanRecord& s : spans) perTrack[static_cast<size_t>(s.track)].push_back(s);
  };
  sink.step = [](const auto&) {};
  moescope::storage::generateSynthetic(o, sink);
  std::vector<SpanRecord> out;
  constexpr size_t kBatch = 4096;
  for (size_t first = 0;; first += kBatch) {
    bool any = false;
    for (const auto& track : perTrack) {
      if (first >= track.size()) continue;
      any = true;
      out.insert(out.end(), track.begin() + static_cast<ptrdiff_t>(first),
                 track.begin() + static_cast<ptrdiff_t>(std::min(first + kBatch, track.size())));
    }
    if (!any) break;
  }
  out.resize(std::min<size_t>(out.size(), static_cast<size_t>(rows)));
  return out;
}

// span_batch(pointer): the rows of one batch as a table-valued function, so that a single
// INSERT ... SELECT writes a whole batch without binding its values one by one.
struct Batch {
  const SpanRecord* spans = nullptr;
  int64_t count = 0, firstId = 0;
  bool nulls = false;
};
constexpr const char* kBatchPointer = "moescope_span_batch";

struct BatchCursor {
  sqlite3_vtab_cursor base{};
  const Batch* batch = nullptr;
  int64_t row = 0;
};

int batchConnect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char**) {
  const int rc = sqlite3_declare_vtab(
      db,
      "CREATE TABLE x(id, track, start, \"end\", name, category, phase, step, microbatch, layer, expert, "
      "bytes, batch HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  *out = static_cast<sqlite3_vtab*>(sqlite3_malloc(sizeof(sqlite3_vtab)));
  **out = sqlite3_vtab{};
  return SQLITE_OK;
}
int batchDisconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}
int batchBestIndex(sqlite3_vtab*, sqlite3_index_info* info) {
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (c.iColumn == 12 && c.op == SQLITE_INDEX_CONSTRAINT_EQ && c.usable) {
      info->aConstraintUsage[i].argvIndex = 1;
      info->aConstraintUsage[i].omit = 1;
      info->estimatedCost = 1;
      return SQLITE_OK;
    }
  }
  return SQLITE_CONSTRAINT;
}
int batchOpen(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* c = new BatchCursor;
  *out = &c->base;
  return SQLITE_OK;
}
int batchClose(sqlite3_vtab_cursor* cur) {
  delete reinterpret_cast<BatchCursor*>(cur);
  return SQLITE_OK;
}
int batchFilter(sqlite3_vtab_cursor* cur, int, const char*, int argc, sqlite3_value** argv) {
  auto* c = reinterpret_cast<BatchCursor*>(cur);
  c->batch = argc > 0 ? static_cast<const Batch*>(sqlite3_value_pointer(argv[0], kBatchPointer)) : nullptr;
  c->row = 0;
  return SQLITE_OK;
}
int batchNext(sqlite3_vtab_cursor* cur) {
  ++reinterpret_cast<BatchCursor*>(cur)->row;
  return SQLITE_OK;
}
int batchEof(sqlite3_vtab_cursor* cur) {
  auto* c = reinterpret_cast<BatchCursor*>(cur);
  return !c->batch || c->row >= c->batch->count;
}
int batchColumn(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) {
  auto* c = reinterpret_cast<BatchCursor*>(cur);
  const SpanRecord& s = c->batch->spans[c->row];
  int64_t v = 0;
  switch (col) {
    case 0:
      v = c->batch->firstId + c->row;
      break;
    case 1:
      v = s.track;
      break;
    case 2:
      v = s.start;
      break;
    case 3:
      v = s.end;
      break;
    case 4:
      v = s.name;
      break;
    case 5:
      v = static_cast<int64_t>(s.category);
      break;
    case 6:
      v = static_cast<int64_t>(s.phase);
      break;
    case 7:
      v = s.step;
      break;
    case 8:
      v = s.microbatch;
      break;
    case 9:
      v = s.layer;
      break;
    case 10:
      v = s.expert;
      break;
    case 11:
      v = s.bytes;
      break;
    default:
      return SQLITE_OK;
  }
  if (c->batch->nulls && ((col >= 7 && col <= 10 && v == kNone) || (col == 11 && v == 0))) return SQLITE_OK;
  sqlite3_result_int64(ctx, v);
  return SQLITE_OK;
}
int batchRowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) {
  *rowid = reinterpret_cast<BatchCursor*>(cur)->row;
  return SQLITE_OK;
}

sqlite3_module batchModule() {
  sqlite3_module m{};
  m.iVersion = 0;
  m.xConnect = batchConnect;
  m.xBestIndex = batchBestIndex;
  m.xDisconnect = batchDisconnect;
  m.xOpen = batchOpen;
  m.xClose = batchClose;
  m.xFilter = batchFilter;
  m.xNext = batchNext;
  m.xEof = batchEof;
  m.xColumn = batchColumn;
  m.xRowid = batchRowid;
  return m;
}
const sqlite3_module kBatchModule = batchModule();

struct Result {
  double wall = 0, cpu = 0, bytesPerRow = 0;
};

Result runVariant(const Variant& v, const std::vector<SpanRecord>& spans) {
  const std::string path = "/tmp/moescope-sqlite-insert-experiment.db";
  for (const char* suffix : {"", "-wal", "-shm"}) unlink((path + suffix).c_str());
  sqlite3* db = nullptr;
  check(db,
        sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr),
        "open");
  exec(db, "PRAGMA page_size = " + std::to_string(v.pageSize));
  if (v.exclusive) exec(db, "PRAGMA locking_mode = EXCLUSIVE");
  exec(db, "PRAGMA journal_mode = WAL");
  exec(db, std::string("PRAGMA synchronous = ") + (v.syncOff ? "OFF" : "NORMAL"));
  exec(db, "PRAGMA cache_size = -" + std::to_string(v.cacheKiB));
  exec(db, std::string("PRAGMA secure_delete = ") + (v.secureDelete ? "ON" : "OFF"));
  exec(db, "PRAGMA threads = " + std::to_string(v.threads));
  if (v.tempMem) exec(db, "PRAGMA temp_store = MEMORY");

  std::string ddl = "CREATE TABLE span (";
  for (int c = 0; c < v.cols; ++c) {
    ddl += c ? ", " : "";
    ddl += kColumns[c];
    ddl += " INTEGER";
    if (c == 0 && !v.withoutRowid) ddl += " PRIMARY KEY";
    if ((c > 0 || v.withoutRowid) && (v.notNull || c < 7)) ddl += " NOT NULL";
  }
  if (v.withoutRowid)
    ddl += ", PRIMARY KEY (track, start, id)) WITHOUT ROWID";
  else
    ddl += ")";
  exec(db, ddl);
  const std::string indexSql = "CREATE INDEX span_track_start ON span (track, start)";
  const std::string idIndexSql = "CREATE UNIQUE INDEX span_id ON span (id)";
  if (!v.withoutRowid && v.index == "live") exec(db, indexSql);
  if (v.withoutRowid && v.idIndex == "live") exec(db, idIndexSql);

  const int first = v.autoId ? 1 : 0;
  const int bound = v.cols - first;
  auto insertSql = [&](int rows) {
    std::string sql = "INSERT INTO span (";
    for (int c = first; c < v.cols; ++c) sql += std::string(c > first ? ", " : "") + kColumns[c];
    sql += ") VALUES ";
    std::string row = "(";
    for (int c = 0; c < bound; ++c) row += c ? ",?" : "?";
    row += ")";
    for (int r = 0; r < rows; ++r) sql += (r ? "," : "") + row;
    return sql;
  };
  sqlite3_stmt* many = nullptr;
  sqlite3_stmt* one = nullptr;
  sqlite3_stmt* fromBatch = nullptr;
  if (v.vtab) {
    check(db, sqlite3_create_module(db, "span_batch", &kBatchModule, nullptr), "create module");
    std::string cols;
    for (int c = first; c < v.cols; ++c) cols += std::string(c > first ? ", " : "") + kColumns[c];
    const std::string sql = "INSERT INTO span (" + cols + ") SELECT " + cols + " FROM span_batch(?1)";
    check(db, sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &fromBatch, nullptr),
          sql.c_str());
  }
  check(db,
        sqlite3_prepare_v3(db, insertSql(v.rowsPerInsert).c_str(), -1, SQLITE_PREPARE_PERSISTENT, &many,
                           nullptr),
        "prepare");
  check(db, sqlite3_prepare_v3(db, insertSql(1).c_str(), -1, SQLITE_PREPARE_PERSISTENT, &one, nullptr),
        "prepare");

  auto bindRow = [&](sqlite3_stmt* st, int p, int64_t id, const SpanRecord& s) {
    auto opt = [&](int64_t x, int64_t none) {
      if (v.nulls && x == none)
        sqlite3_bind_null(st, p++);
      else
        sqlite3_bind_int64(st, p++, x);
    };
    const int64_t values[12] = {
        id,     s.track,      s.start, s.end,    s.name, int64_t(s.category), int64_t(s.phase),
        s.step, s.microbatch, s.layer, s.expert, s.bytes};
    for (int c = first; c < v.cols; ++c) {
      if (c >= 7 && c <= 10)
        opt(values[c], kNone);
      else if (c == 11)
        opt(values[c], 0);
      else
        sqlite3_bind_int64(st, p++, values[c]);
    }
  };

  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpuSeconds();
  exec(db, "BEGIN");
  int64_t id = 0;
  if (v.autoId) {  // ids from 0: the first row's id is given, the rest follow max(id) + 1
    std::string zeros = "-1";
    for (int c = 1; c < v.cols; ++c) zeros += ", 0";
    exec(db, "INSERT INTO span VALUES (" + zeros + ")");
  }
  const auto n = static_cast<int64_t>(spans.size());
  int64_t sinceCommit = 0;
  for (int64_t i = 0; i < n;) {
    // Batches of one track at a time, like RunWriter::addSpans.
    int64_t end = i + 1;
    while (end < n && end - i < 4096 &&
           spans[static_cast<size_t>(end)].track == spans[static_cast<size_t>(i)].track)
      ++end;
    if (v.vtab) {
      Batch batch{&spans[static_cast<size_t>(i)], end - i, id, v.nulls};
      sqlite3_bind_pointer(fromBatch, 1, &batch, kBatchPointer, nullptr);
      check(db, sqlite3_step(fromBatch), "insert");
      sqlite3_reset(fromBatch);
      id += end - i;
      i = end;
    }
    for (; i + v.rowsPerInsert <= end; i += v.rowsPerInsert) {
      for (int r = 0; r < v.rowsPerInsert; ++r)
        bindRow(many, 1 + r * bound, id++, spans[static_cast<size_t>(i + r)]);
      check(db, sqlite3_step(many), "insert");
      sqlite3_reset(many);
    }
    for (; i < end; ++i) {
      bindRow(one, 1, id++, spans[static_cast<size_t>(i)]);
      check(db, sqlite3_step(one), "insert");
      sqlite3_reset(one);
    }
    sinceCommit += 4096;
    if (sinceCommit >= (1 << 20)) {
      exec(db, "COMMIT; BEGIN");
      sinceCommit = 0;
    }
  }
  if (v.autoId) exec(db, "DELETE FROM span WHERE id = -1");
  exec(db, "COMMIT");
  if (!v.withoutRowid && v.index == "after") exec(db, indexSql);
  if (v.withoutRowid && v.idIndex == "after") exec(db, idIndexSql);
  if (v.syncOff) exec(db, "PRAGMA synchronous = NORMAL");
  sqlite3_finalize(many);
  sqlite3_finalize(one);
  sqlite3_finalize(fromBatch);
  check(db, sqlite3_close(db), "close");
  Result r;
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu = cpuSeconds() - c0;
  FILE* f = std::fopen(path.c_str(), "rb");
  std::fseek(f, 0, SEEK_END);
  r.bytesPerRow = static_cast<double>(std::ftell(f)) / static_cast<double>(n);
  std::fclose(f);
  for (const char* suffix : {"", "-wal", "-shm"}) unlink((path + suffix).c_str());
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 2'000'000;
  int reps = 3;
  std::vector<Variant> variants;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rows" && i + 1 < argc) {
      rows = std::atoll(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--memstatus" && i + 1 < argc) {
      sqlite3_config(SQLITE_CONFIG_MEMSTATUS, std::atoi(argv[++i]));
    } else {
      variants.push_back(parse(a));
    }
  }
  if (variants.empty()) {
    std::fprintf(stderr, "usage: %s [--rows N] [--reps R] [--memstatus 0|1] VARIANT...\n", argv[0]);
    return 2;
  }
  const std::vector<SpanRecord> spans = spansInWriteOrder(rows);
  std::vector<std::vector<Result>> results(variants.size());
  for (int r = 0; r < reps; ++r) {
    for (size_t k = 0; k < variants.size(); ++k) results[k].push_back(runVariant(variants[k], spans));
  }
  std::printf("%zu rows, median of %d\n%-48s %8s %8s %10s %10s %8s\n", spans.size(), reps, "variant",
              "wall s", "CPU s", "Mrows/s", "Mrows/s", "B/row");
  std::printf("%-48s %8s %8s %10s %10s %8s\n", "", "", "", "(wall)", "(CPU)", "");
  for (size_t k = 0; k < variants.size(); ++k) {
    std::vector<double> wall, cpu;
    for (const Result& x : results[k]) {
      wall.push_back(x.wall);
      cpu.push_back(x.cpu);
    }
    const double w = median(wall), c = median(cpu);
    std::printf("%-48s %8.2f %8.2f %10.2f %10.2f %8.1f\n", variants[k].text.c_str(), w, c,
                static_cast<double>(spans.size()) / w / 1e6, static_cast<double>(spans.size()) / c / 1e6,
                results[k].back().bytesPerRow);
  }
  return 0;
}
