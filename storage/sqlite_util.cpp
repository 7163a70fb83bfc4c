#include "storage/sqlite_util.h"

namespace moescope::storage::sqlite {

void fail(sqlite3* db, int rc, const std::filesystem::path& file, const char* what, const char* source,
          int line) {
  const char* message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  std::string problem = (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
                            ? std::string("corrupt file while ") + what
                            : std::string(what);
  // The source file's folder and name, e.g. "storage/run_reader.cpp".
  std::string_view src = source;
  if (auto last = src.rfind('/'); last != std::string_view::npos && last > 0) {
    if (auto folder = src.rfind('/', last - 1); folder != std::string_view::npos)
      src = src.substr(folder + 1);
  }
  throw StorageError(file.string() + ": " + problem + " (" + message + ") [" + std::string(src) + ":" +
                     std::to_string(line) + "]");
}

namespace {

// A file: URI for a path (RFC 3986: '%', '?' and '#' would end or change the path part).
std::string fileUri(const std::filesystem::path& file, const char* query) {
  std::string uri = "file:";
  const std::string path = std::filesystem::absolute(file).string();
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      static constexpr char kHex[] = "0123456789ABCDEF";
      uri += '%';
      uri += kHex[(static_cast<unsigned char>(c) >> 4) & 0xF];
      uri += kHex[static_cast<unsigned char>(c) & 0xF];
    } else {
      uri += c;
    }
  }
  return uri + "?" + query;
}

}  // namespace

Db::Db(const std::filesystem::path& file, int flags, bool immutable) : file_(file) {
  const std::string name = immutable ? fileUri(file, "immutable=1") : file.string();
  if (immutable) flags |= SQLITE_OPEN_URI;
  const int rc = sqlite3_open_v2(name.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw StorageError(file.string() + ": cannot open (" + message + ")");
  }
  sqlite3_extended_result_codes(db_, 1);
}

Db::~Db() {
  sqlite3_close(db_);
}

void Db::exec(const char* sql, const char* what, std::source_location at) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(db_, rc, file_, what, at.file_name(), static_cast<int>(at.line()));
}

int64_t Db::queryInt(const char* sql, std::source_location at) {
  Stmt st(*this, sql, at);
  return st.step(at) ? st.int64(0) : 0;
}

void Db::createModule(const char* name, const sqlite3_module* module, const char* what,
                      std::source_location at) {
  const int rc = sqlite3_create_module(db_, name, module, nullptr);
  if (rc != SQLITE_OK) fail(db_, rc, file_, what, at.file_name(), static_cast<int>(at.line()));
}

Stmt::Stmt(const Db& db, std::string_view sql, std::source_location at) : db_(&db) {
  const int rc = sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &st_, nullptr);
  if (rc != SQLITE_OK)
    fail(db.get(), rc, db.file(), "preparing a statement", at.file_name(), static_cast<int>(at.line()));
}

Stmt::~Stmt() {
  sqlite3_finalize(st_);
}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(st_);
    st_ = other.st_;
    db_ = other.db_;
    other.st_ = nullptr;
  }
  return *this;
}

bool Stmt::step(std::source_location at) {
  const int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const bool writing = !sqlite3_stmt_readonly(st_);
  sqlite3_reset(st_);
  fail(db_->get(), rc, db_->file(), writing ? "writing" : "reading", at.file_name(),
       static_cast<int>(at.line()));
}

void Stmt::run(std::source_location at) {
  while (step(at)) {
  }
  reset();
}

void Stmt::reset() {
  sqlite3_reset(st_);
}

std::string Stmt::text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_, col))) : std::string();
}

}  // namespace moescope::storage::sqlite
