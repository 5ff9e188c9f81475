// SPDX-License-Identifier: Apache-2.0
// EAL command lines and vdev strings tandem uses (no DPDK headers: the lab links this too).
#pragma once

#include <string>
#include <vector>

namespace tandem::dp {

// EAL arguments for hosts without hugepages or a NIC that DPDK may own: tests, the demo and
// containers. Production passes its own arguments (PCI allow-list, hugepages) to eal_init().
struct eal_options {
  std::string file_prefix;         // unique per process: keeps runs apart
  std::vector<std::string> vdevs;  // e.g. af_packet_vdev(0, "eth1")
  std::string lcores;              // empty: lcore 0 floating over the CPUs this process may use
  unsigned memory_mb = 256;        // heap for mempools (anonymous memory with --no-huge)
  bool no_shconf = true;           // no shared config files; memif needs them (false)
  std::vector<std::string> extra;  // appended verbatim
};

// "tandem" followed by the EAL arguments: --no-huge --no-pci --no-shconf --file-prefix ...
// (--in-memory cannot be used: --no-huge implies legacy memory, which it refuses.)
std::vector<std::string> eal_arguments(const eal_options& opts);

// "0@(0-1)" style mapping of lcore 0 to the CPUs in this process's affinity mask.
std::string floating_main_lcore();

// net_af_packet on a kernel interface (a veth inside a namespace, here). framecnt sizes the
// kernel's receive ring per queue (the PMD's default, 512, overflows on a busy 2-core host).
std::string af_packet_vdev(unsigned index, const std::string& iface, unsigned qpairs = 1,
                           unsigned framecnt = 4096);
// net_memif between two processes over a unix socket; role "server" or "client". The socket is a
// file (not DPDK's default abstract socket, which is private to one network namespace).
// `mtu` (the IP MTU the ports use) sets the memif buffer size (bsize) so that every frame fits
// one memif descriptor: DPDK 22.11's memif receiver mishandles frames chained over several
// descriptors (it hands the same descriptors out again and again).
std::string memif_vdev(unsigned index, const std::string& role, const std::string& socket_path,
                       unsigned id = 0, unsigned mtu = 1500);
// The memif buffer size a frame of IP MTU `mtu` needs: 2048 (memif's default) or the frame size
// rounded up to 1 KiB.
unsigned memif_buffer_size(unsigned mtu);

// Runtime directory the EAL uses for a file prefix (as root): /var/run/dpdk/<prefix>.
std::string eal_runtime_dir(const std::string& file_prefix);

}  // namespace tandem::dp
