// SPDX-License-Identifier: Apache-2.0
// replicator_eal_arguments (dataplane/app/replicator.h) and memif_vdev's buffer size
// (dataplane/port/eal_args.h): what a replicator on port dpdk hands to rte_eal_init.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/config/mirrors_config.h"
#include "dataplane/app/replicator.h"
#include "dataplane/port/eal_args.h"

namespace tandem::dp::app {
namespace {

namespace cfg = ctl::config;

cfg::mirrors_config config_with(const std::string& x_device, const std::string& y_device,
                                std::vector<std::string> eal_args = {}) {
  auto r = cfg::parse_mirrors_text(
      "mirrors:\n  transport: {port: dpdk}\n  volumes:\n    - name: db\n      data: /dev/vdb\n"
      "      meta: /var/lib/db.meta\n      replicas:\n"
      "        - {node: x, address: 10.0.0.1, dpdk_device: \"" +
          x_device + "\"}\n        - {node: y, address: 10.0.0.2, dpdk_device: \"" + y_device +
          "\"}\n",
      "m.yaml");
  EXPECT_TRUE(r.ok()) << r.diag.to_string();
  r.config.transport.eal_args = std::move(eal_args);
  return r.config;
}

bool has(const std::vector<std::string>& a, const std::string& s) {
  return std::find(a.begin(), a.end(), s) != a.end();
}

TEST(replicator_eal, vdevs_get_defaults_without_devices_on_the_command_line) {
  const auto a = replicator_eal_arguments(config_with("net_af_packet0,iface=eth1", "0000:03:00.0"),
                                          "x", "pfx");
  EXPECT_EQ(a[0], "tandem-replicator");
  EXPECT_TRUE(has(a, "--no-huge"));
  EXPECT_TRUE(has(a, "--no-pci"));     // x's device is a vdev; y's PCI device is not x's
  EXPECT_TRUE(has(a, "--no-shconf"));  // no memif
  EXPECT_TRUE(has(a, "--file-prefix=pfx"));
  for (const auto& s : a)
    EXPECT_EQ(s.find("net_af_packet0"), std::string::npos) << s;
}

TEST(replicator_eal, pci_devices_are_allowed_and_memif_keeps_shared_config) {
  const auto pci = replicator_eal_arguments(
      config_with("net_af_packet0,iface=eth1", "0000:03:00.0"), "y", "pfx");
  EXPECT_FALSE(has(pci, "--no-pci"));
  const auto at = std::find(pci.begin(), pci.end(), "-a");
  ASSERT_NE(at, pci.end());
  EXPECT_EQ(*(at + 1), "0000:03:00.0");
  const auto memif = replicator_eal_arguments(
      config_with("net_memif0,role=server,socket=/tmp/m.sock", "net_memif0,socket=/tmp/m.sock"),
      "x", "pfx");
  EXPECT_FALSE(has(memif, "--no-shconf"));  // memif needs DPDK's multi-process channel
}

TEST(replicator_eal, configured_arguments_replace_the_defaults) {
  const auto own = replicator_eal_arguments(
      config_with("0000:03:00.0", "0000:03:00.0", {"-l", "2", "--huge-dir", "/mnt/huge"}), "x",
      "pfx");
  EXPECT_EQ(own, (std::vector<std::string>{"tandem-replicator", "-l", "2", "--huge-dir",
                                           "/mnt/huge", "--file-prefix=pfx"}));
  const auto named = replicator_eal_arguments(
      config_with("0000:03:00.0", "0000:03:00.0", {"--file-prefix=mine"}), "x", "pfx");
  EXPECT_EQ(named, (std::vector<std::string>{"tandem-replicator", "--file-prefix=mine"}));
}

TEST(memif_vdev, buffers_fit_one_frame) {
  EXPECT_EQ(memif_buffer_size(1500), 2048u);
  EXPECT_EQ(memif_buffer_size(2034), 2048u);
  EXPECT_EQ(memif_buffer_size(2035), 3072u);
  EXPECT_EQ(memif_buffer_size(9000), 9216u);
  EXPECT_EQ(memif_vdev(0, "server", "/tmp/a.sock").find("bsize"), std::string::npos);
  EXPECT_NE(memif_vdev(1, "client", "/tmp/a.sock", 3, 9000).find(",bsize=9216"), std::string::npos);
}

}  // namespace
}  // namespace tandem::dp::app
