#include "storage/rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <toml++/toml.h>

#include <array>
#include <charconv>
#include <fstream>
#include <sstream>

namespace moescope::storage {
namespace {

// PCRE2 rather than std::regex: named captures are the rules' whole interface, and std::regex (ECMAScript)
// has none; PCRE2 is what Qt's QRegularExpression and grep -P use, on every Debian and Ubuntu system.
struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
using Code = std::unique_ptr<pcre2_code, CodeDeleter>;
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

enum Capture { kStep = 0, kMicrobatch, kLayer, kExpert, kStage, kPhase, kCaptureCount };
constexpr std::array<std::string_view, kCaptureCount> kCaptureNames = {"step",   "microbatch", "layer",
                                                                       "expert", "stage",      "phase"};

struct Rule {
  std::string pattern;
  std::string where;  // "file:line"
  Code code;
  std::array<int, kCaptureCount> group{};  // capture group number, 0 when the pattern has none
  std::optional<Category> category;
  Phase phase = Phase::None;
  bool pass = false;
};

std::string errorText(int code) {
  std::array<PCRE2_UCHAR, 256> buffer{};
  pcre2_get_error_message(code, buffer.data(), buffer.size());
  return reinterpret_cast<const char*>(buffer.data());
}

int32_t parseInt(std::string_view text) {
  int32_t v = kNone;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) return kNone;
  return v;
}

std::string lineOf(const toml::node& node, std::string_view source) {
  return std::string(source) + ":" + std::to_string(node.source().begin.line);
}

Rule compileRule(const toml::table& t, std::string_view source) {
  Rule r;
  r.where = lineOf(t, source);
  for (const auto& [key, value] : t) {
    const std::string_view k = key.str();
    if (k != "match" && k != "category" && k != "phase" && k != "pass")
      throw RulesError(lineOf(value, source) + ": unknown key '" + std::string(k) +
                       "' in a rule (match, category, phase, pass)");
  }
  const auto match = t["match"].value<std::string>();
  if (!match || match->empty()) throw RulesError(r.where + ": a rule needs match = '<regular expression>'");
  r.pattern = *match;
  if (const auto* c = t.get("category")) {
    const auto name = c->value<std::string>();
    r.category = name ? categoryFromName(*name) : std::nullopt;
    if (!r.category) throw RulesError(lineOf(*c, source) + ": unknown category '" + name.value_or("") + "'");
  }
  if (const auto* p = t.get("phase")) {
    const auto name = p->value<std::string>();
    const auto phase = name ? phaseFromName(*name) : std::nullopt;
    if (!phase || *phase == Phase::None)
      throw RulesError(lineOf(*p, source) + ": unknown phase '" + name.value_or("") +
                       "' (forward, backward, optimizer)");
    r.phase = *phase;
  }
  if (const auto* p = t.get("pass")) {
    const auto v = p->value<bool>();
    if (!v) throw RulesError(lineOf(*p, source) + ": pass must be true or false");
    r.pass = *v;
  }

  int error = 0;
  PCRE2_SIZE offset = 0;
  r.code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(r.pattern.data()), r.pattern.size(), 0, &error,
                             &offset, nullptr));
  if (!r.code)
    throw RulesError(r.where + ": bad regular expression '" + r.pattern + "': " + errorText(error) +
                     " at offset " + std::to_string(offset));
  pcre2_jit_compile(r.code.get(), PCRE2_JIT_COMPLETE);  // an interpreter fallback if JIT is unavailable

  uint32_t count = 0, entrySize = 0;
  PCRE2_SPTR table = nullptr;
  pcre2_pattern_info(r.code.get(), PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(r.code.get(), PCRE2_INFO_NAMEENTRYSIZE, &entrySize);
  pcre2_pattern_info(r.code.get(), PCRE2_INFO_NAMETABLE, &table);
  for (uint32_t i = 0; i < count; ++i) {
    const PCRE2_SPTR entry = table + static_cast<size_t>(i) * entrySize;
    const int group = (entry[0] << 8) | entry[1];
    const std::string_view name(reinterpret_cast<const char*>(entry + 2));
    size_t c = 0;
    while (c < kCaptureNames.size() && kCaptureNames[c] != name) ++c;
    if (c == kCaptureNames.size())
      throw RulesError(r.where + ": unknown capture name '" + std::string(name) +
                       "' (step, microbatch, layer, expert, stage, phase)");
    r.group[c] = group;
  }
  return r;
}

}  // namespace

