# SPDX-License-Identifier: Apache-2.0
# Sourced by the entry scripts: go to the repository root and make sure we are root.
# Usage (first lines of a script): source "$(dirname "$0")/common.sh"; tandem_as_root "$@"
tandem_script=$(realpath "$0")  # $0 is the sourcing script's; resolve it before the cd
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Re-runs the calling script under sudo when not root (namespaces, qemu and apt-get need it).
tandem_as_root() {
  [[ $(id -u) -eq 0 ]] && return 0
  if command -v sudo >/dev/null; then exec sudo -E "$tandem_script" "$@"; fi
  echo "$(basename "$tandem_script"): run as root" >&2
  exit 1
}
