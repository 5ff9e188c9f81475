// SPDX-License-Identifier: Apache-2.0
// DPDK EAL start-up from configured arguments.
#pragma once

#include <string>
#include <vector>

#include "dataplane/port/eal_args.h"

namespace tandem::dp {

// Initialises the EAL once per process. Returns 0, or a negative errno with `error` set to
// DPDK's reason; a second call returns -EALREADY.
int eal_init(const std::vector<std::string>& args, std::string& error);
// Releases EAL resources at exit; harmless when eal_init() did not succeed.
void eal_cleanup();

// Makes the calling thread (not started by the EAL) an EAL thread with its own lcore id, so
// mempool caches serve it. Returns 0 or a negative errno; eal_unregister_thread() before it ends.
int eal_register_thread(std::string& error);
void eal_unregister_thread();

// The ethdev name of a device spec: the part before the first comma ("net_memif0" of
// "net_memif0,role=server,socket=/tmp/a.sock", "0000:03:00.0" of a PCI address).
std::string device_name(const std::string& spec);
// "vdev" for net_* specs, else "pci".
std::string device_bus(const std::string& spec);

// An ethdev plugged at run time (DPDK hotplug) from a device spec, so that a volume's port comes
// and goes with the volume. A device already present (given to the EAL at start) is used as it
// is; one that was closed and released earlier is removed and probed again. The destructor
// removes the device; close its ethdev (destroy the dpdk_port) first.
class plugged_device {
 public:
  // Throws std::runtime_error with DPDK's reason.
  explicit plugged_device(const std::string& spec);
  ~plugged_device();
  plugged_device(const plugged_device&) = delete;
  plugged_device& operator=(const plugged_device&) = delete;

  uint16_t port_id() const { return port_id_; }
  const std::string& name() const { return name_; }

 private:
  std::string spec_, name_, bus_;
  uint16_t port_id_ = 0;
};

}  // namespace tandem::dp
