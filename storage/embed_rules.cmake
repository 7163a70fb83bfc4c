# cmake -DOUTPUT=rules_builtin.cpp -DINPUTS=a.toml,b.toml -P embed_rules.cmake
# Compiles the shipped naming rules (samples/rules/*.toml) into storage, so `import` and `record` find
# them wherever moescope-cli runs, with no data files beside it. Each file becomes a raw string literal.
string(REPLACE "," ";" INPUTS "${INPUTS}")
set(names "")
set(cases "")
foreach(input IN LISTS INPUTS)
  get_filename_component(name "${input}" NAME_WE)
  file(READ "${input}" text)
  if(text MATCHES "\\)moescope_rules\"")
    message(FATAL_ERROR "${input} contains the raw string delimiter")
  endif()
  string(APPEND names "\"${name}\", ")
  string(APPEND cases "  if (name == \"${name}\") return R\"moescope_rules(${text})moescope_rules\";\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from samples/rules/*.toml by storage/embed_rules.cmake.
#include \"storage/rules.h\"

namespace moescope::storage {

std::vector<std::string_view> builtinRuleSetNames() { return {${names}}; }

std::string_view builtinRuleText(std::string_view name) {
${cases}  return {};
}

}  // namespace moescope::storage
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
