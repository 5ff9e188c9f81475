// SPDX-License-Identifier: Apache-2.0
// tandem::nl inside lab hosts: what the lab configured reads back through rtnetlink.
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include "netlink/link_watch.h"
#include "netlink/rt_addr.h"
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

std::optional<nl::address_info> find_address(nl::socket& sk, const std::string& ifname,
                                             const std::string& address) {
  for (const auto& a : nl::addresses(sk, ifname)) {
    if (a.address == address) return a;
  }
  return std::nullopt;
}

TEST(netlink_netns, adds_and_removes_ipv4_addresses_with_a_label) {
  lab::lab l(lab::cluster_options(1, 0, false));
  auto sk = nl::socket::open(l.netns("node1"));
  EXPECT_FALSE(nl::has_address(sk, "eth0", "10.99.0.100"));
  nl::add_address(sk, "eth0", "10.99.0.100/24", "eth0:vip");
  EXPECT_TRUE(nl::has_address(sk, "eth0", "10.99.0.100"));
  const auto a = find_address(sk, "eth0", "10.99.0.100");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, AF_INET);
  EXPECT_EQ(a->prefix_len, 24);
  EXPECT_EQ(a->label, "eth0:vip");
  EXPECT_EQ(a->ifindex, nl::find_link(sk, "eth0")->index);
  // The lab's own address is untouched.
  EXPECT_TRUE(nl::has_address(sk, "eth0", l.address("node1")));

  try {
    nl::add_address(sk, "eth0", "10.99.0.100/24");
    FAIL() << "a duplicate add must fail";
  } catch (const nl::error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("10.99.0.100/24"), std::string::npos) << what;
    EXPECT_NE(what.find("eth0"), std::string::npos) << what;
    EXPECT_NE(what.find(l.netns("node1")), std::string::npos) << what;
  }

  // A prefix that does not match removes nothing.
  EXPECT_FALSE(nl::remove_address(sk, "eth0", "10.99.0.100/16"));
  EXPECT_TRUE(nl::remove_address(sk, "eth0", "10.99.0.100/24"));
  EXPECT_FALSE(nl::has_address(sk, "eth0", "10.99.0.100"));
  EXPECT_FALSE(nl::remove_address(sk, "eth0", "10.99.0.100/24"));
  EXPECT_TRUE(nl::has_address(sk, "eth0", l.address("node1")));

  // Without a label the kernel names the address after the interface.
  nl::add_address(sk, "eth0", "10.99.0.101/32");
  const auto b = find_address(sk, "eth0", "10.99.0.101");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->prefix_len, 32);
  EXPECT_EQ(b->label, "eth0");
  EXPECT_TRUE(nl::remove_address(sk, "eth0", "10.99.0.101/32"));
}

TEST(netlink_netns, adds_and_removes_ipv6_addresses) {
  lab::lab l(lab::cluster_options(1, 0, false));
  auto sk = nl::socket::open(l.netns("node1"));
  nl::add_address(sk, "eth0", "fd00:99::100/64", {}, /*nodad=*/true);
  // Any spelling of the address matches.
  EXPECT_TRUE(nl::has_address(sk, "eth0", "fd00:99::100"));
  EXPECT_TRUE(nl::has_address(sk, "eth0", "fd00:99:0:0:0:0:0:100"));
  const auto a = find_address(sk, "eth0", "fd00:99::100");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, AF_INET6);
  EXPECT_EQ(a->prefix_len, 64);
  EXPECT_THROW(nl::add_address(sk, "eth0", "fd00:99::100/64", {}, true), nl::error);
  EXPECT_TRUE(nl::remove_address(sk, "eth0", "fd00:99::100/64"));
  EXPECT_FALSE(nl::has_address(sk, "eth0", "fd00:99::100"));
  EXPECT_FALSE(nl::remove_address(sk, "eth0", "fd00:99::100/64"));

  // With duplicate address detection on (the default) the address is listed at once, tentative.
  nl::add_address(sk, "eth0", "fd00:99::101/64");
  EXPECT_TRUE(nl::has_address(sk, "eth0", "fd00:99::101"));
  EXPECT_TRUE(nl::remove_address(sk, "eth0", "fd00:99::101/64"));
}

