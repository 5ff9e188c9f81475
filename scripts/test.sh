#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's test command: installs the Debian packages, builds the `dev` preset (ASan+UBSan)
# and runs the default suite (labels unit, netns, kmod, fuzz). Extra arguments go to ctest,
# e.g. `scripts/test.sh -L unit` or `scripts/test.sh -R lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  # The netns tests create network namespaces and the kmod tests boot qemu: root is required.
  if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
  echo "test.sh: run as root" >&2
  exit 1
fi
scripts/install-deps.sh
cmake --preset dev
cmake --build --preset dev
ctest --preset dev "$@"
