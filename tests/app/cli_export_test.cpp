// moescope-cli export, its outputs as issue 12 asks (class 2 and 9): a target that is a device, FIFO,
// link, the run itself or an existing file without --force is refused with the folder unchanged; a
// killed export leaves no partial file; exports running together never share a temporary name.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/app/cli_test_util.h"

namespace moescope::app {
namespace {

using testing::CliFolder;
using testing::CliResult;
using testing::expectRefused;

TEST(CliExport, RefusedTargetsLeaveTheFolderAsItWas) {
  CliFolder f;
  ASSERT_EQ(f.run("generate -o run.moescope --spans 300").code, 0);
  ASSERT_EQ(::mkfifo(f.path("fifo").c_str(), 0600), 0);
  f.write("old.json", "an earlier export");
  ::symlink("old.json", f.path("link.json").c_str());
  expectRefused(f, "export run.moescope --format chrome -o run.moescope --force", "is one of the inputs");
  expectRefused(f, "export run.moescope --format csv -o old.json", "exists; give --force");
  expectRefused(f, "export run.moescope --format csv -o link.json --force", "symbolic link");
  expectRefused(f, "export run.moescope --format csv -o fifo --force", "not a regular file");
  expectRefused(f, "export run.moescope --format csv -o /dev/full --force", "not a regular file");
  expectRefused(f, "export run.moescope --format csv -o missing/out.csv", "does not exist");
  const CliResult forced = f.run("export run.moescope --format csv -o old.json --force");
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(f.read("old.json").rfind("track,rank,stage", 0), 0u);
  const CliResult out = f.run("export run.moescope --format chrome -o -");
  EXPECT_EQ(out.code, 0) << out.err;
  EXPECT_TRUE(nlohmann::json::accept(out.out));
}

// SIGTERM or SIGINT while the export writes: killed by the signal, no partial file left behind. The
// temporary file is made before the run is read, so the signal lands while the export works; should a
// loaded machine let an export finish first, that attempt is repeated.
TEST(CliExport, AKilledExportLeavesNoPartialFile) {
  CliFolder f;
  ASSERT_EQ(f.run("generate -o run.moescope --spans 400000").code, 0);
  for (int sig : {SIGTERM, SIGINT}) {
    bool interrupted = false;
    for (int attempt = 0; attempt < 3 && !interrupted; ++attempt) {
      const pid_t pid = f.spawn("export run.moescope --format chrome --force -o out.json");
      bool writing = false;  // the temporary file has appeared
      for (int i = 0; i < 20000 && !writing; ++i) {
        for (const std::string& name : f.names())
          writing = writing || name.find(".partial") != std::string::npos;
        if (!writing) std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
      kill(pid, sig);
      const int code = CliFolder::wait(pid);
      std::filesystem::remove(f.path("out.json"));
      if (code == 0) continue;  // finished before the signal
      interrupted = true;
      EXPECT_TRUE(writing);
      EXPECT_EQ(code, 128 + sig);
      EXPECT_EQ(f.names(), (std::set<std::string>{"run.moescope"})) << "signal " << sig;
    }
    if (!interrupted) GTEST_SKIP() << "every export finished before its signal (a fast machine)";
  }
}

// Exports of one run to one new name, all at once: each is complete or refused, none fails on a shared
// temporary name, and what is left is one whole file.
TEST(CliExport, ParallelExportsNeverShareATemporaryFile) {
  CliFolder f;
  ASSERT_EQ(f.run("generate -o run.moescope --spans 20000").code, 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i)
    pids.push_back(f.spawn("export run.moescope --format chrome --force -o out.json"));
  for (pid_t pid : pids) {
    const int code = CliFolder::wait(pid);
    EXPECT_TRUE(code == 0 || code == 2) << code << ": " << f.spawnedErr();
  }
  EXPECT_EQ(f.names(), (std::set<std::string>{"run.moescope", "out.json"}));
  EXPECT_TRUE(nlohmann::json::accept(f.read("out.json")));
}

}  // namespace
}  // namespace moescope::app
