#include "storage/import_input.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "storage/import_error.h"

namespace moescope::storage {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Reads up to n bytes, retrying on EINTR; throws on an error.
size_t readSome(int fd, char* buffer, size_t n, const std::string& name) {
  for (;;) {
    const ssize_t got = ::read(fd, buffer, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) throw ImportError(name + ": cannot read: " + std::strerror(errno));
  }
}

class PlainInput final : public TraceInput {
 public:
  PlainInput(int fd, std::string name, uint64_t size) : fd_(fd) {
    name_ = std::move(name);
    size_ = size;
    // The whole file is read once, front to back.
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  size_t read(char* buffer, size_t n) override {
    const size_t got = readSome(fd_.get(), buffer, n, name_);
    offset_ += got;
    return got;
  }
  uint64_t fileOffset() const override { return offset_; }

 private:
  FileDescriptor fd_;
  uint64_t offset_ = 0;
};

// zlib's inflate over the file's bytes, member after member (gzip allows several back to back).
class GzipInput final : public TraceInput {
 public:
  GzipInput(int fd, std::string name, uint64_t size) : fd_(fd), in_(kChunk) {
    name_ = std::move(name);
    size_ = size;
    compressed_ = true;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    // 15 + 16: a gzip wrapper, 32 KiB window.
    if (inflateInit2(&z_, 15 + 16) != Z_OK) throw ImportError(name_ + ": cannot start zlib");
  }
  ~GzipInput() override { inflateEnd(&z_); }

  size_t read(char* buffer, size_t n) override {
    z_.next_out = reinterpret_cast<Bytef*>(buffer);
    z_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    while (z_.avail_out > 0) {
      if (z_.avail_in == 0) {
        const size_t got = readSome(fd_.get(), reinterpret_cast<char*>(in_.data()), in_.size(), name_);
        offset_ += got;
        if (got == 0) {
          if (!inMember_) break;  // the end of the file, between members
          throw ImportError(name_ + ": truncated gzip data (the file ends inside the compressed stream)");
        }
        z_.next_in = in_.data();
        z_.avail_in = static_cast<uInt>(got);
      }
      inMember_ = true;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        inMember_ = false;
        if (inflateReset(&z_) != Z_OK) throw ImportError(name_ + ": cannot restart zlib");
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw ImportError(name_ + ": corrupt gzip data (" +
                          (z_.msg ? z_.msg : "zlib error " + std::to_string(rc)) + ")");
      }
    }
    return static_cast<size_t>(reinterpret_cast<char*>(z_.next_out) - buffer);
  }
  uint64_t fileOffset() const override { return offset_ - z_.avail_in; }

 private:
  static constexpr size_t kChunk = 1 << 20;
  FileDescriptor fd_;
  std::vector<Bytef> in_;
  z_stream z_{};
  uint64_t offset_ = 0;
  bool inMember_ = false;
};

}  // namespace

std::unique_ptr<TraceInput> TraceInput::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ImportError(name + ": cannot open: " + std::strerror(errno));
  FileDescriptor guard(fd);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw ImportError(name + ": is a folder, not a trace file");
  const uint64_t size = std::filesystem::file_size(path, ec);
  std::array<unsigned char, 2> magic{};
  const ssize_t got = ::pread(fd, magic.data(), magic.size(), 0);
  const bool gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (gzip) return std::make_unique<GzipInput>(guard.release(), name, ec ? 0 : size);
  return std::make_unique<PlainInput>(guard.release(), name, ec ? 0 : size);
}

}  // namespace moescope::storage
