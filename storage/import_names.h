// The names of an import, each kept once: events refer to them by id, as the run file's string table
// does. A trace repeats few names (kernels and ops recur every step), so each event costs a hash lookup.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

namespace moescope::storage {

class NameTable {
 public:
  uint32_t intern(std::string_view text) {
    if (auto it = ids_.find(text); it != ids_.end()) return it->second;
    const auto id = static_cast<uint32_t>(texts_.size());
    texts_.emplace_back(text);
    ids_.emplace(texts_.back(), id);  // the deque keeps the text's address stable
    return id;
  }
  std::string_view text(uint32_t id) const { return id < texts_.size() ? std::string_view(texts_[id]) : ""; }
  size_t size() const { return texts_.size(); }

 private:
  std::deque<std::string> texts_;
  std::unordered_map<std::string_view, uint32_t> ids_;
};

}  // namespace moescope::storage
