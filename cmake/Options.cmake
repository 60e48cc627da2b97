option(UGATE_WERROR "Treat warnings as errors" OFF)
option(UGATE_BUILD_TESTS "Build the test suite" ON)
option(UGATE_BUILD_FUZZERS "Build libFuzzer targets (needs clang)" OFF)
set(UGATE_SANITIZE "" CACHE STRING "Sanitizers: '', 'address,undefined' or 'thread'")

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

if(UGATE_SANITIZE)
  add_compile_options(-fsanitize=${UGATE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${UGATE_SANITIZE})
endif()

if(UGATE_BUILD_FUZZERS)
  # Instrument every library the fuzzers link, not only the targets, so coverage guides them.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(UGATE_SANITIZE OR UGATE_BUILD_FUZZERS)
  # Sanitizer and fuzzer reports need function names and line numbers, not variables and types:
  # line tables only (-g1) compile about 40 % faster than -g, which is most of the test script's time.
  foreach(lang C CXX)
    string(REGEX REPLACE "(^| )-g( |$)" "\\1-g1\\2" CMAKE_${lang}_FLAGS_RELWITHDEBINFO "${CMAKE_${lang}_FLAGS_RELWITHDEBINFO}")
  endforeach()
endif()
