// SPDX-License-Identifier: Apache-2.0
// DPDK EAL start-up from configured arguments.
#include "dataplane/port/eal.h"

#include <cerrno>
#include <cstring>

#include <rte_eal.h>
#include <rte_errno.h>

namespace tandem::dp {
namespace {
bool g_initialised = false;
}

int eal_init(const std::vector<std::string>& args, std::string& error) {
  if (g_initialised) {
    error = "EAL already initialised in this process";
    return -EALREADY;
  }
  // rte_eal_init may permute argv; it gets its own copies.
  std::vector<std::string> storage(args);
  std::vector<char*> argv;
  for (auto& s : storage)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(storage.size()), argv.data());
  if (rc < 0) {
    const int err = rte_errno != 0 ? rte_errno : EINVAL;
    error = std::string("rte_eal_init failed: ") + rte_strerror(err);
    return -err;
  }
  g_initialised = true;
  return 0;
}

void eal_cleanup() {
  if (g_initialised) {
    rte_eal_cleanup();
    g_initialised = false;
  }
}

}  // namespace tandem::dp
