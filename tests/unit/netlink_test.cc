// SPDX-License-Identifier: Apache-2.0
// tandem::nl in the test's own namespace: loopback is always there to read back.
#include <sys/socket.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "netlink/link_watch.h"
#include "netlink/rt_addr.h"
#include "netlink/rt_link.h"
#include "netlink/rt_socket.h"

namespace tandem::nl {
namespace {

TEST(netlink, reads_loopback_link_and_address) {
  auto sk = socket::open();
  const auto all = links(sk);
  ASSERT_FALSE(all.empty());
  const auto lo = find_link(sk, "lo");
  ASSERT_TRUE(lo.has_value());
  EXPECT_TRUE(lo->up);
  EXPECT_GT(lo->index, 0);
  EXPECT_GT(lo->mtu, 0u);
  EXPECT_TRUE(
      std::any_of(all.begin(), all.end(), [](const link_info& l) { return l.name == "lo"; }));
  const auto addrs = addresses(sk, "lo");
  const auto v4 = std::find_if(addrs.begin(), addrs.end(),
                               [](const address_info& a) { return a.family == AF_INET; });
  ASSERT_NE(v4, addrs.end());
  EXPECT_EQ(v4->address, "127.0.0.1");
  EXPECT_EQ(v4->prefix_len, 8);
  EXPECT_EQ(v4->label, "lo");
  EXPECT_EQ(v4->ifindex, lo->index);
}

TEST(netlink, unknown_names_are_clear) {
  auto sk = socket::open();
  EXPECT_FALSE(find_link(sk, "tandem-nope0").has_value());
  EXPECT_THROW(addresses(sk, "tandem-nope0"), std::invalid_argument);
  try {
    socket::open("tandem-no-such-netns");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/run/netns/tandem-no-such-netns"), std::string::npos);
  }
}

TEST(netlink, socket_moves) {
  auto a = socket::open();
  auto b = std::move(a);
  EXPECT_EQ(a.get(), nullptr);
  EXPECT_NE(b.get(), nullptr);
  EXPECT_TRUE(find_link(b, "lo").has_value());
}

// Only reads and refused requests here: the test's own namespace is never changed.
TEST(netlink, has_address_reads_loopback) {
  auto sk = socket::open();
  EXPECT_TRUE(has_address(sk, "lo", "127.0.0.1"));
  EXPECT_FALSE(has_address(sk, "lo", "127.0.0.2"));
  EXPECT_THROW(has_address(sk, "lo", "127.0.0.1/8"), std::invalid_argument);
  EXPECT_THROW(has_address(sk, "tandem-nope0", "127.0.0.1"), std::invalid_argument);
}

TEST(netlink, address_arguments_are_checked_before_the_kernel_is_asked) {
  auto sk = socket::open();
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.1"), std::invalid_argument);     // no prefix
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.1/"), std::invalid_argument);    // empty prefix
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.1/-1"), std::invalid_argument);  // not a number
  EXPECT_THROW(add_address(sk, "lo", "::1/129"), std::invalid_argument);       // too long
  EXPECT_THROW(add_address(sk, "lo", "localhost/8"), std::invalid_argument);   // not numeric
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.9/8", "eth0"), std::invalid_argument);
  EXPECT_THROW(add_address(sk, "lo", "::9/128", "lo:x"), std::invalid_argument);
  EXPECT_THROW(add_address(sk, "tandem-nope0", "127.0.0.9/8"), std::invalid_argument);
  EXPECT_THROW(remove_address(sk, "tandem-nope0", "127.0.0.9/8"), std::invalid_argument);
  EXPECT_THROW(remove_address(sk, "lo", "127.0.0.9"), std::invalid_argument);
  // Removing an address that is not there reports it and changes nothing.
  EXPECT_FALSE(remove_address(sk, "lo", "127.0.0.9/8"));
  EXPECT_TRUE(has_address(sk, "lo", "127.0.0.1"));
}

TEST(netlink, link_watch_opens_in_the_callers_namespace) {
  link_watch w;
  EXPECT_GE(w.fd(), 0);
  EXPECT_TRUE(w.netns().empty());
  EXPECT_NO_THROW(w.drain());  // whatever the host did meanwhile, it never blocks
  EXPECT_THROW(link_watch("tandem-no-such-netns"), std::runtime_error);
}

}  // namespace
}  // namespace tandem::nl
