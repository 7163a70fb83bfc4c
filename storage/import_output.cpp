#include "storage/import_output.h"

#include <unistd.h>

#include <random>
#include <string>

#include "storage/storage_error.h"

namespace moescope::storage {

ImportOutput::ImportOutput(std::filesystem::path final) : final_(std::move(final)) {
  std::random_device random;
  const auto tag = std::to_string(::getpid()) + "-" + std::to_string(random());
  const auto parent = final_.has_parent_path() ? final_.parent_path() : std::filesystem::path(".");
  std::string name = ".";  // built by appending: GCC 12 warns (-Wrestrict) on "." + std::string
  name += final_.filename().string();
  name += ".import-";
  name += tag;
  temporary_ = parent / name;
}

ImportOutput::~ImportOutput() {
  if (committed_) return;
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    std::filesystem::remove(temporary_.string() + suffix, ignored);
}

void ImportOutput::commit() {
  std::error_code ec;
  std::filesystem::rename(temporary_, final_, ec);
  if (ec) throw StorageError(final_.string() + ": cannot move the imported run into place: " + ec.message());
  committed_ = true;
}

}  // namespace moescope::storage
