// SPDX-License-Identifier: Apache-2.0
// The DPDK harness: EAL processes with --no-huge --no-pci and a vdev inside lab hosts.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "control/exec/process.h"
#include "tests/lab/netns.h"

namespace tandem::lab {

enum class dpdk_vdev_kind {
  af_packet,  // net_af_packet on the host's veth for the lan: frames cross the lab's bridge
  memif,      // net_memif: the receiver is the server, the sender connects over a unix socket
};

struct dpdk_frames_options {
  std::string tx_host = "node1";
  std::string rx_host = "node2";
  dpdk_vdev_kind kind = dpdk_vdev_kind::af_packet;
  int lan = 0;
  uint64_t count = 10000;
  unsigned payload = 1024;
  uint64_t pps = 0;          // sender pacing; 0 = as fast as the port accepts
  unsigned mtu = 1500;       // IP MTU of the DPDK ports (memif; af_packet follows the veth)
  bool udp_checksum = true;  // false: 0 on the wire, as the transport sends (ceilings)
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

// A receiver and a sender process and how they ended.
struct pair_result {
  ctl::exit_status tx_status;
  ctl::exit_status rx_status;
  std::string tx_json;  // each tool's last JSON summary line
  std::string rx_json;
  std::string logs;  // both processes' complete output, for failure messages
  bool ok() const { return tx_status.ok() && rx_status.ok(); }
};
using dpdk_frames_result = pair_result;

struct pair_process {
  std::string host;
  std::string name;  // log name: <log_dir>/<host>.<name>.log
  std::vector<std::string> argv;
};

// Starts the receiver, waits until it prints READY, runs the sender, and waits for both (each
// at most `limit`). Throws when the receiver exits or stays silent for 30 s.
pair_result run_pair(lab& l, const pair_process& rx, const pair_process& tx,
                     std::chrono::milliseconds limit);

// The raw ceiling of a DPDK port pair: one unpaced run of the largest frames the MTU allows from
// node1 to node2 (UDP checksum 0, as the transport sends), in Gbit/s at the receiver; 0, with
// both tools' logs on stderr, when the run fails.
double dpdk_raw_gbps(lab& l, dpdk_vdev_kind kind, int lan, unsigned mtu);

// tandem-lab-port (tests/lab/port_tool_main.cc) with its EAL runtime directory registered for
// removal: {tool, --role, role, --vdev, vdev, --file-prefix, unique}.
std::string port_tool();
std::vector<std::string> port_tool_args(lab& l, const std::string& host, const std::string& role,
                                        const std::string& vdev, const std::string& tag);
// tandem-lab-transport's leading arguments for one end: its role (send|recv), its port
// ("socket" or a vdev), this host's and the peer's address on `lan` at `udp_port`; a DPDK port
// gets a unique --file-prefix whose runtime directory the lab removes. Callers append the rest.
std::vector<std::string> transport_tool_args(lab& l, const std::string& host,
                                             const std::string& role, const std::string& port,
                                             const std::string& peer, int lan, uint16_t udp_port,
                                             const std::string& tag);
// A unique EAL --file-prefix for one process of a lab run; its runtime directory is removed
// with the lab.
std::string eal_prefix(lab& l, const std::string& tag, const std::string& host);
// A memif socket path for this lab, registered for removal.
std::string memif_socket(lab& l, const std::string& tag);

// Starts a receiver in rx_host, waits until its port is up, then runs a sender in tx_host; each
// process initialises its own EAL (--no-huge --no-pci and a unique --file-prefix). Throws when a
// process cannot start or the receiver never gets ready.
dpdk_frames_result dpdk_frames(lab& l, const dpdk_frames_options& opts);

// Path of the traffic tool.
std::string dpdk_frames_tool();

}  // namespace tandem::lab
