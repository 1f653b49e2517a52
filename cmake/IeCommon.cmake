# Shared compile settings and helper functions for every InterEdge target.

set(IE_WARNINGS -Wall -Wextra -Werror -Wshadow -Wcast-align -Wunused
    -Wpointer-arith -Wformat=2 -Wimplicit-fallthrough)
set(IE_CXX_WARNINGS -Woverloaded-virtual -Wnon-virtual-dtor)

add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${IE_WARNINGS};${IE_CXX_WARNINGS}>"
                    "$<$<COMPILE_LANGUAGE:C>:${IE_WARNINGS}>")
add_compile_definitions(_GNU_SOURCE)

if(IE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# ie_layer(NAME SOURCES... DEPS ...): one libie layer as a static library with its own
# include directory (include/ie/NAME), so a layer sees only the headers of what it links.
function(ie_layer name)
  cmake_parse_arguments(L "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT L_SOURCES)
    # A layer with headers only (so far): still a target, so dependants link the same way.
    add_library(ie_${name} INTERFACE)
    target_include_directories(ie_${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(ie_${name} INTERFACE ${L_DEPS})
  else()
    add_library(ie_${name} STATIC ${L_SOURCES})
    target_include_directories(ie_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(ie_${name} PUBLIC ${L_DEPS} PRIVATE ${L_PRIVATE_DEPS})
  endif()
  add_library(ie::${name} ALIAS ie_${name})
endfunction()

# How test binaries compile (docs/testing.md "CI budget"): at -O0 (the code under test lives
# in the layers' libraries, built with the preset's flags; a test's own translation unit is
# mostly GoogleTest and nlohmann::json templates, whose -O2 code generation was most of the
# build), with one precompiled header (tests/unit/common/test_pch.hpp, built once by
# ie_test_pch) shared by every test binary. The PCH host must compile exactly like its users.
set(IE_TEST_OPT -O0)

function(ie_test_compile_settings name)
  target_compile_options(${name} PRIVATE ${IE_TEST_OPT})
  target_compile_definitions(${name} PRIVATE IE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(NOT TARGET ie_test_pch)
    add_executable(ie_test_pch ${PROJECT_SOURCE_DIR}/tests/unit/common/test_pch_host.cpp)
    target_link_libraries(ie_test_pch PRIVATE GTest::gtest GTest::gmock
                                              nlohmann_json::nlohmann_json)
    target_compile_options(ie_test_pch PRIVATE ${IE_TEST_OPT})
    target_compile_definitions(ie_test_pch PRIVATE IE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
    target_precompile_headers(ie_test_pch PRIVATE
                              ${PROJECT_SOURCE_DIR}/tests/unit/common/test_pch.hpp)
  endif()
  target_precompile_headers(${name} REUSE_FROM ie_test_pch)
  # REUSE_FROM does not carry the host's include directories: the PCH's own headers.
  target_link_libraries(${name} PRIVATE nlohmann_json::nlohmann_json)
endfunction()

# ie_unit_test(NAME SOURCES... DEPS ... [LABELS ...]): a GoogleTest binary registered with ctest.
function(ie_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  ie_test_compile_settings(${name})
  # IE_SOURCE_DIR (ie_test_compile_settings): where tests find checked-in data (vectors,
  # docs); not __FILE__, which build tools such as ccache (CCACHE_BASEDIR) may make relative.
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  set_property(GLOBAL APPEND PROPERTY IE_TEST_PROGRAMS ${name})
endfunction()

# ie_fuzz_target(NAME SOURCE DEPS ...): a libFuzzer entry point (LLVMFuzzerTestOneInput).
# With IE_LIBFUZZER (clang) it links -fsanitize=fuzzer; otherwise it links a replay driver
# that runs every file of the checked-in corpus tests/fuzz/corpus/NAME, registered with ctest
# under the label "fuzz" (run under ASan/UBSan in the asan preset).
function(ie_fuzz_target name source)
  cmake_parse_arguments(F "" "" "DEPS" ${ARGN})
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE ${F_DEPS})
  set_property(GLOBAL APPEND PROPERTY IE_TEST_PROGRAMS ${name})
  set(corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  if(IE_LIBFUZZER)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.cpp)
    add_test(NAME ${name}_corpus COMMAND ${name} ${corpus})
    set_tests_properties(${name}_corpus PROPERTIES LABELS "fuzz" TIMEOUT 600)
  endif()
endfunction()

# ie_unit_tests_in_dir(DEPS ...): every *_test.cpp in the current folder becomes one test
# binary of that name, label `unit` (or `root` for *_root_test.cpp), so several people can add
# tests to a folder without editing this file.
function(ie_unit_tests_in_dir)
  cmake_parse_arguments(T "" "" "DEPS;LABELS" ${ARGN})
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp)
  foreach(src ${tests})
    get_filename_component(name ${src} NAME_WE)
    set(labels ${T_LABELS})
    if(name MATCHES "_root_test$")
      # Needs root (TUN, namespaces, BPF): label `root`. CI runs as root; these tests fail,
      # never skip, when run without it.
      set(labels root)
    endif()
    ie_unit_test(${name} SOURCES ${src} DEPS ${T_DEPS} LABELS ${labels})
  endforeach()
endfunction()
