#include "fuzz_cases.h"

#include <sqlite3.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/config.h"

namespace moescope::fuzz {
namespace {

namespace fs = std::filesystem;

std::string readBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// --- run files: values written through SQLite, column by column ---

const std::vector<std::string> kTables = {"strings",      "run",     "rank",        "track", "span",
                                          "gpu_activity", "counter", "step_metric", "meta"};

std::vector<std::string> columnsOf(sqlite3* db, const std::string& table) {
  std::vector<std::string> columns;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, ("PRAGMA table_info(\"" + table + "\")").c_str(), -1, &st, nullptr) != SQLITE_OK)
    return columns;
  while (sqlite3_step(st) == SQLITE_ROW)
    columns.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
  sqlite3_finalize(st);
  return columns;
}

// Sets one column of one row (or of every row) to an interesting value of any storage class.
std::string setColumn(Mutator& m, sqlite3* db) {
  const std::string table = m.pick(kTables);
  const auto columns = columnsOf(db, table);
  if (columns.empty()) return " [no table " + table + "]";
  const std::string column = m.pick(columns);
  const bool everyRow = m.chance(0.2);
  const std::string where = everyRow ? ""
                                     : " WHERE rowid = (SELECT rowid FROM \"" + table + "\" LIMIT 1 OFFSET " +
                                           std::to_string(m.below(50)) + ")";
  sqlite3_stmt* st = nullptr;
  const std::string sql = "UPDATE OR IGNORE \"" + table + "\" SET \"" + column + "\" = ?" + where;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    return " [cannot prepare " + sql + "]";
  std::string value;
  switch (m.below(5)) {
    case 0:
    case 1: {
      const int64_t v = m.interestingInt();
      sqlite3_bind_int64(st, 1, v);
      value = std::to_string(v);
      break;
    }
    case 2: {
      const double v = m.interestingReal();
      sqlite3_bind_double(st, 1, v);
      value = std::to_string(v);
      break;
    }
    case 3: {
      const std::string v = m.interestingText();
      sqlite3_bind_text(st, 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      value = "text of " + std::to_string(v.size()) + " bytes";
      break;
    }
    default:
      sqlite3_bind_null(st, 1);
      value = "NULL";
  }
  sqlite3_step(st);
  sqlite3_finalize(st);
  return " [" + table + "." + column + " = " + value + (everyRow ? " in every row" : "") + "]";
}

// The string table abused: ids moved or made huge, names removed, duplicated or made of broken text.
std::string abuseStrings(Mutator& m, sqlite3* db) {
  static const std::vector<std::string> statements = {
      "UPDATE strings SET id = id + 1",
      "UPDATE strings SET id = id * 1000",
      "DELETE FROM strings WHERE id = 0",
      "DELETE FROM strings",
      "UPDATE strings SET id = 4000000000 WHERE id = (SELECT max(id) FROM strings)",
      "UPDATE strings SET id = 9223372036854775807 WHERE id = 1",
      "UPDATE strings SET id = -1 WHERE id = 0",
      "INSERT INTO strings (id, text) VALUES (9223372036854775806, 'far')",
      "UPDATE strings SET text = (SELECT text FROM strings WHERE id = 0)",
      "UPDATE strings SET text = CAST(X'ff00fe' AS TEXT)",
      "UPDATE strings SET text = zeroblob(1000000) WHERE id = 0",
      "UPDATE span SET name = (SELECT max(id) FROM strings) + 1",
  };
  const std::string sql = m.pick(statements);
  sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  return " [" + sql + "]";
}

// Counts and structure: many rows, rows removed, tables or indexes dropped, the version changed.
std::string abuseStructure(Mutator& m, sqlite3* db) {
  static const std::vector<std::string> statements = {
      "INSERT INTO span (track, start, \"end\", name, category, phase, step, microbatch, layer, expert, "
      "bytes) "
      "SELECT track, start, \"end\", name, category, phase, step, microbatch, layer, expert, bytes FROM span",
      "INSERT INTO counter (track, time, value) SELECT track, time + 1, value FROM counter",
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
      "INSERT INTO span (track, start, \"end\", name, category, phase, step, microbatch, layer, expert, "
      "bytes) "
      "SELECT 0, i, i + 1, 0, 0, 0, i, 0, 0, -1, 0 FROM n",
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
      "INSERT INTO track (id, rank, kind, name, ord, device, stream) SELECT (SELECT max(id) FROM track) + 1 "
      "+ i, "
      "i, 0, 't', 0, -1, -1 FROM n",
      "DELETE FROM track WHERE id = 0",
      "DELETE FROM rank",
      "DELETE FROM run",
      "DELETE FROM step_metric WHERE step = 0",
      "DROP TABLE span",
      "DROP TABLE meta",
      "DROP INDEX span_track_start",
      "PRAGMA user_version = 0",
      "PRAGMA user_version = -1",
      "PRAGMA user_version = 2",
      "PRAGMA user_version = 2147483647",
      "UPDATE run SET pp = 1048576, tp = 1048576, dp = 1048576, microbatches = 1048576",
      "UPDATE run SET tokens_per_step = 1125899906842624",
      "UPDATE span SET step = 2147483647",
      "UPDATE span SET start = 4611686018427387904, \"end\" = 4611686018427387904",
      "UPDATE span SET start = 0 WHERE id % 2 = 0",
      "UPDATE span SET bytes = 1125899906842624",
      "UPDATE track SET max_duration = 4611686018427387904",
      "INSERT INTO gpu_activity (track, start, \"end\", name, kind, device, stream, correlation, span, "
      "bytes) "
      "SELECT track, start, \"end\", name, 0, 0, 0, 0, id, 0 FROM span LIMIT 500",
      "INSERT INTO meta (key, value) VALUES ('steps.recorded', 'step_metric')",
      "DELETE FROM meta WHERE key = 'steps.recorded'",
  };
  const std::string sql = m.pick(statements);
  sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  return " [" + sql.substr(0, 80) + "]";
}

// --- configs: every key of the schema given an interesting TOML value ---

std::string tomlValue(Mutator& m) {
  switch (m.below(10)) {
    case 7:
    case 8:  // plausible values too, so that some cases pass the checks and reach data, memory and weights
      return std::to_string(int64_t{1} << m.below(7));
    case 9:
      return std::to_string(m.below(1000)) + "e-3";
    case 0:
      return std::to_string(m.interestingInt());
    case 1: {
      const double v = m.interestingReal();
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      std::string s = buf;
      if (s.find_first_of(".e") == std::string::npos) s += ".0";
      return s;
    }
    case 2:
      return m.chance(0.5) ? "true" : "false";
    case 3:
      return m.pick(std::vector<std::string>{"\"ppmoe\"", "\"dpmoe\"", "\"gpipe\"", "\"1f1b\"",
                                             "\"interleaved\"", "\"zb-h1\"", "\"bf16\"", "\"random\"", "\"\"",
                                             "\"/dev/zero\"", "\".\""});
    case 4:
      return "[1, 2, [3]]";
    case 5:
      return "{ a = 1 }";
    default:
      return "\"" + std::string(m.below(3000), 'z') + "\"";
  }
}

}  // namespace

