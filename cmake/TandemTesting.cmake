# SPDX-License-Identifier: Apache-2.0
# Helpers that register tests, fuzz targets and benchmarks with CTest under tandem's labels:
#   unit   plain unit tests
#   netns  needs root and network namespaces (the test lab)
#   kmod   boots Debian's kernel under qemu TCG (the kernel harness)
#   fuzz   short smoke runs of every fuzz target
#   perf   benchmarks (release build, not in the default run)
include(GoogleTest)

# tandem_add_test(<name> SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT s] [RUN_SERIAL]
#                 [PROPERTIES <ctest property> <value> ...])
# One GoogleTest binary; every TEST becomes its own CTest entry carrying the labels and
# properties (e.g. FIXTURES_REQUIRED).
function(tandem_add_test name)
  cmake_parse_arguments(T "RUN_SERIAL" "TIMEOUT" "SOURCES;LIBS;LABELS;PROPERTIES" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main)
  set(props LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(T_RUN_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  list(APPEND props ${T_PROPERTIES})
  # Discovery runs the binary with --gtest_list_tests when ctest starts, not at build time,
  # so a build on a machine without root still succeeds.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       TEST_PREFIX "${name}." PROPERTIES ${props})
endfunction()

# tandem_add_fuzzer(<name> SOURCES ... [LIBS ...] CORPUS <dir> [SMOKE_RUNS n])
# With TANDEM_FUZZ (clang) it is a libFuzzer binary; otherwise it links tandem's standalone
# driver, which replays the corpus and then runs seeded random mutations of it. Either way the
# `fuzz` label runs a short smoke run; tests/fuzz/README.md says how to run long campaigns.
function(tandem_add_fuzzer name)
  cmake_parse_arguments(F "" "CORPUS;SMOKE_RUNS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_SMOKE_RUNS)
    set(F_SMOKE_RUNS 20000)
  endif()
  add_executable(${name} ${F_SOURCES})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  if(TANDEM_FUZZ)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    # libFuzzer writes what it learns into the first corpus directory: give it a scratch one in
    # the build tree, so the committed seeds are only read.
    set(scratch ${CMAKE_CURRENT_BINARY_DIR}/${name}.corpus)
    file(MAKE_DIRECTORY ${scratch})
    set(cmd $<TARGET_FILE:${name}> -runs=${F_SMOKE_RUNS} -seed=1 ${scratch} ${F_CORPUS})
  else()
    target_link_libraries(${name} PRIVATE tandem_fuzz_driver)
    set(cmd $<TARGET_FILE:${name}> --runs=${F_SMOKE_RUNS} --seed=1 ${F_CORPUS})
  endif()
  add_test(NAME fuzz.${name} COMMAND ${cmd})
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

# tandem_add_benchmark(<name> SOURCES ... [LIBS ...])
# A Google Benchmark binary linked with tandem's main, which prints one JSON line per result with
# its ratio to the ceiling measured in the same run (perf/bench_main.cc).
function(tandem_add_benchmark name)
  cmake_parse_arguments(B "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE ${B_LIBS} tandem_bench_main)
  add_test(NAME perf.${name} COMMAND ${name} --benchmark_min_time=0.2)
  set_tests_properties(perf.${name} PROPERTIES LABELS perf TIMEOUT 900 RUN_SERIAL TRUE)
endfunction()
