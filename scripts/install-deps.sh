#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian 12 package tandem needs to build, test, benchmark and run its demo.
# Idempotent and non-interactive: when something is missing it runs `apt-get update` first,
# then installs only what is missing. Run as root (or with sudo).
set -euo pipefail

packages=(
  # toolchain and build
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev llvm-14 clang-format clang-tidy lcov
  # libraries (cmake/TandemDeps.cmake maps them to pkg-config / CMake package names)
  libdpdk-dev libisal-dev libipsec-mb-dev libnl-3-dev libnl-route-3-dev
  libboost-program-options-dev libasio-dev libssl-dev libcurl4-openssl-dev liburing-dev
  libfuse3-dev libyaml-cpp-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libtinyxml2-dev
  # test lab: namespaces, links, nftables, ping, loop devices and mounts
  iproute2 nftables procps iputils-ping util-linux
  # the FUSE frontend's tests: ext4 over a loop device on a volume's file (fuse3: fusermount3)
  fuse3 e2fsprogs
  # failover groups: the demo's and the tests' client talks HTTP to the group's service
  curl
  # quorum tests: a real etcd (v3 JSON gateway) in a lab namespace
  etcd-server etcd-client
  # perf: kernel TCP between namespaces is the socket port's ceiling; fio through each frontend;
  # `ip addr add` + `arping -U` is the floating IP benchmark's baseline
  iperf3 fio iputils-arping
  # cloud routing: the fake AWS endpoints check every signature with botocore's signer (not
  # ours), and the AWS CLI drives them to prove they speak the real wire format; openssl makes
  # the tests' CA
  python3 python3-botocore awscli openssl
  # kernel harness: Kbuild against Debian's headers, busybox initramfs, qemu TCG
  linux-headers-amd64 kmod busybox-static cpio qemu-system-x86 zstd xz-utils
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

export DEBIAN_FRONTEND=noninteractive
updated=0
if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  apt-get update -q
  updated=1
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The kernel harness boots the linux-image that matches linux-headers-amd64, fetched with
# `apt-get download`. When the archive has moved on to a newer kernel, the old image is gone:
# follow it, so that the headers, the modules we build and the image stay one version.
image_available() {
  local dep rel ver
  dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64)
  rel=$(sed -E 's/^linux-headers-([^ ,]+-amd64).*/\1/' <<<"$dep")
  ver=$(sed -E 's/.*\(= ([^)]+)\).*/\1/' <<<"$dep")
  apt-cache show "linux-image-$rel=$ver" >/dev/null 2>&1 ||
    apt-cache show "linux-image-$rel-unsigned=$ver" >/dev/null 2>&1
}
if ! image_available; then
  ((updated)) || apt-get update -q
  if ! image_available; then
    echo "install-deps: moving linux-headers-amd64 to the archive's current kernel"
    apt-get install -y -q --no-install-recommends --only-upgrade linux-headers-amd64
  fi
fi
echo "install-deps: all ${#packages[@]} packages present"