Case runFileCase(Mutator& m, const Seeds& seeds, const fs::path& dir) {
  Case c;
  c.kind = "run file";
  const fs::path file = dir / "case.moescope";
  fs::copy_file(seeds.run, file);
  if (m.chance(0.75)) {
    sqlite3* db = nullptr;
    if (sqlite3_open(file.c_str(), &db) == SQLITE_OK) {
      const size_t edits = 1 + m.below(3);
      for (size_t i = 0; i < edits; ++i) {
        const size_t which = m.below(10);
        c.what += which < 6 ? setColumn(m, db) : which < 8 ? abuseStrings(m, db) : abuseStructure(m, db);
      }
    }
    sqlite3_close(db);
  }
  if (c.what.empty() || m.chance(0.25)) writeBytes(file, m.mutateBytes(readBytes(file), c.what));
  switch (m.below(5)) {
    case 0:
      c.args = {"stats", "case.moescope"};
      break;
    case 1:
      c.args = {"stats", "--json", "case.moescope"};
      c.stdoutIsJson = true;
      break;
    case 2:
      c.args = {"export", "case.moescope", "--format", "chrome", "-o", "out.json"};
      c.jsonFile = "out.json";
      break;
    case 3:
      c.args = {"export", "case.moescope", "--format", "csv", "-o", "out.csv"};
      c.csvFile = "out.csv";
      break;
    default:
      c.args = {"compare", seeds.run.string(), "case.moescope", "--json"};
      c.stdoutIsJson = true;
  }
  return c;
}

