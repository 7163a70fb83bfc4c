// moescope-cli run as a user runs it (the built binary) in a fresh folder of its own (tests/common's
// TempDir): exit code, stdout and stderr of a command, a process started in the background, and a
// snapshot of the folder's files with their contents, so a test can assert that a refused command
// changed or lost nothing.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/common/binary_path.h"
#include "tests/common/temp_dir.h"

namespace moescope::testing {

struct CliResult {
  int code = -1;  // the exit status; 128 + n when signal n ended the process
  std::string out, err;
  // stderr's lines.
  size_t errLines() const { return static_cast<size_t>(std::count(err.begin(), err.end(), '\n')); }
};

class CliFolder {
 public:
  CliFolder() : dir_(temp_.path()) {}
  CliFolder(const CliFolder&) = delete;
  CliFolder& operator=(const CliFolder&) = delete;

  static std::string cli() { return testing::binaryPath("moescope-cli").string(); }
  const std::filesystem::path& dir() const { return dir_; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(dir_ / name, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Runs `moescope-cli ARGS` in the folder (ARGS through sh, so quotes and redirections work).
  // `prefix` goes before the command (e.g. "ulimit -f 64;").
  CliResult run(const std::string& args, const std::string& prefix = "") const {
    const std::filesystem::path out = logs_.file("stdout"), err = logs_.file("stderr");
    const std::string cmd = "cd '" + dir_.string() + "' && " + prefix + " '" + cli() + "' " + args + " > '" +
                            out.string() + "' 2> '" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    CliResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    std::filesystem::remove(out);
    std::filesystem::remove(err);
    return r;
  }

  // Starts `moescope-cli ARGS` in the background, stderr to the file errLog() (outside the folder).
  pid_t spawn(const std::string& args) const {
    const std::string cmd =
        "cd '" + dir_.string() + "' && exec '" + cli() + "' " + args + " 2> '" + errLog().string() + "'";
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }
  std::filesystem::path errLog() const { return logs_.file("spawned.stderr"); }
  std::string spawnedErr() const { return slurp(errLog()); }
  // Waits until the spawned command's stderr holds `text` (at most timeout_ms); whether it did.
  bool waitForErr(const std::string& text, int timeout_ms) const {
    for (int waited = 0; waited < timeout_ms; waited += 10) {
      if (spawnedErr().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Waits for a spawned process; its exit code, or 128 + the signal that ended it.
  static int wait(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // The folder's file names (hidden ones included), without reading the files.
  std::set<std::string> names() const {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) out.insert(e.path().filename().string());
    return out;
  }
  // Every file of the folder (names, hidden ones included) with its bytes.
  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      files[name] = e.is_regular_file() ? read(name) : std::string("<not a regular file>");
    }
    return files;
  }

 private:
  static std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  const TempDir temp_{"cli"};
  const TempDir logs_{"cli-logs"};  // the commands' output, kept out of the folder they run in
  const std::filesystem::path dir_;
};

// Bad input, as every command promises it: exit 2, one line on stderr holding `words`, and the folder
// exactly as it was (no file changed, lost or added).
inline void expectRefused(const CliFolder& folder, const std::string& args, const std::string& words) {
  const auto before = folder.snapshot();
  const CliResult r = folder.run(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(words), std::string::npos) << args << "\nstderr: " << r.err;
  EXPECT_EQ(r.errLines(), 1u) << args << "\nstderr: " << r.err;
  EXPECT_TRUE(folder.snapshot() == before) << args << ": the folder changed";
}

}  // namespace moescope::testing
