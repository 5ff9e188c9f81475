#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: installs the Debian packages, builds the release preset and runs
# the local cluster demo (network namespaces on this machine; nothing leaves it).
set -euo pipefail
source "$(dirname "$0")/common.sh"
tandem_as_root "$@"
scripts/install-deps.sh
cmake --preset release
cmake --build --preset release --target tandem-demo
exec build/release/tests/lab/tandem-demo "$@"
