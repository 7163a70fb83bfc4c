// An experiment behind the run file's span table: how fast raw SQLite inserts 2M span-like rows on
// this machine, with and without the (track, start) index, row by row or 64 rows per statement, with
// 12 or 8 columns. It shows where the writer's time goes (docs/bench-storage.md); not a test.
//
//   bench_sqlite_insert COLUMNS INDEX ROWS_PER_INSERT
//   INDEX: 0 none, 1 maintained while inserting, 2 created after the inserts
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s COLUMNS INDEX ROWS_PER_INSERT\n", argv[0]);
    return 2;
  }
  const int cols = std::atoi(argv[1]), index = std::atoi(argv[2]), rowsPer = std::atoi(argv[3]);
  constexpr long kRows = 2'000'000;
  constexpr int kTracks = 16, kBatch = 4096;
  const std::string path = "/tmp/moescope-sqlite-insert-experiment.db";
  unlink(path.c_str());
  unlink((path + "-wal").c_str());
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;", nullptr,
               nullptr, nullptr);
  std::string ddl = "CREATE TABLE span(id INTEGER PRIMARY KEY";
  for (int c = 1; c < cols; ++c) ddl += ", c" + std::to_string(c) + " INTEGER NOT NULL";
  ddl += ");";
  if (index == 1) ddl += "CREATE INDEX i ON span(c1, c2);";
  sqlite3_exec(db, ddl.c_str(), nullptr, nullptr, nullptr);
  std::string row = "(";
  for (int c = 0; c < cols; ++c) row += c ? ",?" : "?";
  row += ")";
  std::string sql = "INSERT INTO span VALUES ";
  for (int r = 0; r < rowsPer; ++r) sql += (r ? "," : "") + row;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "%s\n", sqlite3_errmsg(db));
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  long id = 0;
  std::vector<long> next(kTracks, 1'000'000'000);
  for (long b = 0; id < kRows; ++b) {
    const long track = b % kTracks;  // batches of one track, interleaved, as the tracer writes them
    for (int k = 0; k < kBatch / rowsPer; ++k) {
      int p = 1;
      for (int r = 0; r < rowsPer; ++r) {
        const long start = next[static_cast<size_t>(track)];
        next[static_cast<size_t>(track)] += 1000 + (id % 7) * 100;
        sqlite3_bind_int64(st, p++, id++);
        sqlite3_bind_int64(st, p++, track);
        sqlite3_bind_int64(st, p++, start);
        for (int c = 3; c < cols; ++c)
          sqlite3_bind_int64(st, p++, c == 3 ? start + 900 : (id * c) % (c * 10));
      }
      sqlite3_step(st);
      sqlite3_reset(st);
    }
    if (id % (1 << 20) < kBatch) sqlite3_exec(db, "COMMIT; BEGIN", nullptr, nullptr, nullptr);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  if (index == 2) sqlite3_exec(db, "CREATE INDEX i ON span(c1, c2);", nullptr, nullptr, nullptr);
  sqlite3_finalize(st);
  sqlite3_close(db);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  std::printf("columns=%d index=%d rows/insert=%d: %.2f M rows/s wall, %.2f M rows/s of CPU time\n", cols,
              index, rowsPer, kRows / wall / 1e6, kRows / cpu / 1e6);
  unlink(path.c_str());
  unlink((path + "-wal").c_str());
  unlink((path + "-shm").c_str());
  return 0;
}
