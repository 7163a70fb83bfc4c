// Naming rules: what a range's name says about its work. A rules file (TOML) lists regular expressions
// (PCRE2) over range names, each with the category, phase and schedule role it gives and named captures
// for the numbers a name carries: step, microbatch, layer, expert, stage, and phase as text. `import`
// (PyTorch profiler traces) and `record` (NVTX ranges of any CUDA program) both read names through it.
//
//   [[rule]]
//   match = '^ProfilerStep#(?<step>\d+)$'
//
//   [[rule]]
//   match = '(^|\.)forward_step$'
//   phase = "forward"
//   pass = true            # one micro-batch's forward on a stage: numbered from the schedule
//
//   [[rule]]
//   match = '\.linear_fc[12]$'
//   category = "compute.ffn"
//
// The first rule that matches a name decides; a name no rule matches gets nothing (its range is kept
// with category `user` where nothing around it gives one). Rule sets chain: a user's file first, then
// the shipped sets for moescope's own ranges, Megatron-Core and PyTorch (builtinRules).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "storage/trace_model.h"

namespace moescope::storage {

class RulesError : public std::runtime_error {
 public:
  // One line naming the file (and rule) and the problem.
  explicit RulesError(const std::string& message) : std::runtime_error(message) {}
};

// What the first matching rule says about one name. Integer fields are kNone when the name does not
// carry them.
struct NameFields {
  bool matched = false;
  std::optional<Category> category;
  Phase phase = Phase::None;
  bool pass = false;  // a schedule pass: one micro-batch's forward or backward on a stage
  int32_t step = kNone, microbatch = kNone, layer = kNone, expert = kNone, stage = kNone;
  int32_t rule = kNone;  // index of the rule that matched, in the set's order
  bool operator==(const NameFields&) const = default;
};

class RuleSet {
 public:
  RuleSet();
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  // Parses a rules file's text; `source` names it in messages. Throws RulesError on bad TOML, an
  // unknown key, a bad regular expression, an unknown category or phase, or a capture name other
  // than step, microbatch, layer, expert, stage and phase.
  static RuleSet parse(std::string_view toml, std::string_view source);
  static RuleSet load(const std::filesystem::path& path);

  // A file's `include_builtin = false` asks that the shipped sets not follow it (default true).
  bool includeBuiltin() const;
  // Appends another set's rules after this one's.
  void append(RuleSet&& other);
  size_t size() const;
  // The rule's pattern and the file it came from ("megatron.toml:12"), for messages and tests.
  std::string describe(size_t rule) const;

  NameFields match(std::string_view name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The shipped rule sets, compiled in from samples/rules/*.toml: "moescope", "megatron", "pytorch".
std::vector<std::string_view> builtinRuleSetNames();
std::string_view builtinRuleText(std::string_view name);  // empty for an unknown name
// All shipped sets chained, in the order of builtinRuleSetNames.
RuleSet builtinRules();
// The rules an import or a recording uses: each user file in order, then the shipped sets unless a
// user file said include_builtin = false.
RuleSet rulesFor(const std::vector<std::filesystem::path>& userFiles);

// The phase a captured text names: forward/fwd/f, backward/bwd/b, optimizer (any case); None otherwise.
Phase phaseFromText(std::string_view text);

}  // namespace moescope::storage
