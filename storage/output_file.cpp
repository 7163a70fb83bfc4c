#include "storage/output_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>

namespace moescope::storage {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void refuse(const OutputPath& o, const std::string& problem) {
  throw OutputRefused(o.option + ": '" + o.path.string() + "' " + problem);
}

std::string errnoText(int e) {
  return std::strerror(e);
}

// The temporary files that signal handlers remove. A handler may only read what is already in static
// storage, so each entry is a fixed buffer published by an atomic state (0 free, 1 being filled,
// 2 ready); 64 entries are more than any command keeps open (train has three outputs).
struct TemporarySlot {
  std::atomic<int> state{0};
  bool runFile = false;
  char path[4096] = {};
};
std::array<TemporarySlot, 64> g_temporaries;
constexpr std::array<const char*, 3> kSqliteSideFiles = {"-wal", "-shm", "-journal"};

// Holds SIGINT, SIGTERM and SIGHUP for this thread while it lives; a signal that arrives meanwhile is
// delivered when it ends.
class BlockTerminatingSignals {
 public:
  BlockTerminatingSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~BlockTerminatingSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  BlockTerminatingSignals(const BlockTerminatingSignals&) = delete;
  BlockTerminatingSignals& operator=(const BlockTerminatingSignals&) = delete;

 private:
  sigset_t old_;
};

int registerTemporary(const fs::path& path, bool runFile) {
  const std::string& text = path.native();
  if (text.size() + 16 >= sizeof(TemporarySlot::path)) return -1;  // cleaned by its owner only
  for (size_t i = 0; i < g_temporaries.size(); ++i) {
    int free = 0;
    if (!g_temporaries[i].state.compare_exchange_strong(free, 1)) continue;
    std::memcpy(g_temporaries[i].path, text.c_str(), text.size() + 1);
    g_temporaries[i].runFile = runFile;
    g_temporaries[i].state.store(2, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void unregisterTemporary(int slot) {
  if (slot >= 0) g_temporaries[static_cast<size_t>(slot)].state.store(0, std::memory_order_release);
}

void removeWithSideFiles(const fs::path& path, bool runFile) {
  std::error_code ec;
  fs::remove(path, ec);
  if (!runFile) return;
  for (const char* suffix : kSqliteSideFiles) fs::remove(path.string() + suffix, ec);
}

// The identity of a path for comparing outputs with inputs: resolved, and device and inode when the
// file exists (a hard link has another path but the same inode).
struct Identity {
  fs::path resolved;
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  bool same(const Identity& o) const {
    return resolved == o.resolved || (exists && o.exists && device == o.device && inode == o.inode);
  }
};

Identity identify(const fs::path& p) {
  Identity id;
  std::error_code ec;
  id.resolved = fs::weakly_canonical(fs::absolute(p, ec), ec);
  if (ec) id.resolved = fs::absolute(p, ec).lexically_normal();
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0) {
    id.exists = true;
    id.device = st.st_dev;
    id.inode = st.st_ino;
  }
  return id;
}

// ".NAME" + suffix: a file beside `path` that listings hide. (Appended, not `"." + name + suffix`,
// which GCC 12 misreads as an overlapping copy under -Wrestrict.)
std::string hiddenName(const fs::path& path, const char* suffix) {
  std::string name = ".";
  name.append(path.filename().string()).append(suffix);
  return name;
}

mode_t defaultFileMode() {
  // What open(2) with mode 0666 would give under the process's umask; mkstemp makes 0600.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

void onTerminatingSignal(int sig) {
  removeTemporaryFiles();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

void checkOutputs(std::span<const OutputPath> outputs, std::span<const fs::path> inputs) {
  std::vector<Identity> inputIds;
  for (const fs::path& in : inputs) inputIds.push_back(identify(in));
  std::vector<Identity> outputIds;
  for (const OutputPath& o : outputs) {
    if (o.path.empty()) throw OutputRefused(o.option + ": the path is empty");
    const Identity id = identify(o.path);
    for (size_t i = 0; i < inputIds.size(); ++i) {
      if (id.same(inputIds[i]))
        refuse(o, "is one of the inputs ('" + inputs[i].string() + "'); it would be overwritten");
    }
    for (size_t i = 0; i < outputIds.size(); ++i) {
      if (id.same(outputIds[i])) refuse(o, "is also the output of " + outputs[i].option);
    }
    outputIds.push_back(id);
  }
}

std::unique_ptr<OutputFile> OutputFile::open(const OutputPath& output, bool force, Kind kind) {
  const fs::path& target = output.path;
  if (target.empty()) throw OutputRefused(output.option + ": the path is empty");
  if (target == "-") refuse(output, "(standard output) cannot take this output; give a file name");
  std::unique_ptr<OutputFile> file(new OutputFile);
  file->target_ = target;
  file->kind_ = kind;

  struct stat st {};
  const bool exists = ::lstat(target.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) refuse(output, "cannot be checked (" + errnoText(errno) + ")");
  if (exists) {
    if (S_ISLNK(st.st_mode)) refuse(output, "is a symbolic link; give the file it points to");
    if (S_ISDIR(st.st_mode)) refuse(output, "is a folder");
    if (!S_ISREG(st.st_mode)) refuse(output, "is a device, FIFO or socket, not a regular file");
    if (!force) refuse(output, "exists; give --force to replace it");
  }
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    refuse(output, "is in folder '" + folder.string() + "', which does not exist");

  if (exists) {
    // Held until the replacement is in place: a second writer of this name is refused.
    file->lock_ = ::open(target.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (file->lock_ < 0) refuse(output, "cannot be opened (" + errnoText(errno) + ")");
    if (::flock(file->lock_, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      if (e == EWOULDBLOCK) refuse(output, "is being written by another process");
      refuse(output, "cannot be locked (" + errnoText(e) + ")");
    }
  }

  // The temporary file: created here, so this also checks that the folder takes new files. The
  // terminating signals wait until it is registered for removal: one landing between the two would
  // leave it behind.
  const BlockTerminatingSignals block;
  std::string pattern = (folder / hiddenName(target, ".XXXXXX.partial")).string();
  const int fd = ::mkostemps(pattern.data(), static_cast<int>(std::strlen(".partial")), O_CLOEXEC);
  if (fd < 0)
    refuse(output, "cannot be written: no new file can be made in '" + folder.string() + "' (" +
                       errnoText(errno) + ")");
  ::fchmod(fd, defaultFileMode());
  const fs::path temporary = pattern;

  if (kind == Kind::GrowingRunFile && !exists) {
    // A new run file appears under its name already locked: link(2) fails if the name was taken
    // meanwhile, so of two writers starting together exactly one gets it.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::link(temporary.c_str(), target.c_str()) != 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      if (e == EEXIST) refuse(output, "was just created by another process");
      refuse(output, "cannot be created (" + errnoText(e) + ")");
    }
    ::unlink(temporary.c_str());
    file->lock_ = fd;
    file->write_ = target;
    // Side files of an earlier run of this name would be taken for this run's: SQLite replays a -wal
    // found beside a database. The name is ours and locked, so they can only be stale.
    for (const char* suffix : kSqliteSideFiles) fs::remove(target.string() + suffix, ec);
    return file;
  }
  file->temporary_ = fd;
  file->write_ = temporary;
  file->slot_ = registerTemporary(temporary, file->runFile());
  return file;
}

OutputFile::~OutputFile() {
  discard();
  if (lock_ >= 0) ::close(lock_);
}

void OutputFile::removeTemporary() {
  if (temporary_ >= 0) ::close(temporary_);
  temporary_ = -1;
  removeWithSideFiles(write_, runFile());
  unregisterTemporary(slot_);
  slot_ = -1;
}

void OutputFile::discard() {
  if (done_) return;
  done_ = true;
  if (!inPlace()) {
    removeTemporary();
    return;
  }
  // A new run file that nothing was written to (the run failed before its writer opened it).
  struct stat st {};
  if (::stat(write_.c_str(), &st) == 0 && st.st_size == 0) removeWithSideFiles(write_, true);
}

void OutputFile::commit() {
  if (done_) throw StorageError(target_.string() + ": already committed or discarded");
  if (inPlace()) {
    done_ = true;
    return;
  }
  auto fail = [&](const std::string& what) {
    const int e = errno;
    done_ = true;
    removeTemporary();
    throw StorageError(target_.string() + ": " + what + " (" + errnoText(e) + ")");
  };
  // On the disk before it takes the name, so a crash never leaves the name on an empty file.
  if (::fsync(temporary_) != 0) fail("writing failed");
  if (runFile()) {
    // The replaced run's WAL would be replayed onto its successor; this process holds its lock.
    std::error_code ec;
    for (const char* suffix : kSqliteSideFiles) fs::remove(target_.string() + suffix, ec);
  }
  if (::rename(write_.c_str(), target_.c_str()) != 0) fail("cannot move the new file into place");
  done_ = true;
  ::close(temporary_);
  temporary_ = -1;
  unregisterTemporary(slot_);
  slot_ = -1;
}

SpaceReserve::SpaceReserve(const fs::path& near, int64_t bytes) {
  const fs::path folder = near.has_parent_path() ? near.parent_path() : fs::path(".");
  std::string pattern = (folder / hiddenName(near, ".XXXXXX.reserve")).string();
  const int fd = ::mkostemps(pattern.data(), static_cast<int>(std::strlen(".reserve")), O_CLOEXEC);
  if (fd < 0) return;
  const bool allocated = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) == 0;
  ::close(fd);
  if (!allocated) {
    ::unlink(pattern.c_str());
    return;
  }
  path_ = pattern;
  slot_ = registerTemporary(path_, false);
}

SpaceReserve::~SpaceReserve() {
  release();
}

void SpaceReserve::release() {
  if (path_.empty()) return;
  ::unlink(path_.c_str());
  unregisterTemporary(slot_);
  slot_ = -1;
  path_.clear();
}

void writeOutput(OutputFile& file, const std::function<void(std::ostream&)>& write) {
  {
    std::ofstream out(file.writePath(), std::ios::binary | std::ios::trunc);
    if (!out) {
      file.discard();
      throw StorageError(file.target().string() + ": cannot write");
    }
    try {
      write(out);
    } catch (...) {
      file.discard();
      throw;
    }
    out.close();
    if (!out) {
      file.discard();
      throw StorageError(file.target().string() + ": writing failed (is the disk full?)");
    }
  }
  file.commit();
}

void removeTemporaryFiles() noexcept {
  for (TemporarySlot& slot : g_temporaries) {
    if (slot.state.load(std::memory_order_acquire) != 2) continue;
    ::unlink(slot.path);
    if (!slot.runFile) continue;
    char side[sizeof(TemporarySlot::path) + 16];
    const size_t n = std::strlen(slot.path);
    for (const char* suffix : kSqliteSideFiles) {
      std::memcpy(side, slot.path, n);
      std::memcpy(side + n, suffix, std::strlen(suffix) + 1);
      ::unlink(side);
    }
  }
}

void removeTemporaryFilesOnSignals() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, onTerminatingSignal);
}

}  // namespace moescope::storage
