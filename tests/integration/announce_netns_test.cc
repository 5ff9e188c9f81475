// SPDX-License-Identifier: Apache-2.0
// netlink/announce.h between lab hosts: a gratuitous ARP or an unsolicited neighbour
// advertisement from the node that now holds an address moves the client's neighbour entry to
// that node's MAC without the client doing anything; an ARP probe or an IPv6 DAD probe names the
// MAC of the host that holds an address, and nobody for a free one. (The test sets addresses up
// with `ip`; the product uses tandem::nl.)
#include <chrono>
#include <future>
#include <initializer_list>
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

// Turns IPv6 on for eth0 of `hosts` (the lab leaves it off).
void enable_ipv6(lab::lab& l, std::initializer_list<const char*> hosts) {
  for (const char* h : hosts)
    l.exec_checked(h, {"sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=0"});
}

// Adds `address`/64 to a host's eth0 without the kernel's DAD and waits until it is usable (not
// tentative), so the host's kernel answers solicitations for it.
void add_ipv6(lab::lab& l, const std::string& host, const std::string& address) {
  l.exec_checked(host, {"ip", "-6", "addr", "add", address + "/64", "dev", "eth0", "nodad"});
  for (int i = 0; i < 100; ++i) {
    const auto r = l.exec(host, {"ip", "-6", "addr", "show", "dev", "eth0", "tentative"});
    if (r.output.find(address) == std::string::npos) return;
    std::this_thread::sleep_for(20ms);
  }
  FAIL() << host << ": " << address << " stays tentative";
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

TEST(announce_netns, a_dad_probe_finds_the_holder_of_an_ipv6_address) {
  lab::lab l(lab::cluster_options(2, 0, true));
  enable_ipv6(l, {"node1", "node2"});
  ASSERT_NO_FATAL_FAILURE(add_ipv6(l, "node1", "fd00:99::100"));
  const auto holder = nl::nd_probe(l.netns("node2"), "eth0", "fd00:99::100", 1000ms);
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(*holder, l.mac("node1", 0));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(nl::nd_probe(l.netns("node2"), "eth0", "fd00:99::101", 300ms).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms + 700ms);
  EXPECT_THROW(nl::nd_probe(l.netns("node2"), "nope0", "fd00:99::101", 100ms), std::system_error);
  EXPECT_THROW(nl::nd_probe(l.netns("node2"), "eth0", "10.99.0.100", 100ms), std::invalid_argument);
  EXPECT_THROW(nl::nd_probe(l.netns("node2"), "eth0", "fd00:99::1::2", 100ms),
               std::invalid_argument);
}

TEST(announce_netns, a_dad_probe_does_not_report_the_probing_hosts_own_address) {
  lab::lab l(lab::cluster_options(2, 0, true));
  enable_ipv6(l, {"node1", "node2"});
  ASSERT_NO_FATAL_FAILURE(add_ipv6(l, "node2", "fd00:99::102"));
  // The solicitation leaves through a packet socket, so node2's own IPv6 stack never receives it
  // and does not answer (checked by hand: node2's Icmp6InNeighborSolicits stays 0); node1 does
  // not hold the address. The copy the socket sees of its own
  // frame (PACKET_OUTGOING, node2's MAC) is skipped.
  EXPECT_FALSE(nl::nd_probe(l.netns("node2"), "eth0", "fd00:99::102", 500ms).has_value());
  // The address is still node2's and node1's probe says so.
  const auto holder = nl::nd_probe(l.netns("node1"), "eth0", "fd00:99::102", 1000ms);
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(*holder, l.mac("node2", 0));
}

TEST(announce_netns, a_dad_probe_sees_another_host_probing_for_the_same_address) {
  lab::lab l(lab::cluster_options(2, 0, true));
  enable_ipv6(l, {"node1", "node2"});
  // node1 listens first; node2's solicitation from :: for the same free address, sent while
  // node1 is still waiting, names node2.
  auto first = std::async(std::launch::async, [&] {
    return nl::nd_probe(l.netns("node1"), "eth0", "fd00:99::103", 2000ms);
  });
  std::this_thread::sleep_for(300ms);
  (void)nl::nd_probe(l.netns("node2"), "eth0", "fd00:99::103", 300ms);
  const auto other = first.get();
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(*other, l.mac("node2", 0));
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
