// SPDX-License-Identifier: Apache-2.0
// DPDK EAL start-up from configured arguments, and the argument sets tandem uses.
#include "dataplane/port/eal.h"

#include <cerrno>
#include <cstring>

#include <rte_eal.h>
#include <rte_errno.h>

namespace tandem::dp {
namespace {
bool g_initialised = false;
}

std::vector<std::string> eal_arguments(const eal_options& opts) {
  std::vector<std::string> a = {
      "tandem",   "--no-huge", "--no-pci", "-m", std::to_string(opts.memory_mb),
      "--lcores", opts.lcores};
  if (opts.no_shconf) a.emplace_back("--no-shconf");
  if (!opts.file_prefix.empty()) a.push_back("--file-prefix=" + opts.file_prefix);
  for (const auto& v : opts.vdevs)
    a.push_back("--vdev=" + v);
  a.insert(a.end(), opts.extra.begin(), opts.extra.end());
  return a;
}

std::string eal_runtime_dir(const std::string& file_prefix) {
  return "/var/run/dpdk/" + file_prefix;
}

std::string af_packet_vdev(unsigned index, const std::string& iface, unsigned qpairs,
                           unsigned framecnt) {
  return "net_af_packet" + std::to_string(index) + ",iface=" + iface +
         ",qpairs=" + std::to_string(qpairs) + ",framecnt=" + std::to_string(framecnt);
}

std::string memif_vdev(unsigned index, const std::string& role, const std::string& socket_path,
                       unsigned id) {
  return "net_memif" + std::to_string(index) + ",role=" + role + ",socket=" + socket_path +
         ",id=" + std::to_string(id) + ",socket-abstract=no";
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
