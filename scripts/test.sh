#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's test command: installs the Debian packages, builds the `dev` preset (ASan+UBSan)
# and runs the default suite (labels unit, netns, kmod, fuzz). Extra arguments go to ctest,
# e.g. `scripts/test.sh -L unit` or `scripts/test.sh -R lab`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
tandem_as_root "$@"
scripts/install-deps.sh
cmake --preset dev
cmake --build --preset dev
ctest --preset dev "$@"
