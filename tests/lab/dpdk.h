// SPDX-License-Identifier: Apache-2.0
// The DPDK harness: EAL processes with --no-huge --no-pci and a vdev inside lab hosts.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

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
  uint64_t pps = 0;  // sender pacing; 0 = as fast as the port accepts
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

struct dpdk_frames_result {
  ctl::exit_status tx_status;
  ctl::exit_status rx_status;
  std::string tx_json;  // the tool's summary lines (see tests/lab/dpdk_frames_main.cc)
  std::string rx_json;
  std::string logs;  // both processes' complete output, for failure messages
  bool ok() const { return tx_status.ok() && rx_status.ok(); }
};

// Starts a receiver in rx_host, waits until its port is up, then runs a sender in tx_host; each
// process initialises its own EAL (--no-huge --no-pci and a unique --file-prefix). Throws when a
// process cannot start or the receiver never gets ready.
dpdk_frames_result dpdk_frames(lab& l, const dpdk_frames_options& opts);

// Path of the traffic tool.
std::string dpdk_frames_tool();

}  // namespace tandem::lab
