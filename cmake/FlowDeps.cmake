# Finds flowsteer's build and test dependencies, all from Debian packages
# installed by scripts/setup.sh.

# LLVM 14: ADT and Support (llvm-14-dev).
find_package(LLVM 14 REQUIRED CONFIG
             HINTS /usr/lib/llvm-14/lib/cmake/llvm /usr/lib/llvm-14/cmake)
message(STATUS "LLVM ${LLVM_PACKAGE_VERSION} from ${LLVM_DIR}")
add_library(flow_llvm INTERFACE)
target_include_directories(flow_llvm SYSTEM INTERFACE ${LLVM_INCLUDE_DIRS})
separate_arguments(_llvm_defs NATIVE_COMMAND "${LLVM_DEFINITIONS}")
target_compile_definitions(flow_llvm INTERFACE ${_llvm_defs})
# GCC 12 warns that LLVM 14's integer formatter (FormatProviders.h, `HS`)
# may use an uninitialized variable wherever formatv() formats an integer
# and is inlined; it is read only after consumeHexStyle() returned true,
# which sets it. The warning comes from the header into every file that
# formats integers, so it is off for the code that uses LLVM, with GCC only
# (LLVM's own build turns it off for GCC too).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(flow_llvm INTERFACE -Wno-maybe-uninitialized)
endif()
llvm_map_components_to_libnames(_llvm_libs support)
target_link_libraries(flow_llvm INTERFACE ${_llvm_libs})

# ANTLR 4: the `antlr4` tool (4.7.2, needs Java) runs at build time; the C++
# runtime (4.9) links. Only compiler/parse sees either.
find_program(ANTLR4_TOOL antlr4 REQUIRED)
find_package(antlr4-runtime REQUIRED CONFIG)
add_library(flow_antlr INTERFACE)
target_include_directories(flow_antlr SYSTEM INTERFACE /usr/include/antlr4-runtime)
target_link_libraries(flow_antlr INTERFACE antlr4_shared)

# GoogleTest for unit tests.
find_package(GTest REQUIRED)

# lit and FileCheck from llvm-14-tools.
find_program(LIT_TOOL NAMES lit lit.py llvm-lit
             HINTS /usr/lib/llvm-14/build/utils/lit /usr/lib/llvm-14/bin REQUIRED)
find_program(FILECHECK_TOOL FileCheck HINTS /usr/lib/llvm-14/bin REQUIRED)
find_program(NOT_TOOL not HINTS /usr/lib/llvm-14/bin REQUIRED)
find_package(Python3 REQUIRED COMPONENTS Interpreter)