TEST(netlink_netns, refuses_bad_labels_addresses_and_interfaces) {
  lab::lab l(lab::cluster_options(1, 0, false));
  auto sk = nl::socket::open(l.netns("node1"));
  const auto message_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(no std::invalid_argument)";
  };
  EXPECT_NE(message_of([&] {
              nl::add_address(sk, "eth0", "10.99.0.100/24", "vip");
            }).find("must start with the interface name eth0"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              nl::add_address(sk, "eth0", "10.99.0.100/24", "eth0:0123456789ab");
            }).find("longer than 15"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              nl::add_address(sk, "eth0", "fd00:99::100/64", "eth0:v6");
            }).find("IPv4 only"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              nl::add_address(sk, "eth9", "10.99.0.100/24");
            }).find("no interface eth9 in netns " + l.netns("node1")),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              nl::remove_address(sk, "eth9", "10.99.0.100/24");
            }).find("no interface eth9"),
            std::string::npos);
  EXPECT_NE(
      message_of([&] { nl::has_address(sk, "eth9", "10.99.0.100"); }).find("no interface eth9"),
      std::string::npos);
  EXPECT_NE(
      message_of([&] { nl::add_address(sk, "eth0", "10.99.0.100"); }).find("no prefix length"),
      std::string::npos);
  EXPECT_NE(message_of([&] { nl::add_address(sk, "eth0", "10.99.0.100/33"); }).find("0..32"),
            std::string::npos);
  EXPECT_NE(message_of([&] { nl::add_address(sk, "eth0", "10.99.0/24"); }).find("not an IPv4"),
            std::string::npos);
  EXPECT_NE(message_of([&] { nl::has_address(sk, "eth0", "10.99.0.100/24"); }).find("not an IPv4"),
            std::string::npos);
  // Nothing was added by the refused calls.
  EXPECT_FALSE(nl::has_address(sk, "eth0", "10.99.0.100"));
  EXPECT_FALSE(nl::has_address(sk, "eth0", "fd00:99::100"));
}

// Sets a link administratively up or down through rtnetlink.
void set_admin(nl::socket& sk, const std::string& ifname, bool up) {
  nl_cache* cache = nullptr;
  ASSERT_EQ(rtnl_link_alloc_cache(sk.get(), AF_UNSPEC, &cache), 0);
  rtnl_link* orig = rtnl_link_get_by_name(cache, ifname.c_str());
  ASSERT_NE(orig, nullptr) << ifname;
  rtnl_link* change = rtnl_link_alloc();
  if (up) {
    rtnl_link_set_flags(change, IFF_UP);
  } else {
    rtnl_link_unset_flags(change, IFF_UP);
  }
  const int err = rtnl_link_change(sk.get(), orig, change, 0);
  rtnl_link_put(change);
  rtnl_link_put(orig);
  nl_cache_free(cache);
  ASSERT_EQ(err, 0) << nl_geterror(err);
}

// Waits (at most `timeout`) for the watch's descriptor to become readable and drains it until an
// event for `name` satisfies `pred`; returns that event.
std::optional<nl::link_event> wait_for(nl::link_watch& w, const std::string& name,
                                       const std::function<bool(const nl::link_event&)>& pred,
                                       std::chrono::milliseconds timeout = 1500ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{w.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    for (const auto& e : w.drain()) {
      if (e.name == name && pred(e)) return e;
    }
  }
}

