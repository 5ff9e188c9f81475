// SPDX-License-Identifier: Apache-2.0
// Socket ports in two lab hosts over the interconnect veth: GSO/GRO, the MTU, loss, fault port.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

#include "dataplane/port/fault_port.h"
#include "dataplane/port/socket_port.h"
#include "tests/lab/netns.h"
#include "tests/unit/port/pattern.h"

namespace tandem::dp {
namespace {

using test::exchange;
using test::exchange_options;

// Runs f on a short-lived thread inside a lab host's network namespace: a socket stays in the
// namespace it was made in, so the port works from this thread afterwards.
template <class F>
auto in_netns(const std::string& netns, F f) -> decltype(f()) {
  std::optional<decltype(f())> result;
  std::exception_ptr error;
  std::thread([&] {
    try {
      const std::string path = "/run/netns/" + netns;
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw std::system_error(errno, std::generic_category(), path);
      const int rc = ::setns(fd, CLONE_NEWNET);
      const int err = errno;
      ::close(fd);
      if (rc != 0) throw std::system_error(err, std::generic_category(), "setns " + path);
      result.emplace(f());
    } catch (...) {
      error = std::current_exception();
    }
  }).join();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

udp_addr lab_addr(const lab::lab& l, const std::string& host, uint16_t port) {
  return {*ipv4_addr::parse(l.address(host, 1)), port};
}

std::unique_ptr<socket_port> port_in(const lab::lab& l, const std::string& host,
                                     socket_port_options o) {
  o.local = lab_addr(l, host, 4791);
  return in_netns(l.netns(host), [&] { return std::make_unique<socket_port>(o); });
}

std::string summary(const socket_port& p) {
  const auto& s = p.socket_stats();
  return "tx " + std::to_string(p.stats().tx_dgrams) + " (gso msgs " + std::to_string(s.gso_msgs) +
         ", dgrams " + std::to_string(s.gso_dgrams) + ", syscalls " +
         std::to_string(s.tx_syscalls) + ", errors " + std::to_string(s.tx_errors) + ") rx " +
         std::to_string(p.stats().rx_dgrams) + " (gro msgs " + std::to_string(s.gro_msgs) +
         ", dgrams " + std::to_string(s.gro_dgrams) + ", syscalls " +
         std::to_string(s.rx_syscalls) + ", kernel drops " + std::to_string(s.rx_kernel_drops) +
         ")";
}

TEST(socket_port_netns, datagrams_cross_the_interconnect_with_gso_and_gro) {
  lab::lab l(lab::cluster_options(2, 1, false));
  auto p1 = port_in(l, "node1", {});
  auto p2 = port_in(l, "node2", {});
  ASSERT_TRUE(p1->gso() && p1->gro());
  EXPECT_EQ(p1->local(), lab_addr(l, "node1", 4791));

  exchange_options o;
  o.count = 20000;
  o.burst = 128;
  o.window = 1024;
  const auto there = exchange(*p1, *p2, p2->local(), o);
  EXPECT_EQ(there.e.ok, o.count) << summary(*p1) << " / " << summary(*p2);
  EXPECT_EQ(there.e.bad + there.e.dup + there.bad_peer, 0U);
  o.seed = 2;
  const auto back = exchange(*p2, *p1, p1->local(), o);
  EXPECT_EQ(back.e.ok, o.count) << summary(*p2) << " / " << summary(*p1);
  EXPECT_EQ(back.e.bad + back.e.dup + back.bad_peer, 0U);

  // Full-size datagrams: 44 to a GSO message, kept whole across veth and bridge for GRO.
  o.min_len = o.max_len = 1472;
  o.burst = 256;
  o.seed = 3;
  const auto full = exchange(*p1, *p2, p2->local(), o);
  EXPECT_EQ(full.e.ok, o.count);
  std::cout << "node1: " << summary(*p1) << "\nnode2: " << summary(*p2) << "\n";
  EXPECT_GT(p1->socket_stats().gso_msgs, 20000U / 44);
  EXPECT_GT(p2->socket_stats().gro_msgs, 0U);
}

TEST(socket_port_netns, gso_segments_above_the_mtu_fall_back_to_plain_datagrams) {
  lab::lab l(lab::cluster_options(2, 1, false));
  socket_port_options big;
  big.max_payload = 3000;  // above the 1500-byte MTU: the kernel fragments plain datagrams
  auto p1 = port_in(l, "node1", big);
  auto p2 = port_in(l, "node2", big);
  exchange_options o;
  o.count = 2000;
  o.min_len = o.max_len = 2000;
  o.window = 256;
  const auto r = exchange(*p1, *p2, p2->local(), o);
  EXPECT_EQ(r.e.ok, o.count);
  EXPECT_EQ(p1->socket_stats().gso_fallbacks, 1U);
  EXPECT_EQ(p1->gso_max_segment(), 1999U);
  EXPECT_EQ(p1->socket_stats().tx_errors, 0U);
  // Shorter datagrams still go out as GSO.
  o.min_len = o.max_len = 1400;
  const uint64_t before = p1->socket_stats().gso_msgs;
  EXPECT_EQ(exchange(*p1, *p2, p2->local(), o).e.ok, o.count);
  EXPECT_GT(p1->socket_stats().gso_msgs, before);
}

TEST(socket_port_netns, random_drop_shows_as_loss) {
  lab::lab l(lab::cluster_options(2, 1, false));
  l.random_drop("node2", 10);
  for (const bool gso : {false, true}) {
    socket_port_options so;
    so.enable_gso = gso;
    auto p1 = port_in(l, "node1", so);
    auto p2 = port_in(l, "node2", {});
    exchange_options o;
    o.count = 20000;
    o.lossy = true;
    o.window = 512;
    o.min_len = 1000;
    o.max_len = 1472;
    o.seed = gso ? 5 : 4;
    const auto r = exchange(*p1, *p2, p2->local(), o);
    const double loss = 1.0 - static_cast<double>(r.e.ok) / static_cast<double>(r.sent);
    std::cout << (gso ? "gso" : "no gso") << ": sent " << r.sent << ", received " << r.e.ok
              << ", loss " << loss * 100 << "%\n";
    EXPECT_EQ(r.sent, o.count);
    EXPECT_EQ(r.e.bad + r.e.dup, 0U);
    EXPECT_EQ(p1->stats().tx_dgrams, o.count);  // the sender cannot tell
    if (gso) {
      // A GSO message crosses the bridge whole and is dropped whole: the same 10% on average,
      // in chunks.
      EXPECT_GT(loss, 0.02);
      EXPECT_LT(loss, 0.25);
    } else {
      EXPECT_GT(loss, 0.08);
      EXPECT_LT(loss, 0.12);
    }
  }
  // Dropped on the way out of the sender, the kernel says EPERM: taken, counted, not sent,
  // when it is the first message of a burst (a failure later in a sendmmsg ends the call, and
  // the caller sends that datagram again in the next burst).
  l.random_drop("node2", 0);
  l.random_drop("node1", 10);
  socket_port_options plain;
  plain.enable_gso = false;
  auto p1 = port_in(l, "node1", plain);
  auto p2 = port_in(l, "node2", {});
  exchange_options o;
  o.count = 10000;
  o.lossy = true;
  o.max_len = 1000;
  const auto r = exchange(*p1, *p2, p2->local(), o);
  const uint64_t errors = p1->socket_stats().tx_errors;
  EXPECT_EQ(r.sent, o.count);
  EXPECT_EQ(p1->stats().tx_dgrams + errors, o.count);
  EXPECT_EQ(r.e.ok, p1->stats().tx_dgrams);
  EXPECT_GT(errors, 0U);
  EXPECT_LT(errors, 1300U);
}

TEST(socket_port_netns, fault_port_over_a_socket_port) {
  lab::lab l(lab::cluster_options(2, 1, false));
  auto p2 = port_in(l, "node2", {});
  fault_options fo;
  fo.seed = 9;
  fo.tx.drop = 0.1;
  fo.tx.duplicate = 0.02;
  fault_port f(port_in(l, "node1", {}), fo);
  EXPECT_EQ(f.name(), "fault(socket)");
  exchange_options o;
  o.count = 20000;
  o.lossy = true;
  o.window = 1024;
  const auto r = exchange(f, *p2, p2->local(), o);
  // The path itself is lossless here, so what arrives is exactly what the fault port let out.
  const auto& c = f.faults().tx;
  EXPECT_EQ(r.e.ok, o.count - c.dropped);
  EXPECT_EQ(r.e.dup, c.duplicated);
  EXPECT_EQ(r.e.bad, 0U);
  EXPECT_GT(c.dropped, 1700U);
  EXPECT_LT(c.dropped, 2300U);
}

}  // namespace
}  // namespace tandem::dp
