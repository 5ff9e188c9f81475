#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the `coverage` preset, runs the default suite, and writes an lcov HTML report to
# build/coverage/html; prints lcov's summary (lines / functions covered).
set -euo pipefail
source "$(dirname "$0")/common.sh"
tandem_as_root "$@"
scripts/install-deps.sh
cmake --preset coverage
cmake --build --preset coverage
out=build/coverage
find "$out" -name '*.gcda' -delete
ctest --preset coverage "$@" || echo "coverage.sh: some tests failed; the report covers what ran" >&2
lcov --quiet --capture --directory "$out" --output-file "$out/all.info" 2>"$out/lcov.log" ||
  { cat "$out/lcov.log" >&2; exit 1; }
lcov --quiet --extract "$out/all.info" "$PWD/dataplane/*" "$PWD/control/*" "$PWD/netlink/*" \
  "$PWD/tests/lab/*" --output-file "$out/tandem.info"
genhtml --quiet "$out/tandem.info" --output-directory "$out/html"
echo "coverage report: $out/html/index.html"
lcov --summary "$out/tandem.info" 2>&1 | grep -E "lines|functions"
