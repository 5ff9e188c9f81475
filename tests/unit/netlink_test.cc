// SPDX-License-Identifier: Apache-2.0
// tandem::nl in the test's own namespace: loopback is always there to read back.
#include <sys/socket.h>

#include <algorithm>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tandem::nl
