#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: installs the Debian packages, builds the release preset and runs
# the local cluster demo (network namespaces on this machine; nothing leaves it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
  echo "demo.sh: run as root" >&2
  exit 1
fi
scripts/install-deps.sh
cmake --preset release
cmake --build --preset release --target tandem-demo
exec build/release/tests/lab/tandem-demo "$@"
