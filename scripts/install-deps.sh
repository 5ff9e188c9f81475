#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian 12 package tandem needs to build, test, benchmark and run its demo.
# Idempotent and non-interactive: when something is missing it runs `apt-get update` first,
# then installs only what is missing. Run as root (or with sudo).
set -euo pipefail

packages=(
  # toolchain and build
  build-essential cmake ninja-build pkg-config git ccache
  clang-14 libclang-rt-14-dev llvm-14 clang-format clang-tidy lcov
  # libraries (see cmake/tandem_deps.cmake for the mapping to pkg-config / CMake names)
  libdpdk-dev libisal-dev libipsec-mb-dev libnl-3-dev libnl-route-3-dev
  libboost-program-options-dev libasio-dev libssl-dev libcurl4-openssl-dev liburing-dev
  libfuse3-dev libyaml-cpp-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  # test lab: namespaces, links, nftables, processes
  iproute2 nftables procps psmisc iputils-ping
  # kernel harness: Kbuild against Debian's headers, busybox initramfs, qemu TCG
  linux-headers-amd64 kmod busybox-static cpio qemu-system-x86 zstd xz-utils dpkg-dev
  # filesystems used by the frontends and the demo
  fuse3 e2fsprogs util-linux
)

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
  echo "install-deps: run as root (apt-get needs it)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
