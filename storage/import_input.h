// The bytes of one trace file, plain or gzip-compressed (told by the file's first two bytes, not its
// name), read in chunks so that a trace is never held whole in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace moescope::storage {

class TraceInput {
 public:
  // Throws ImportError if the file cannot be opened.
  static std::unique_ptr<TraceInput> open(const std::filesystem::path& path);
  virtual ~TraceInput() = default;

  // Reads up to n bytes of (decompressed) text into buffer; 0 at the end. Throws ImportError on a read
  // error or on compressed data that is corrupt or ends early ("truncated").
  virtual size_t read(char* buffer, size_t n) = 0;
  // Bytes of the file consumed so far and the file's size: progress, in file bytes.
  virtual uint64_t fileOffset() const = 0;
  uint64_t fileSize() const { return size_; }
  bool compressed() const { return compressed_; }
  const std::string& name() const { return name_; }

 protected:
  std::string name_;
  uint64_t size_ = 0;
  bool compressed_ = false;
};

}  // namespace moescope::storage
