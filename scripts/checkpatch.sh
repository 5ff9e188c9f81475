#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the kernel's checkpatch.pl (--strict) over kmod/. Debian ships checkpatch.pl only inside
# the linux-source package's tarball, so this downloads that package from the Debian archive
# (apt-get download: nothing is installed) into CACHE_DIR once and extracts the script and its
# data files. Usage: scripts/checkpatch.sh [CACHE_DIR] (default build/checkpatch).
# Exit status: 0 clean, 1 checkpatch found something, 2 checkpatch could not be fetched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$(realpath -m "${1:-$root/build/checkpatch}")
script="$cache/scripts/checkpatch.pl"
if [[ ! -f $script ]]; then
  mkdir -p "$cache/download"
  # The newest linux-source for the headers' major.minor (6.1 on Debian 12).
  rel=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 | sed -E 's/^linux-headers-([0-9]+\.[0-9]+).*/\1/')
  pkg="linux-source-$rel"
  (cd "$cache/download" && rm -f ./*.deb &&
    apt-get -q -o APT::Sandbox::User=root download "$pkg" >/dev/null) || {
    echo "checkpatch: cannot download $pkg from the archive" >&2
    exit 2
  }
  deb=$(ls "$cache"/download/"$pkg"_*.deb)
  # The tarball inside the .deb holds the whole tree; only three files are taken out of it.
  dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards "./usr/src/$pkg.tar.xz" |
    tar -xJ -C "$cache" --strip-components=1 --wildcards \
      "$pkg/scripts/checkpatch.pl" "$pkg/scripts/spelling.txt" "$pkg/scripts/const_structs.checkpatch"
  rm -rf "$cache/download"
fi
# Run outside the git tree: inside one, --strict leaves a .checkpatch-camelcase cache behind.
cd "$cache"
mkdir -p include  # what --strict scans for CamelCase names (nothing: kmod/ has no tree)
rc=0
perl "$script" --root="$cache" --no-tree --strict --quiet --show-types -f "$root"/kmod/*.c || rc=1
# uapi headers cannot use BIT() / BIT_ULL(), and _Static_assert is C11's spelling.
perl "$script" --root="$cache" --no-tree --strict --quiet --show-types --ignore BIT_MACRO,CAMELCASE \
  -f "$root"/kmod/uapi/*.h || rc=1
if [[ $rc -eq 0 ]]; then echo "checkpatch: kmod/ is clean (--strict)"; fi
exit $rc
