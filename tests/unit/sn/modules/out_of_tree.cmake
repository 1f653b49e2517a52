# cmake -DBUILD_DIR=... -DEXAMPLE_DIR=... -DWORK_DIR=... -DCXX=... -P out_of_tree.cmake
# The module SDK as a newcomer uses it (docs/service-modules.md): install the headers, build
# the example against them alone, check the result exports the module entry point.
foreach(v BUILD_DIR EXAMPLE_DIR WORK_DIR CXX)
  if(NOT ${v})
    message(FATAL_ERROR "${v} not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --component sn_module_sdk --prefix ${WORK_DIR}/sdk)
file(GLOB_RECURSE installed RELATIVE ${WORK_DIR}/sdk ${WORK_DIR}/sdk/*)
list(SORT installed)
set(expected include/ie/sn/module.hpp include/interedge/sn_module.h)
if(NOT installed STREQUAL expected)
  message(FATAL_ERROR "the SDK component installed [${installed}], expected [${expected}]")
endif()

run(${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${WORK_DIR}/build -DCMAKE_CXX_COMPILER=${CXX}
    -DIE_SN_INCLUDE_DIR=${WORK_DIR}/sdk/include -DCMAKE_CXX_FLAGS=-Werror)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
set(so ${WORK_DIR}/build/libfanout.so)
if(NOT EXISTS ${so})
  message(FATAL_ERROR "${so} was not built")
endif()
file(READ ${so} bytes HEX)
string(HEX "ie_sn_module_v1" sym)
string(FIND "${bytes}" "${sym}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${so} does not contain ie_sn_module_v1")
endif()
message(STATUS "built ${so} against ${WORK_DIR}/sdk/include only")
