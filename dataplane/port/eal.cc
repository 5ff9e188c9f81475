// SPDX-License-Identifier: Apache-2.0
// DPDK EAL start-up from configured arguments.
#include "dataplane/port/eal.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

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

int eal_register_thread(std::string& error) {
  if (rte_thread_register() != 0) {
    const int err = rte_errno != 0 ? rte_errno : EINVAL;
    error = std::string("rte_thread_register failed: ") + rte_strerror(err);
    return -err;
  }
  return 0;
}

void eal_unregister_thread() {
  rte_thread_unregister();
}

std::string device_name(const std::string& spec) {
  return spec.substr(0, spec.find(','));
}

std::string device_bus(const std::string& spec) {
  return spec.rfind("net_", 0) == 0 ? "vdev" : "pci";
}

namespace {

bool find_port(const std::string& name, uint16_t& port_id) {
  return rte_eth_dev_get_port_by_name(name.c_str(), &port_id) == 0;
}

}  // namespace

plugged_device::plugged_device(const std::string& spec)
    : spec_(spec), name_(device_name(spec)), bus_(device_bus(spec)) {
  if (!g_initialised) throw std::runtime_error("device " + name_ + ": the EAL is not initialised");
  if (find_port(name_, port_id_)) return;
  int rc = rte_dev_probe(spec_.c_str());
  if (rc == -EEXIST) {
    // Probed before, but its ethdev was closed (and released): start it over.
    rte_eal_hotplug_remove(bus_.c_str(), name_.c_str());
    rc = rte_dev_probe(spec_.c_str());
  }
  if (rc != 0) {
    throw std::runtime_error("device " + spec_ + ": probe failed: " + rte_strerror(-rc));
  }
  if (!find_port(name_, port_id_)) {
    rte_eal_hotplug_remove(bus_.c_str(), name_.c_str());
    throw std::runtime_error("device " + spec_ + ": probed, but no ethdev is named " + name_ +
                             (bus_ == "pci" ? " (give the full PCI address, 0000:03:00.0)" : ""));
  }
}

plugged_device::~plugged_device() {
  // A device that is already gone (removed by its driver) is not an error at teardown.
  rte_eal_hotplug_remove(bus_.c_str(), name_.c_str());
}

}  // namespace tandem::dp
