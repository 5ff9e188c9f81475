// SPDX-License-Identifier: Apache-2.0
// DPDK EAL start-up from configured arguments, and the argument sets tandem uses.
#pragma once

#include <string>
#include <vector>

namespace tandem::dp {

// EAL arguments for hosts without hugepages or a NIC that DPDK may own: tests, the demo and
// containers. Production passes its own arguments (PCI allow-list, hugepages) to eal_init().
struct eal_options {
  std::string file_prefix;         // unique per process: keeps runs apart
  std::vector<std::string> vdevs;  // e.g. af_packet_vdev(0, "eth1")
  std::string lcores = "0@(0-1)";  // main lcore, allowed to float over the first two CPUs
  unsigned memory_mb = 256;        // heap for mempools (anonymous memory with --no-huge)
  bool no_shconf = true;           // no shared config files; memif needs them (false)
  std::vector<std::string> extra;  // appended verbatim
};

// "tandem" followed by the EAL arguments: --no-huge --no-pci --no-shconf --file-prefix ...
// (--in-memory cannot be used: --no-huge implies legacy memory, which it refuses.)
std::vector<std::string> eal_arguments(const eal_options& opts);

// net_af_packet on a kernel interface (a veth inside a namespace, here). framecnt sizes the
// kernel's receive ring per queue (the PMD's default, 512, overflows on a busy 2-core host).
std::string af_packet_vdev(unsigned index, const std::string& iface, unsigned qpairs = 1,
                           unsigned framecnt = 4096);
// net_memif between two processes over a unix socket; role "server" or "client". The socket is a
// file (not DPDK's default abstract socket, which is private to one network namespace).
std::string memif_vdev(unsigned index, const std::string& role, const std::string& socket_path,
                       unsigned id = 0);

// Initialises the EAL once per process. Returns 0, or a negative errno with `error` set to
// DPDK's reason; a second call returns -EALREADY.
int eal_init(const std::vector<std::string>& args, std::string& error);
// Runtime directory the EAL uses for a file prefix (as root): /var/run/dpdk/<prefix>.
std::string eal_runtime_dir(const std::string& file_prefix);
// Releases EAL resources at exit; harmless when eal_init() did not succeed.
void eal_cleanup();

}  // namespace tandem::dp
