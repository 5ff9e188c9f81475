// SPDX-License-Identifier: Apache-2.0
// The in-memory loopback port the fault port's tests run on.
#include "dataplane/port/loopback_port.h"

#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/port/pattern.h"

namespace tandem::dp {
namespace {

const udp_addr addr_a{ipv4_addr::from_octets(10, 0, 0, 1), 1};
const udp_addr addr_b{ipv4_addr::from_octets(10, 0, 0, 2), 2};

TEST(loopback_port, delivers_copies_with_the_senders_address) {
  uint64_t now = 77;
  loopback_hub hub([&] { return now; });
  loopback_port a(hub, {addr_a, 8, 100, 8});
  loopback_port b(hub, {addr_b, 8, 100, 8});
  EXPECT_EQ(a.name(), "loopback");
  std::vector<dgram*> bufs(8);
  ASSERT_EQ(a.alloc(bufs.data(), 3), 3U);
  for (unsigned i = 0; i < 3; ++i) {
    test::fill(*bufs[i], i, 50 + i);
    bufs[i]->peer = addr_b;
  }
  EXPECT_EQ(a.send(bufs.data(), 3), 3U);
  EXPECT_EQ(a.available(), 8U);  // the sender's buffers came back at once
  EXPECT_EQ(b.queued(), 3U);
  ASSERT_EQ(b.recv(bufs.data(), 8), 3U);
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(test::check(*bufs[i]), i);
    EXPECT_EQ(bufs[i]->len, 50 + i);
    EXPECT_EQ(bufs[i]->peer, addr_a);
    EXPECT_EQ(bufs[i]->rx_ns, 77U);
    EXPECT_EQ(bufs[i]->port_ctx, &b);
  }
  b.free(bufs.data(), 3);
  EXPECT_EQ(b.available(), 8U);
  EXPECT_EQ(a.stats().tx_dgrams, 3U);
  EXPECT_EQ(b.stats().rx_dgrams, 3U);
}

TEST(loopback_port, a_full_receiver_pushes_back) {
  loopback_hub hub;
  loopback_port a(hub, {addr_a, 16, 100, 16});
  loopback_port b(hub, {addr_b, 16, 100, 4});
  std::vector<dgram*> bufs(16);
  ASSERT_EQ(a.alloc(bufs.data(), 6), 6U);
  for (unsigned i = 0; i < 6; ++i)
    bufs[i]->peer = addr_b;
  EXPECT_EQ(a.send(bufs.data(), 6), 4U);
  EXPECT_EQ(a.stats().tx_full, 2U);
  a.free(bufs.data() + 4, 2);
}

TEST(loopback_port, unknown_addresses_and_a_link_down_lose_datagrams) {
  loopback_hub hub;
  loopback_port a(hub, {addr_a, 4, 100, 4});
  loopback_port b(hub, {addr_b, 4, 100, 4});
  std::vector<dgram*> bufs(4);
  ASSERT_EQ(a.alloc(bufs.data(), 2), 2U);
  bufs[0]->peer = {ipv4_addr::from_octets(10, 0, 0, 9), 1};
  bufs[1]->peer = addr_b;
  a.set_link_up(false);
  EXPECT_FALSE(a.link_up());
  EXPECT_EQ(a.send(bufs.data(), 2), 2U);
  EXPECT_EQ(hub.undeliverable(), 2U);
  EXPECT_EQ(b.queued(), 0U);
  EXPECT_EQ(a.available(), 4U);
}

TEST(loopback_port, an_address_is_taken_once) {
  loopback_hub hub;
  loopback_port a(hub, {addr_a, 4, 100, 4});
  EXPECT_THROW(loopback_port(hub, {addr_a, 4, 100, 4}), std::runtime_error);
  EXPECT_EQ(hub.find(addr_a), &a);
}

}  // namespace
}  // namespace tandem::dp
