// SPDX-License-Identifier: Apache-2.0
// tandem::nl inside lab hosts: what the lab configured reads back through rtnetlink.
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "netlink/rt_link.h"
#include "tests/lab/netns.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;

TEST(netlink_netns, reads_back_the_lab_topology_and_carrier_loss) {
  lab::lab l(lab::cluster_options(2, 1, false));
  auto sk = nl::socket::open(l.netns("node2"));
  EXPECT_EQ(sk.netns(), l.netns("node2"));
  for (int lan = 0; lan < 2; ++lan) {
    const auto link = nl::find_link(sk, l.iface(lan));
    ASSERT_TRUE(link) << l.iface(lan);
    EXPECT_EQ(link->mac, l.mac("node2", lan));
    EXPECT_TRUE(link->up);
    EXPECT_TRUE(link->carrier);
    const auto addrs = nl::addresses(sk, l.iface(lan));
    bool found = false;
    for (const auto& a : addrs) {
      if (a.family == AF_INET && a.address == l.address("node2", lan)) {
        found = true;
        EXPECT_EQ(a.prefix_len, l.prefix_len());
        EXPECT_EQ(a.label, l.iface(lan));
      }
    }
    EXPECT_TRUE(found) << l.address("node2", lan);
  }
  // node1's interfaces are not visible from node2's namespace.
  for (const auto& link : nl::links(sk)) {
    EXPECT_NE(link.mac, l.mac("node1", 0)) << link.name;
    EXPECT_NE(link.mac, l.mac("node1", 1)) << link.name;
  }

  l.set_link("node2", 0, false);
  bool lost = false;
  for (int i = 0; i < 50 && !lost; ++i) {
    const auto link = nl::find_link(sk, "eth0");
    lost = link && !link->carrier && link->up;
    if (!lost) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(lost) << "eth0 should stay administratively up with no carrier";
}

}  // namespace
}  // namespace tandem