Case configCase(Mutator& m, const Seeds& seeds, const fs::path& dir) {
  Case c;
  c.kind = "config";
  std::string text = readBytes(seeds.config);
  const auto keys = engine::configKeys();
  const size_t edits = 1 + m.below(3);
  std::vector<std::string> sets;
  for (size_t i = 0; i < edits; ++i) {
    const std::string key(keys[m.below(keys.size())].name);
    const std::string value = tomlValue(m);
    if (m.chance(0.3)) {
      sets.push_back(key + "=" + value);
      c.what += " [--set " + key + "=" + value.substr(0, 40) + "]";
    } else {
      // A [section] table at the end: the key set there (a duplicate key is itself bad input).
      const std::string section = key.substr(0, key.find('.'));
      text += "\n[" + section + "]\n" + key.substr(key.find('.') + 1) + " = " + value + "\n";
      c.what += " [" + key + " = " + value.substr(0, 40) + "]";
    }
  }
  if (m.chance(0.2)) text = m.mutateBytes(text, c.what);
  if (m.chance(0.05)) {
    text += "\ndeep = " + std::string(5000, '[') + std::string(5000, ']') + "\n";
    c.what += " [nested 5000 deep]";
  }
  writeBytes(dir / "case.toml", text);
  c.args = {"train", "--config", "case.toml", "--backend", "cpu", "--dry-run"};
  for (const std::string& s : sets) {
    c.args.push_back("--set");
    c.args.push_back(s);
  }
  return c;
}

Case npyCase(Mutator& m, const Seeds& seeds, const fs::path& dir) {
  Case c;
  c.kind = "npy";
  std::string bytes = readBytes(seeds.npy);
  const size_t headerEnd = bytes.find('\n') + 1;  // version 1: magic, version, length, header, '\n'
  std::string header = bytes.substr(10, headerEnd - 10);
  std::string data = bytes.substr(headerEnd);
  switch (m.below(6)) {
    case 0: {
      const std::string descr = m.pick(
          std::vector<std::string>{"'<i4'", "'<u4'", "'<f4'", "'|u1'", "'>u2'", "'<u8'", "''", "'<u2"});
      header.replace(header.find("'<u2'"), 5, descr);
      c.what += " [descr " + descr + "]";
      break;
    }
    case 1: {
      const std::string shape =
          m.pick(std::vector<std::string>{"(" + std::to_string(m.interestingInt()) + ",)", "(2, 3)", "()",
                                          "(,)", "(99999999999999999999,)", "(-1,)"});
      const size_t at = header.find("'shape': ") + 9;
      header.replace(at, header.find(')', at) - at + 1, shape);
      c.what += " [shape " + shape + "]";
      break;
    }
    case 2:
      header.replace(header.find("False"), 5, "True ");
      c.what += " [fortran_order True]";
      break;
    case 3: {
      const auto v = static_cast<uint64_t>(m.interestingInt());
      const size_t at = m.below(data.size() / 2) * 2;
      data[at] = static_cast<char>(v);
      data[at + 1] = static_cast<char>(v >> 8);
      c.what += " [token " + std::to_string(v & 0xFFFF) + " at " + std::to_string(at / 2) + "]";
      break;
    }
    case 4:
      bytes[6] = static_cast<char>(m.pick(std::vector<int>{0, 2, 3, 9, 255}));
      c.what += " [version " + std::to_string(static_cast<unsigned char>(bytes[6])) + "]";
      break;
    default:
      break;
  }
  // The header's length field follows the edited header (a byte-level mutation below may break it).
  std::string out = bytes.substr(0, 10) + header + data;
  out[8] = static_cast<char>(header.size() & 0xFF);
  out[9] = static_cast<char>((header.size() >> 8) & 0xFF);
  if (c.what.empty() || m.chance(0.3)) out = m.mutateBytes(out, c.what);
  writeBytes(dir / "case.npy", out);
  c.args = {"train", "--config", seeds.config.string(), "--data", "case.npy", "--backend",
            "cpu",   "--dry-run"};
  return c;
}

