// SPDX-License-Identifier: Apache-2.0
// netlink/announce.h between lab hosts: a gratuitous ARP or an unsolicited neighbour
// advertisement from the node that now holds an address moves the client's neighbour entry to
// that node's MAC without the client doing anything; an ARP probe names the MAC of the host that
// holds an address, and nobody for a free one. (The test sets addresses up with `ip`; the product
// uses tandem::nl.)
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "netlink/announce.h"
#include "tests/lab/netns.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;

// The client's neighbour entry for `address` holds `mac` (within a second).
bool neighbour_is(lab::lab& l, const std::string& address, const std::string& mac,
                  const std::string& family = "-4") {
  for (int i = 0; i < 50; ++i) {
    const auto r = l.exec("client", {"ip", family, "neigh", "show", address, "dev", "eth0"});
    if (r.output.find(mac) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(announce_netns, gratuitous_arp_moves_the_clients_neighbour_entry) {
  lab::lab l(lab::cluster_options(2, 0, true));
  const std::string vip = "10.99.0.100";
  l.exec_checked("node1", {"ip", "addr", "add", vip + "/24", "dev", "eth0"});
  ASSERT_TRUE(l.ping("client", vip));
  ASSERT_TRUE(neighbour_is(l, vip, l.mac("node1", 0)));
  // The address moves to node2; the kernel ignores updates within a second of the last one.
  l.exec_checked("node1", {"ip", "addr", "del", vip + "/24", "dev", "eth0"});
  l.exec_checked("node2", {"ip", "addr", "add", vip + "/24", "dev", "eth0"});
  std::this_thread::sleep_for(1100ms);
  // Without an announcement the client still has node1's MAC.
  ASSERT_NE(l.exec("client", {"ip", "neigh", "show", vip}).output.find(l.mac("node1", 0)),
            std::string::npos);
  nl::gratuitous_arp(l.netns("node2"), "eth0", vip, 3, 100ms);
  EXPECT_TRUE(neighbour_is(l, vip, l.mac("node2", 0)))
      << l.exec("client", {"ip", "neigh", "show"}).output;
}

TEST(announce_netns, an_arp_probe_finds_the_holder_of_an_address) {
  lab::lab l(lab::cluster_options(2, 0, true));
  l.exec_checked("node1", {"ip", "addr", "add", "10.99.0.100/24", "dev", "eth0"});
  const auto holder = nl::arp_probe(l.netns("node2"), "eth0", "10.99.0.100", 500ms);
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(*holder, l.mac("node1", 0));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(nl::arp_probe(l.netns("node2"), "eth0", "10.99.0.101", 300ms).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_THROW(nl::arp_probe(l.netns("node2"), "nope0", "10.99.0.101", 100ms), std::system_error);
  EXPECT_THROW(nl::arp_probe(l.netns("node2"), "eth0", "10.99.0.300", 100ms),
               std::invalid_argument);
}

TEST(announce_netns, an_unsolicited_na_moves_the_clients_ipv6_neighbour_entry) {
  lab::lab l(lab::cluster_options(2, 0, true));
  const std::string vip = "fd00:99::100";
  for (const char* h : {"node1", "node2", "client"})
    l.exec_checked(h, {"sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=0"});
  l.exec_checked("client", {"ip", "-6", "addr", "add", "fd00:99::3/64", "dev", "eth0", "nodad"});
  l.exec_checked("node1", {"ip", "-6", "addr", "add", vip + "/64", "dev", "eth0", "nodad"});
  const auto ping = l.exec("client", {"ping", "-6", "-c", "1", "-W", "2", vip});
  ASSERT_TRUE(ping.status.ok()) << ping.output;
  ASSERT_TRUE(neighbour_is(l, vip, l.mac("node1", 0), "-6"));
  l.exec_checked("node1", {"ip", "-6", "addr", "del", vip + "/64", "dev", "eth0"});
  l.exec_checked("node2", {"ip", "-6", "addr", "add", vip + "/64", "dev", "eth0", "nodad"});
  ASSERT_NE(l.exec("client", {"ip", "-6", "neigh", "show", vip}).output.find(l.mac("node1", 0)),
            std::string::npos);
  nl::unsolicited_na(l.netns("node2"), "eth0", vip, 3, 100ms);
  EXPECT_TRUE(neighbour_is(l, vip, l.mac("node2", 0), "-6"))
      << l.exec("client", {"ip", "-6", "neigh", "show"}).output;
}

}  // namespace
}  // namespace tandem