struct RuleSet::Impl {
  std::vector<Rule> rules;
  bool includeBuiltin = true;
};

RuleSet::RuleSet() : impl_(std::make_unique<Impl>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

RuleSet RuleSet::parse(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw RulesError(std::string(source) + ":" + std::to_string(e.source().begin.line) + ": " +
                     std::string(e.description()));
  }
  RuleSet set;
  for (const auto& [key, value] : root) {
    const std::string_view k = key.str();
    if (k == "version") {
      if (value.value<int64_t>() != 1)
        throw RulesError(lineOf(value, source) + ": unsupported rules version (this build reads 1)");
    } else if (k == "include_builtin") {
      const auto v = value.value<bool>();
      if (!v) throw RulesError(lineOf(value, source) + ": include_builtin must be true or false");
      set.impl_->includeBuiltin = *v;
    } else if (k == "rule") {
      const toml::array* rules = value.as_array();
      if (!rules || !rules->is_array_of_tables())
        throw RulesError(lineOf(value, source) + ": rule must be an array of tables ([[rule]])");
      for (const auto& r : *rules) set.impl_->rules.push_back(compileRule(*r.as_table(), source));
    } else {
      throw RulesError(lineOf(value, source) + ": unknown key '" + std::string(k) +
                       "' (version, include_builtin, rule)");
    }
  }
  return set;
}

RuleSet RuleSet::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RulesError(path.string() + ": cannot read the rules file");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path.string());
}

bool RuleSet::includeBuiltin() const {
  return impl_->includeBuiltin;
}

void RuleSet::append(RuleSet&& other) {
  for (Rule& r : other.impl_->rules) impl_->rules.push_back(std::move(r));
  other.impl_->rules.clear();
}

size_t RuleSet::size() const {
  return impl_->rules.size();
}

std::string RuleSet::describe(size_t rule) const {
  if (rule >= impl_->rules.size()) return {};
  return impl_->rules[rule].where + " '" + impl_->rules[rule].pattern + "'";
}

NameFields RuleSet::match(std::string_view name) const {
  NameFields f;
  for (size_t i = 0; i < impl_->rules.size(); ++i) {
    const Rule& r = impl_->rules[i];
    MatchData data(pcre2_match_data_create_from_pattern(r.code.get(), nullptr));
    if (!data) return f;
    if (pcre2_match(r.code.get(), reinterpret_cast<PCRE2_SPTR>(name.data()), name.size(), 0, 0, data.get(),
                    nullptr) < 0)
      continue;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.get());
    auto captured = [&](Capture c) -> std::string_view {
      const int g = r.group[c];
      if (g == 0 || ov[2 * g] == PCRE2_UNSET) return {};
      return name.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    };
    f.matched = true;
    f.rule = static_cast<int32_t>(i);
    f.category = r.category;
    f.pass = r.pass;
    const Phase capturedPhase = phaseFromText(captured(kPhase));
    f.phase = capturedPhase != Phase::None ? capturedPhase : r.phase;
    f.step = parseInt(captured(kStep));
    f.microbatch = parseInt(captured(kMicrobatch));
    f.layer = parseInt(captured(kLayer));
    f.expert = parseInt(captured(kExpert));
    f.stage = parseInt(captured(kStage));
    return f;
  }
  return f;
}

Phase phaseFromText(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "forward" || lower == "fwd" || lower == "f") return Phase::Forward;
  if (lower == "backward" || lower == "bwd" || lower == "b") return Phase::Backward;
  if (lower == "optimizer") return Phase::Optimizer;
  return Phase::None;
}

RuleSet builtinRules() {
  RuleSet all;
  for (std::string_view name : builtinRuleSetNames())
    all.append(RuleSet::parse(builtinRuleText(name), std::string(name) + ".toml"));
  return all;
}

RuleSet rulesFor(const std::vector<std::filesystem::path>& userFiles) {
  RuleSet all;
  bool builtin = true;
  for (const auto& path : userFiles) {
    RuleSet user = RuleSet::load(path);
    builtin = builtin && user.includeBuiltin();
    all.append(std::move(user));
  }
  if (builtin) all.append(builtinRules());
  return all;
}

}  // namespace moescope::storage
