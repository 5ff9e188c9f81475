# SPDX-License-Identifier: Apache-2.0
# Kernel modules are built with Kbuild against Debian's linux-headers-amd64, never against the
# running kernel (the build machines run a kernel that cannot load modules). The matching kernel
# image is fetched by the kernel harness (tests/lab/kernel.h) to boot the result under qemu.
execute_process(
  COMMAND dpkg-query -W "-f=\${Depends}" linux-headers-amd64
  OUTPUT_VARIABLE _tandem_hdr_depends RESULT_VARIABLE _tandem_hdr_rc ERROR_QUIET)
if(NOT _tandem_hdr_rc EQUAL 0
   OR NOT _tandem_hdr_depends MATCHES "linux-headers-([0-9][^ ,]*-amd64) \\(= ([^)]+)\\)")
  message(FATAL_ERROR "linux-headers-amd64 is not installed: apt-get install linux-headers-amd64 "
                      "(or run scripts/install-deps.sh)")
endif()
set(TANDEM_KERNEL_RELEASE "${CMAKE_MATCH_1}" CACHE INTERNAL "Debian kernel release for kmod/")
set(TANDEM_KERNEL_VERSION "${CMAKE_MATCH_2}" CACHE INTERNAL "Debian kernel package version")
set(TANDEM_KERNEL_HEADERS "/usr/src/linux-headers-${TANDEM_KERNEL_RELEASE}")
if(NOT EXISTS "${TANDEM_KERNEL_HEADERS}/Makefile")
  message(FATAL_ERROR "${TANDEM_KERNEL_HEADERS} is missing: apt-get install --reinstall "
                      "linux-headers-${TANDEM_KERNEL_RELEASE}")
endif()
message(STATUS "tandem: kernel modules build against ${TANDEM_KERNEL_RELEASE} (${TANDEM_KERNEL_VERSION})")

# tandem_add_kernel_module(<name> SOURCES <file.c>... [HEADERS <file.h>...] [INCLUDES <dir>...])
# Builds <name>.ko out of tree into ${CMAKE_CURRENT_BINARY_DIR}/<name>/ with W=1 warnings, as part
# of `all`. The path is stored in the target property TANDEM_KO for tests.
function(tandem_add_kernel_module name)
  cmake_parse_arguments(K "" "" "SOURCES;HEADERS;INCLUDES" ${ARGN})
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${name})
  set(objs "")
  set(copied "")
  foreach(src IN LISTS K_SOURCES K_HEADERS)
    get_filename_component(base ${src} NAME)
    get_filename_component(abs ${src} ABSOLUTE)
    configure_file(${abs} ${dir}/${base} COPYONLY)
    list(APPEND copied ${abs})
    if(base MATCHES "\\.c$")
      string(REGEX REPLACE "\\.c$" ".o" obj ${base})
      list(APPEND objs ${obj})
    endif()
  endforeach()
  list(LENGTH objs nobjs)
  set(kbuild "obj-m := ${name}.o\n")
  if(NOT (nobjs EQUAL 1 AND objs STREQUAL "${name}.o"))
    list(JOIN objs " " objlist)
    string(APPEND kbuild "${name}-y := ${objlist}\n")
  endif()
  foreach(inc IN LISTS K_INCLUDES)
    get_filename_component(absinc ${inc} ABSOLUTE)
    string(APPEND kbuild "ccflags-y += -I${absinc}\n")
  endforeach()
  file(WRITE ${dir}/Kbuild "${kbuild}")
  add_custom_command(
    OUTPUT ${dir}/${name}.ko
    COMMAND make -s -C ${TANDEM_KERNEL_HEADERS} M=${dir} W=1 modules
    DEPENDS ${copied}
    WORKING_DIRECTORY ${dir}
    COMMENT "Kbuild ${name}.ko against ${TANDEM_KERNEL_RELEASE}"
    VERBATIM)
  add_custom_target(${name}_ko ALL DEPENDS ${dir}/${name}.ko)
  set_target_properties(${name}_ko PROPERTIES TANDEM_KO ${dir}/${name}.ko)
endfunction()
