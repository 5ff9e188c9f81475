# SPDX-License-Identifier: Apache-2.0
# `format` rewrites and `format-check` verifies the C++ sources with the repository's
# .clang-format. Kernel C under kmod/ follows the kernel's own style and checkpatch instead.
find_program(TANDEM_CLANG_FORMAT NAMES clang-format clang-format-14)
if(TANDEM_CLANG_FORMAT)
  file(GLOB_RECURSE _tandem_fmt_files CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/dataplane/*.h ${PROJECT_SOURCE_DIR}/dataplane/*.cc
       ${PROJECT_SOURCE_DIR}/control/*.h ${PROJECT_SOURCE_DIR}/control/*.cc
       ${PROJECT_SOURCE_DIR}/netlink/*.h ${PROJECT_SOURCE_DIR}/netlink/*.cc
       ${PROJECT_SOURCE_DIR}/perf/*.h ${PROJECT_SOURCE_DIR}/perf/*.cc
       ${PROJECT_SOURCE_DIR}/tests/*.h ${PROJECT_SOURCE_DIR}/tests/*.cc)
  add_custom_target(format-check
    COMMAND ${TANDEM_CLANG_FORMAT} --dry-run --Werror ${_tandem_fmt_files}
    COMMENT "clang-format --dry-run over ${PROJECT_NAME} sources" VERBATIM)
  add_custom_target(format
    COMMAND ${TANDEM_CLANG_FORMAT} -i ${_tandem_fmt_files}
    COMMENT "clang-format -i over ${PROJECT_NAME} sources" VERBATIM)
endif()

# `tidy` runs clang-tidy (the repository's .clang-tidy) over every compiled source of this build.
find_program(TANDEM_RUN_CLANG_TIDY NAMES run-clang-tidy run-clang-tidy-14)
if(TANDEM_RUN_CLANG_TIDY)
  add_custom_target(tidy
    COMMAND ${TANDEM_RUN_CLANG_TIDY} -quiet -p ${PROJECT_BINARY_DIR}
            "^${PROJECT_SOURCE_DIR}/(dataplane|control|netlink|perf|tests)/.*\\.cc$"
    COMMENT "clang-tidy over ${PROJECT_NAME} sources" VERBATIM)
endif()

# The default suite checks formatting too, so drift is caught where everything else is.
if(TANDEM_CLANG_FORMAT)
  add_test(NAME format_check COMMAND ${TANDEM_CLANG_FORMAT} --dry-run --Werror ${_tandem_fmt_files})
  set_tests_properties(format_check PROPERTIES LABELS unit TIMEOUT 120)
endif()
