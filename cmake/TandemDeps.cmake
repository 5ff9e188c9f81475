# SPDX-License-Identifier: Apache-2.0
# Every third-party dependency, found through pkg-config or its CMake config file.
# A missing one stops the configure step and names the Debian package that provides it
# (scripts/install-deps.sh installs them all).
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config (or run scripts/install-deps.sh)")
endif()

set(TANDEM_MISSING_DEPS "")

# tandem_pkg(<target-suffix> <debian-package> <pkg-config-module>...)
# Defines the imported target tandem::dep::<suffix>.
function(tandem_pkg name debpkg)
  pkg_check_modules(TANDEM_PC_${name} QUIET IMPORTED_TARGET GLOBAL ${ARGN})
  if(TANDEM_PC_${name}_FOUND)
    add_library(tandem::dep::${name} ALIAS PkgConfig::TANDEM_PC_${name})
    message(STATUS "tandem: found ${ARGN} ${TANDEM_PC_${name}_VERSION}")
  else()
    set(TANDEM_MISSING_DEPS "${TANDEM_MISSING_DEPS}\n  ${ARGN} -> apt-get install ${debpkg}"
        PARENT_SCOPE)
  endif()
endfunction()

tandem_pkg(dpdk libdpdk-dev libdpdk)
tandem_pkg(isal libisal-dev libisal)
tandem_pkg(nl libnl-3-dev libnl-3.0)
tandem_pkg(nl_route libnl-route-3-dev libnl-route-3.0)
tandem_pkg(uring liburing-dev liburing)
tandem_pkg(fuse3 libfuse3-dev fuse3)
tandem_pkg(curl libcurl4-openssl-dev libcurl)
tandem_pkg(yaml_cpp libyaml-cpp-dev yaml-cpp)
tandem_pkg(tinyxml2 libtinyxml2-dev tinyxml2)

# ipsec-mb ships neither a pkg-config file nor a CMake config in Debian 12.
find_path(TANDEM_IPSECMB_INCLUDE intel-ipsec-mb.h)
find_library(TANDEM_IPSECMB_LIB IPSec_MB)
if(TANDEM_IPSECMB_INCLUDE AND TANDEM_IPSECMB_LIB)
  add_library(tandem_dep_ipsecmb INTERFACE)
  target_include_directories(tandem_dep_ipsecmb SYSTEM INTERFACE ${TANDEM_IPSECMB_INCLUDE})
  target_link_libraries(tandem_dep_ipsecmb INTERFACE ${TANDEM_IPSECMB_LIB})
  add_library(tandem::dep::ipsecmb ALIAS tandem_dep_ipsecmb)
  message(STATUS "tandem: found ipsec-mb ${TANDEM_IPSECMB_LIB}")
else()
  string(APPEND TANDEM_MISSING_DEPS "\n  intel-ipsec-mb.h / libIPSec_MB -> apt-get install libipsec-mb-dev")
endif()

# Asio (standalone) is header-only with no pkg-config file.
find_path(TANDEM_ASIO_INCLUDE asio.hpp)
if(TANDEM_ASIO_INCLUDE)
  add_library(tandem_dep_asio INTERFACE)
  target_include_directories(tandem_dep_asio SYSTEM INTERFACE ${TANDEM_ASIO_INCLUDE})
  # ASIO_HAS_CO_AWAIT: Asio turns C++20 co_await on by itself with GCC, but not with clang 14
  # over libstdc++ (it looks for <experimental/coroutine>); the fuzz preset and clang-tidy need
  # it said, and every translation unit of a program must see the same Asio.
  target_compile_definitions(tandem_dep_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
                                                       ASIO_HAS_CO_AWAIT=1)
  # GCC 12 warns that Asio's atomic_thread_fence is not supported by -fsanitize=thread (-Werror
  # makes that fatal); Asio's scheduler synchronises with mutexes, which TSan does see.
  if(TANDEM_TSAN AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(tandem_dep_asio INTERFACE -Wno-tsan)
  endif()
  add_library(tandem::dep::asio ALIAS tandem_dep_asio)
else()
  string(APPEND TANDEM_MISSING_DEPS "\n  asio.hpp -> apt-get install libasio-dev")
endif()

# Packages with CMake config files.
macro(tandem_cmake_pkg pkg debpkg)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    string(APPEND TANDEM_MISSING_DEPS "\n  CMake package ${pkg} -> apt-get install ${debpkg}")
  endif()
endmacro()
tandem_cmake_pkg(OpenSSL libssl-dev)
tandem_cmake_pkg(Boost libboost-program-options-dev CONFIG COMPONENTS program_options)
tandem_cmake_pkg(nlohmann_json nlohmann-json3-dev)
tandem_cmake_pkg(benchmark libbenchmark-dev)
tandem_cmake_pkg(GTest "libgtest-dev libgmock-dev" CONFIG)
tandem_cmake_pkg(Threads libc6-dev)

if(TANDEM_MISSING_DEPS)
  message(FATAL_ERROR "tandem: missing dependencies (scripts/install-deps.sh installs all of them):"
                      "${TANDEM_MISSING_DEPS}")
endif()
