// SPDX-License-Identifier: Apache-2.0
// EAL command lines and vdev strings tandem uses (no DPDK headers: the lab links this too).
#include "dataplane/port/eal_args.h"

#include <sched.h>

namespace tandem::dp {

std::string floating_main_lcore() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::string cpus;
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      if (!cpus.empty()) cpus += ',';
      cpus += std::to_string(cpu);
    }
  }
  return cpus.empty() ? "0" : "0@(" + cpus + ")";
}

std::vector<std::string> eal_arguments(const eal_options& opts) {
  std::vector<std::string> a = {"tandem",
                                "--no-huge",
                                "--no-pci",
                                "-m",
                                std::to_string(opts.memory_mb),
                                "--lcores",
                                opts.lcores.empty() ? floating_main_lcore() : opts.lcores};
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

unsigned memif_buffer_size(unsigned mtu) {
  const unsigned frame = mtu + 14;  // the Ethernet header
  return frame <= 2048 ? 2048 : (frame + 1023) / 1024 * 1024;
}

std::string memif_vdev(unsigned index, const std::string& role, const std::string& socket_path,
                       unsigned id, unsigned mtu) {
  std::string v = "net_memif" + std::to_string(index) + ",role=" + role + ",socket=" + socket_path +
                  ",id=" + std::to_string(id) + ",socket-abstract=no";
  if (memif_buffer_size(mtu) != 2048) v += ",bsize=" + std::to_string(memif_buffer_size(mtu));
  return v;
}

}  // namespace tandem::dp