Case safetensorsCase(Mutator& m, const Seeds& seeds, const fs::path& dir) {
  Case c;
  c.kind = "safetensors";
  const std::string bytes = readBytes(seeds.safetensors);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  nlohmann::ordered_json header = nlohmann::ordered_json::parse(bytes.substr(8, n));
  std::string body = bytes.substr(8 + n);
  std::vector<std::string> names;
  for (const auto& [name, entry] : header.items()) {
    if (name != "__metadata__") names.push_back(name);
  }
  const std::string name = m.pick(names);
  switch (m.below(7)) {
    case 0:
      header[name]["dtype"] = m.pick(std::vector<std::string>{"F16", "BF16", "I64", "F64", "", "F32 "});
      c.what += " [" + name + " dtype]";
      break;
    case 1:
      header[name]["shape"][m.below(header[name]["shape"].size())] = m.interestingInt();
      c.what += " [" + name + " shape " + header[name]["shape"].dump() + "]";
      break;
    case 2:
      header[name]["data_offsets"][m.below(2)] = m.interestingInt();
      c.what += " [" + name + " offsets " + header[name]["data_offsets"].dump() + "]";
      break;
    case 3:
      header.erase(name);
      c.what += " [" + name + " removed]";
      break;
    case 4:
      header[name] =
          m.pick(std::vector<nlohmann::ordered_json>{nullptr, 5, "text", nlohmann::ordered_json::array()});
      c.what += " [" + name + " not an object]";
      break;
    case 5:
      header["extra"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}};
      c.what += " [an extra tensor]";
      break;
    default:
      header[name]["shape"].push_back(1);
      c.what += " [" + name + " one more dimension]";
      break;
  }
  const std::string text = header.dump();
  uint64_t length = text.size();
  if (m.chance(0.2)) {
    length = static_cast<uint64_t>(m.interestingInt());
    c.what += " [header length " + std::to_string(length) + "]";
  }
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(length >> (8 * i));
  out += text + body;
  if (m.chance(0.3)) out = m.mutateBytes(out, c.what);
  writeBytes(dir / "case.safetensors", out);
  c.args = {"train", "--config", seeds.config.string(), "--init", "case.safetensors", "--backend",
            "cpu",   "--dry-run"};
  return c;
}

// --- PyTorch profiler (Kineto) traces: JSON fields of events and of the header set to edge values ---

