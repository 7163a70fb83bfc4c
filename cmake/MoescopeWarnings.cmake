# moescope_target_defaults(target): warnings for project code, as errors when MOESCOPE_WERROR is on.
# Include paths are not set here: each target gets its own (cmake/MoescopeModules.cmake).
function(moescope_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-missing-field-initializers>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${MOESCOPE_WERROR}>>:-Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>
    $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${MOESCOPE_WERROR}>>:-Werror=all-warnings>)
endfunction()
