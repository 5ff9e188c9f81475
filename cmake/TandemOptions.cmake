# SPDX-License-Identifier: Apache-2.0
# Build flavours: warnings for everyone, sanitizers / coverage / fuzzing chosen by the presets.
option(TANDEM_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(TANDEM_TSAN "Build with ThreadSanitizer" OFF)
option(TANDEM_COVERAGE "Build with gcov instrumentation for lcov" OFF)
option(TANDEM_FUZZ "Build libFuzzer targets (needs clang)" OFF)
option(TANDEM_WERROR "Treat warnings as errors" ON)

if(TANDEM_SANITIZE AND TANDEM_TSAN)
  message(FATAL_ERROR "TANDEM_SANITIZE and TANDEM_TSAN cannot be combined")
endif()

add_compile_options(-Wall -Wextra -Wshadow $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor> -Wformat=2
                    $<$<COMPILE_LANGUAGE:CXX>:-Wold-style-cast> -fno-omit-frame-pointer)
if(TANDEM_WERROR)
  add_compile_options(-Werror)
endif()
# The reference machines are x86-64 with AVX-512; the binaries must still run on any x86-64-v2.
add_compile_options(-march=x86-64-v2)

if(TANDEM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(TANDEM_TSAN)
  add_compile_options(-fsanitize=thread)
  add_link_options(-fsanitize=thread)
endif()
if(TANDEM_COVERAGE)
  add_compile_options(--coverage -O0)
  add_link_options(--coverage)
endif()
if(TANDEM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TANDEM_FUZZ needs clang (use the 'fuzz' preset)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