TEST(netlink_netns, link_watch_sees_carrier_admin_state_and_deletion) {
  lab::lab l(lab::cluster_options(1, 0, false));
  auto sk = nl::socket::open(l.netns("node1"));
  nl::link_watch w(l.netns("node1"));
  EXPECT_EQ(w.netns(), l.netns("node1"));
  ASSERT_GE(w.fd(), 0);
  // Nothing changed yet: nothing to read, and draining never blocks.
  pollfd p{w.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  EXPECT_TRUE(w.drain().empty());
  const int eth0 = nl::find_link(sk, "eth0")->index;

  // Carrier: the lab cuts the switch port.
  l.set_link("node1", 0, false);
  auto e = wait_for(w, "eth0", [](const nl::link_event& ev) { return !ev.carrier; });
  ASSERT_TRUE(e) << "no carrier-loss event";
  EXPECT_EQ(e->ifindex, eth0);
  EXPECT_TRUE(e->up);
  EXPECT_FALSE(e->running);
  EXPECT_FALSE(e->deleted);
  l.set_link("node1", 0, true);
  e = wait_for(w, "eth0", [](const nl::link_event& ev) { return ev.carrier && ev.running; });
  ASSERT_TRUE(e) << "no carrier-back event";
  EXPECT_TRUE(e->up);

  // Administrative state.
  set_admin(sk, "eth0", false);
  e = wait_for(w, "eth0", [](const nl::link_event& ev) { return !ev.up; });
  ASSERT_TRUE(e) << "no admin-down event";
  EXPECT_FALSE(e->running);
  set_admin(sk, "eth0", true);
  e = wait_for(w, "eth0",
               [](const nl::link_event& ev) { return ev.up && ev.carrier && ev.running; });
  ASSERT_TRUE(e) << "no admin-up event";

  // Creation and deletion (a veth pair inside the lab host; the lab removes the namespace).
  rtnl_link* veth = rtnl_link_veth_alloc();
  ASSERT_NE(veth, nullptr);
  rtnl_link_set_name(veth, "tw0");
  rtnl_link* peer = rtnl_link_veth_get_peer(veth);  // a new reference
  rtnl_link_set_name(peer, "tw1");
  rtnl_link_put(peer);
  int err = rtnl_link_add(sk.get(), veth, NLM_F_CREATE | NLM_F_EXCL);
  rtnl_link_veth_release(veth);
  ASSERT_EQ(err, 0) << nl_geterror(err);
  e = wait_for(w, "tw0", [](const nl::link_event& ev) { return !ev.deleted; });
  ASSERT_TRUE(e) << "no event for the new link";
  const int tw0 = e->ifindex;
  rtnl_link* del = rtnl_link_alloc();
  rtnl_link_set_name(del, "tw0");
  err = rtnl_link_delete(sk.get(), del);
  rtnl_link_put(del);
  ASSERT_EQ(err, 0) << nl_geterror(err);
  e = wait_for(w, "tw0", [](const nl::link_event& ev) { return ev.deleted; });
  ASSERT_TRUE(e) << "no deletion event";
  EXPECT_EQ(e->ifindex, tw0);
}

TEST(netlink_netns, link_watch_resynchronises_after_the_kernel_drops_notifications) {
  lab::lab l(lab::cluster_options(1, 0, false));
  auto sk = nl::socket::open(l.netns("node1"));
  nl::link_watch w(l.netns("node1"));
  // Shrink the receive buffer to the kernel's minimum so a burst overflows it (ENOBUFS).
  const int small = 1;
  ASSERT_EQ(::setsockopt(w.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  for (int i = 0; i < 20; ++i)
    set_admin(sk, "eth0", i % 2 != 0);  // ends up
  set_admin(sk, "eth0", false);         // ends down
  const auto events = w.drain();
  // The last event for each interface is its current state, and every link is reported.
  const auto last = std::find_if(events.rbegin(), events.rend(),
                                 [](const nl::link_event& ev) { return ev.name == "eth0"; });
  ASSERT_NE(last, events.rend());
  EXPECT_FALSE(last->up);
  EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                          [](const nl::link_event& ev) { return ev.name == "lo"; }))
      << "no resynchronisation: " << events.size() << " events";
  EXPECT_TRUE(w.drain().empty());
}

TEST(netlink_netns, link_watch_moves_and_sees_only_its_namespace) {
  lab::lab l(lab::cluster_options(2, 0, false));
  nl::link_watch a(l.netns("node1"));
  const int fd = a.fd();
  nl::link_watch b = std::move(a);
  EXPECT_EQ(b.fd(), fd);
  EXPECT_EQ(b.netns(), l.netns("node1"));
  // node2's carrier loss happens in another namespace: node1's watch hears nothing.
  l.set_link("node2", 0, false);
  pollfd p{b.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 300), 0);
  EXPECT_TRUE(b.drain().empty());
  l.set_link("node1", 0, false);
  const auto e = wait_for(b, "eth0", [](const nl::link_event& ev) { return !ev.carrier; });
  ASSERT_TRUE(e);
}

}  // namespace
}  // namespace tandem