namespace {

// A JSON string of raw bytes: quotes, backslashes and control characters escaped, everything else
// (broken UTF-8 among it) left as it is, which nlohmann-json's dump would refuse to write.
std::string rawJsonString(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// A JSON value as text: the edges of integers and reals (non-finite ones as literals beyond double),
// text, null, booleans, containers where a number is expected, nesting 5,000 deep.
std::string jsonValue(Mutator& m) {
  switch (m.below(9)) {
    case 0:
    case 1:
      return std::to_string(m.interestingInt());
    case 2: {
      const double v = m.interestingReal();
      if (std::isnan(v)) return "-0e999999";
      if (std::isinf(v)) return v > 0 ? "1e999" : "-1e999";
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      return buf;
    }
    case 3:
      return rawJsonString(m.interestingText());
    case 4:
      return m.pick(
          std::vector<std::string>{"null", "true", "false", "[]", "{}", "[1, \"x\"]", "{\"a\": 1}"});
    case 5:
      return std::string(5000, '[') + std::string(5000, ']');
    case 6:  // plausible: small counts and times, so some cases reach the import's later checks
      return std::to_string(m.below(2000));
    case 7:
      return std::to_string(m.below(1000)) + "." + std::to_string(m.below(1000));
    default:
      return rawJsonString(m.pick(std::vector<std::string>{
          "X", "B", "E", "i", "s", "f", "kernel", "cpu_op", "cuda_runtime", "user_annotation", "ac2g",
          "gpu_memcpy", "ProfilerStep#3", "nccl:send", "nccl:all_reduce"}));
  }
}

const std::vector<std::string> kEventFields = {"ph", "cat", "name", "pid", "tid",
                                               "ts", "dur", "id",   "bp",  "args"};
const std::vector<std::string> kArgFields = {
    "External id",   "correlation", "Python id",           "device", "stream",     "Collective name",
    "In msg nelems", "Group size",  "Process Group Ranks", "dtype",  "Input Dims", "cbid"};
const std::vector<std::string> kHeaderFields = {"schemaVersion",    "baseTimeNanoseconds", "displayTimeUnit",
                                                "deviceProperties", "distributedInfo",     "traceEvents"};
const std::vector<std::string> kDistributedFields = {"rank", "world_size", "backend", "pg_config",
                                                     "pg_count"};

// Sets or removes fields; each new value is a placeholder string, replaced by its raw text after the dump.
std::string mutateTrace(Mutator& m, const std::string& text, std::string& what) {
  auto j = nlohmann::ordered_json::parse(text);
  auto& events = j["traceEvents"];
  std::vector<std::string> raws;
  auto placeholder = [&](const std::string& raw) {
    raws.push_back(raw);
    return "@raw" + std::to_string(raws.size() - 1) + "@";
  };
  const size_t edits = 1 + m.below(3);
  for (size_t i = 0; i < edits && events.is_array() && !events.empty(); ++i) {
    auto& event = events[m.below(events.size())];
    const std::string value = jsonValue(m);
    const std::string shown = value.substr(0, 40);
    switch (m.below(8)) {
      case 0:
      case 1:
      case 2: {
        const std::string field = m.pick(kEventFields);
        event[field] = placeholder(value);
        what += " [event " + field + " = " + shown + "]";
        break;
      }
      case 3: {
        const std::string field = m.pick(kArgFields);
        if (!event["args"].is_object()) event["args"] = nlohmann::ordered_json::object();
        event["args"][field] = placeholder(value);
        what += " [event args." + field + " = " + shown + "]";
        break;
      }
      case 4: {
        const std::string field = m.pick(kEventFields);
        event.erase(field);
        what += " [event without " + field + "]";
        break;
      }
      case 5: {
        const std::string field = m.pick(kHeaderFields);
        j[field] = placeholder(value);
        what += " [" + field + " = " + shown + "]";
        break;
      }
      case 6: {
        const std::string field = m.pick(kDistributedFields);
        if (!j["distributedInfo"].is_object()) j["distributedInfo"] = nlohmann::ordered_json::object();
        j["distributedInfo"][field] = placeholder(value);
        what += " [distributedInfo." + field + " = " + shown + "]";
        break;
      }
      default: {
        // 20,000 copies of a small event (a 4 MB trace), never of one holding a megabyte of text.
        const size_t copies = m.chance(0.5) || event.dump().size() > 1000 ? 2 : 20000;
        const auto copy = event;
        for (size_t k = 1; k < copies; ++k) events.push_back(copy);
        what += " [an event " + std::to_string(copies) + " times]";
        break;
      }
    }
  }
  std::string out = j.dump();
  for (size_t i = 0; i < raws.size(); ++i) {
    const std::string key = "\"@raw" + std::to_string(i) + "@\"";
    if (const size_t at = out.find(key); at != std::string::npos) out.replace(at, key.size(), raws[i]);
  }
  if (m.chance(0.15)) out = m.mutateBytes(out, what);
  return out;
}

}  // namespace

Case kinetoCase(Mutator& m, const Seeds& seeds, const fs::path& dir) {
  Case c;
  c.kind = "kineto";
  const size_t target = m.below(2);
  c.what = " [rank" + std::to_string(target) + "]";
  c.args = {"import"};
  for (size_t f = 0; f < 2; ++f) {
    std::string text = readBytes(seeds.kineto[f]);
    if (f == target) text = mutateTrace(m, text, c.what);
    const std::string name = "rank" + std::to_string(f) + ".json";
    writeBytes(dir / name, text);
    c.args.push_back(name);
  }
  c.args.insert(c.args.end(), {"--pp", "2", "-o", "out.moescope"});
  if (m.chance(0.3)) {
    const std::string schedule = m.pick(std::vector<std::string>{"gpipe", "1f1b", "interleaved", "zb-h1"});
    c.args.insert(c.args.end(), {"--schedule", schedule});
  }
  return c;
}

}  // namespace moescope::fuzz
