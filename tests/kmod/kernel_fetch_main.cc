// SPDX-License-Identifier: Apache-2.0
// CTest fixture for the kmod label: downloads and unpacks Debian's kernel image once, with its
// own generous timeout, so that the boot tests' timeouts only measure booting.
#include <cstdio>
#include <exception>

#include "tests/lab/kernel.h"

int main() {
  try {
    const auto k = tandem::lab::fetch_kernel();
    std::printf("kernel %s (%s) ready: %s\n", k.release.c_str(), k.version.c_str(),
                k.vmlinuz.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel fetch failed: %s\n", e.what());
    return 1;
  }
}
