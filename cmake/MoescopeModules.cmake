# Include roots, one per target (docs/MODULES.md has the table they enforce).
#
# The source root is never an include path. Each target gets a folder of its own in the build tree,
# build/include/<target>/, holding links to the headers it offers under their source paths
# (build/include/moescope_storage/storage/run_reader.h -> storage/run_reader.h). An include reads the
# same everywhere, `#include "storage/run_reader.h"`, but it compiles only in a target that links
# moescope_storage, since only linking brings that folder onto the include path. Headers that no other
# module may include (storage's SQLite helpers and its schema, say) are linked into a second folder,
# build/include/<target>.private/, seen by the target itself and by its tests only.
#
# Why links to single headers: the headers stay where they are (no file moves, no include line
# changes), and a module can keep some headers of a folder to itself, which a folder-wide include path
# cannot do.
#
# moescope_module(<target> FOLDER <dir> [FROM_SOURCES] [HEADERS <h>...] [PRIVATE <h>...])
#   Gives <target> the headers of <dir> (names relative to <dir>):
#   - HEADERS: these;
#   - FROM_SOURCES: (also) the header of each of the target's sources (x.cpp or x.cu -> x.h), where it
#     exists; a header-only one the target needs goes in HEADERS;
#   - with neither, every *.h and *.cuh of <dir> that no earlier call claimed, so a header added to a
#     folder needs no CMake edit (the folder is globbed again at build time).
#   PRIVATE names those of them that only <target> (and its tests, moescope_private_headers) may include.
#   A target with a folder of its own and a target sharing one (the trace vocabulary in storage/, the
#   models in ui/) work the same way: the first call to claim a header owns it.
function(moescope_module target)
  cmake_parse_arguments(ARG "FROM_SOURCES" "FOLDER" "HEADERS;PRIVATE" ${ARGN})
  if(NOT ARG_FOLDER)
    message(FATAL_ERROR "moescope_module(${target}): FOLDER is required")
  endif()
  set(dir ${PROJECT_SOURCE_DIR}/${ARG_FOLDER})
  get_property(claimed GLOBAL PROPERTY MOESCOPE_CLAIMED_HEADERS)

  set(headers ${ARG_HEADERS})
  if(ARG_FROM_SOURCES)
    get_target_property(sources ${target} SOURCES)
    foreach(source IN LISTS sources)
      get_filename_component(stem ${source} NAME_WE)
      if(EXISTS ${dir}/${stem}.h AND NOT ${stem}.h IN_LIST headers)
        list(APPEND headers ${stem}.h)
      endif()
    endforeach()
  endif()
  if(NOT ARG_HEADERS AND NOT ARG_FROM_SOURCES)
    file(GLOB found RELATIVE ${dir} CONFIGURE_DEPENDS ${dir}/*.h ${dir}/*.cuh)
    foreach(header IN LISTS found)
      if(NOT "${ARG_FOLDER}/${header}" IN_LIST claimed)
        list(APPEND headers ${header})
      endif()
    endforeach()
  endif()
  foreach(header IN LISTS ARG_PRIVATE)
    if(NOT header IN_LIST headers)
      message(FATAL_ERROR "moescope_module(${target}): private header ${header} is not one of its headers")
    endif()
  endforeach()

  set(public_root ${PROJECT_BINARY_DIR}/include/${target})
  set(private_root ${PROJECT_BINARY_DIR}/include/${target}.private)
  file(REMOVE_RECURSE ${public_root} ${private_root})  # links of headers since removed go too
  foreach(header IN LISTS headers)
    if(NOT EXISTS ${dir}/${header})
      message(FATAL_ERROR "moescope_module(${target}): ${ARG_FOLDER}/${header} does not exist")
    endif()
    if("${ARG_FOLDER}/${header}" IN_LIST claimed)
      message(FATAL_ERROR "moescope_module(${target}): ${ARG_FOLDER}/${header} belongs to another target")
    endif()
    set_property(GLOBAL APPEND PROPERTY MOESCOPE_CLAIMED_HEADERS ${ARG_FOLDER}/${header})
    if(header IN_LIST ARG_PRIVATE)
      set(root ${private_root})
    else()
      set(root ${public_root})
    endif()
    file(MAKE_DIRECTORY ${root}/${ARG_FOLDER})
    file(CREATE_LINK ${dir}/${header} ${root}/${ARG_FOLDER}/${header} SYMBOLIC)
  endforeach()
  file(MAKE_DIRECTORY ${public_root} ${private_root})

  set_property(GLOBAL APPEND PROPERTY MOESCOPE_MODULE_TARGETS ${target})
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    target_include_directories(${target} PRIVATE ${public_root} ${private_root})
  elseif(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${public_root})
  else()
    target_include_directories(${target} PUBLIC ${public_root} PRIVATE ${private_root})
  endif()
  set_property(TARGET ${target} PROPERTY MOESCOPE_PRIVATE_INCLUDE ${private_root})
endfunction()

# moescope_private_headers(<test target> <module target>): a test may include the private headers of
# the module it checks.
function(moescope_private_headers target module)
  get_target_property(root ${module} MOESCOPE_PRIVATE_INCLUDE)
  target_include_directories(${target} PRIVATE ${root})
endfunction()

# moescope_check_link_cycles(): fails the configuration when targets declared with moescope_module link
# each other in a loop (the CUDA backend and the engine once did). CMake itself accepts such loops
# between static libraries, by repeating them on the link line. tests/modules/link_cycle shows that a
# loop is refused.
function(moescope_check_link_cycles)
  get_property(targets GLOBAL PROPERTY MOESCOPE_MODULE_TARGETS)
  foreach(target IN LISTS targets)
    set(deps)
    get_target_property(type ${target} TYPE)
    set(properties INTERFACE_LINK_LIBRARIES)
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      list(APPEND properties LINK_LIBRARIES)
    endif()
    foreach(property IN LISTS properties)
      get_target_property(links ${target} ${property})
      foreach(link IN LISTS links)
        string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" link "${link}")
        if(link IN_LIST targets AND NOT link IN_LIST deps)
          list(APPEND deps ${link})
        endif()
      endforeach()
    endforeach()
    set(_moescope_links_${target} ${deps})
  endforeach()
  set_property(GLOBAL PROPERTY _MOESCOPE_LINKS_CHECKED "")
  foreach(target IN LISTS targets)
    _moescope_visit_links(${target} "")
  endforeach()
endfunction()

# Depth first from target; chain: the targets on the way to it. Reads _moescope_links_* of the caller.
function(_moescope_visit_links target chain)
  if(target IN_LIST chain)
    list(APPEND chain ${target})
    list(FIND chain ${target} first)
    list(SUBLIST chain ${first} -1 loop)
    list(JOIN loop " -> " text)
    message(FATAL_ERROR "moescope: link cycle: ${text}")
  endif()
  get_property(checked GLOBAL PROPERTY _MOESCOPE_LINKS_CHECKED)
  if(target IN_LIST checked)
    return()
  endif()
  list(APPEND chain ${target})
  foreach(dep IN LISTS _moescope_links_${target})
    _moescope_visit_links(${dep} "${chain}")
  endforeach()
  set_property(GLOBAL APPEND PROPERTY _MOESCOPE_LINKS_CHECKED ${target})
endfunction()
