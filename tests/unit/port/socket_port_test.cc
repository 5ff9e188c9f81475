// SPDX-License-Identifier: Apache-2.0
// The socket port on 127.0.0.1: binding, the pool, datagrams intact and once with GSO/GRO on/off.
#include "dataplane/port/socket_port.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/port/pattern.h"

namespace tandem::dp {
namespace {

using test::exchange;
using test::exchange_options;

const ipv4_addr localhost = ipv4_addr::from_octets(127, 0, 0, 1);

socket_port_options on_loopback(bool gso = true, bool gro = true) {
  socket_port_options o;
  o.local = {localhost, 0};
  o.enable_gso = gso;
  o.enable_gro = gro;
  return o;
}

// How many datagrams may be in flight without overflowing rx's receive buffer (unprivileged
// runs get net.core.rmem_max, root gets the 4 MiB asked for).
unsigned safe_window(const socket_port& rx) {
  int bytes = 0;
  socklen_t len = sizeof bytes;
  getsockopt(rx.fd(), SOL_SOCKET, SO_RCVBUF, &bytes, &len);
  // A received skb costs about its payload plus 1 KiB of overhead; keep a factor 2 margin.
  const unsigned w = static_cast<unsigned>(bytes) / (2 * (rx.max_payload() + 1024));
  return std::max(16U, std::min(w, 2048U));
}

std::string error_of(const socket_port_options& o, int* code = nullptr) {
  try {
    socket_port p(o);
  } catch (const std::system_error& e) {
    if (code) *code = e.code().value();
    return e.what();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(socket_port, binds_an_ephemeral_port_with_gso_and_gro) {
  socket_port p(on_loopback());
  EXPECT_EQ(p.local().ip, localhost);
  EXPECT_NE(p.local().port, 0);
  EXPECT_EQ(p.name(), "socket");
  EXPECT_TRUE(p.link_up());
  EXPECT_EQ(p.max_payload(), 1472U);
  EXPECT_GE(p.fd(), 0);
  // This machine's kernel has both (6.x); the port would fall back silently without them.
  EXPECT_TRUE(p.gso());
  EXPECT_TRUE(p.gro());
  socket_port off(on_loopback(false, false));
  EXPECT_FALSE(off.gso());
  EXPECT_FALSE(off.gro());
}

TEST(socket_port, address_in_use_is_a_clear_error) {
  socket_port a(on_loopback());
  socket_port_options o = on_loopback();
  o.local = a.local();
  int code = 0;
  const std::string what = error_of(o, &code);
  EXPECT_EQ(code, EADDRINUSE);
  EXPECT_NE(what.find("bind " + a.local().to_string()), std::string::npos) << what;
  EXPECT_NE(what.find("in use"), std::string::npos) << what;
}

TEST(socket_port, foreign_address_is_a_clear_error) {
  socket_port_options o = on_loopback();
  o.local = {ipv4_addr::from_octets(192, 0, 2, 1), 4791};  // TEST-NET-1: not on this host
  int code = 0;
  const std::string what = error_of(o, &code);
  EXPECT_EQ(code, EADDRNOTAVAIL);
  EXPECT_NE(what.find("192.0.2.1:4791"), std::string::npos) << what;
}

TEST(socket_port, bad_options_are_rejected) {
  socket_port_options o = on_loopback();
  o.max_payload = 0;
  EXPECT_NE(error_of(o).find("max_payload 0"), std::string::npos) << error_of(o);
  o.max_payload = 65508;
  EXPECT_NE(error_of(o).find("max_payload 65508"), std::string::npos);
  o = on_loopback();
  o.buffers = 0;
  EXPECT_NE(error_of(o).find("buffers"), std::string::npos);
  o = on_loopback();
  o.max_burst = 0;
  EXPECT_NE(error_of(o).find("max_burst"), std::string::npos);
  o = on_loopback();
  o.device = "tdm-nosuchdev";
  int code = 0;
  const std::string what = error_of(o, &code);
  EXPECT_NE(what.find("SO_BINDTODEVICE tdm-nosuchdev"), std::string::npos) << what;
  EXPECT_TRUE(code == ENODEV || code == EPERM) << what;
}

TEST(socket_port, binds_to_a_device) {
  socket_port_options o = on_loopback();
  o.device = "lo";
  int code = 0;
  const std::string what = error_of(o, &code);
  // Binding to a device needs CAP_NET_RAW on older kernels; either way the message is clear.
  if (!what.empty()) {
    EXPECT_EQ(code, EPERM) << what;
  }
}

TEST(socket_port, alloc_exhaustion_returns_zero_and_recovers) {
  socket_port_options o = on_loopback();
  o.buffers = 100;
  socket_port p(o);
  std::vector<dgram*> bufs(150);
  EXPECT_EQ(p.alloc(bufs.data(), 60), 60U);
  EXPECT_EQ(p.alloc(bufs.data() + 60, 60), 40U);
  EXPECT_EQ(p.available(), 0U);
  dgram* extra = nullptr;
  EXPECT_EQ(p.alloc(&extra, 1), 0U);
  // Buffers are distinct, have full capacity and do not overlap.
  for (unsigned i = 0; i < 100; ++i) {
    EXPECT_EQ(bufs[i]->cap, 1472U);
    EXPECT_EQ(bufs[i]->len, 0U);
    for (unsigned j = i + 1; j < 100; ++j) {
      ASSERT_TRUE(bufs[i]->data + bufs[i]->cap <= bufs[j]->data ||
                  bufs[j]->data + bufs[j]->cap <= bufs[i]->data);
    }
  }
  // recv() with an empty pool takes nothing (and leaves the datagram in the kernel).
  EXPECT_EQ(p.recv(&extra, 1), 0U);
  p.free(bufs.data(), 10);
  EXPECT_EQ(p.available(), 10U);
  EXPECT_EQ(p.alloc(bufs.data(), 20), 10U);
  p.free(bufs.data(), 100);
  EXPECT_EQ(p.available(), 100U);
}

TEST(socket_port, recv_on_an_idle_socket_returns_zero) {
  socket_port p(on_loopback());
  std::vector<dgram*> bufs(32);
  EXPECT_EQ(p.recv(bufs.data(), 32), 0U);
  EXPECT_EQ(p.available(), 4096U);
}

// tx GSO x rx GRO: the same numbered datagrams of random sizes 1..max_payload arrive intact,
// exactly once, whatever the combination.
class socket_port_modes : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(socket_port_modes, random_sizes_arrive_intact_exactly_once) {
  const auto [gso, gro] = GetParam();
  socket_port tx(on_loopback(gso, gro));
  socket_port rx(on_loopback(gso, gro));
  exchange_options o;
  o.count = 20000;
  o.seed = 7;
  o.burst = 128;
  o.window = safe_window(rx);
  const auto r = exchange(tx, rx, rx.local(), o);
  EXPECT_FALSE(r.timed_out) << "received " << r.received << " of " << r.sent << ", kernel drops "
                            << rx.socket_stats().rx_kernel_drops;
  EXPECT_EQ(r.sent, o.count);
  EXPECT_EQ(r.e.ok, o.count);
  EXPECT_EQ(r.e.dup, 0U);
  EXPECT_EQ(r.e.bad, 0U);
  EXPECT_EQ(r.bad_peer, 0U);
  EXPECT_EQ(tx.stats().tx_dgrams, o.count);
  EXPECT_EQ(rx.stats().rx_dgrams, o.count);
  EXPECT_EQ(tx.stats().tx_bytes, rx.stats().rx_bytes);
  EXPECT_EQ(tx.available(), 4096U);
  EXPECT_EQ(rx.available(), 4096U);
  // Random sizes still make GSO pairs (a run may end with a shorter datagram), which loopback
  // hands to a GRO socket whole.
  if (gso) {
    EXPECT_GT(tx.socket_stats().gso_msgs, 0U);
  } else {
    EXPECT_EQ(tx.socket_stats().gso_msgs, 0U);
  }
  if (gso && gro) {
    EXPECT_GT(rx.socket_stats().gro_msgs, 0U);
  } else {
    EXPECT_EQ(rx.socket_stats().gro_msgs, 0U);
  }
  EXPECT_LT(tx.socket_stats().tx_syscalls, o.count / 10);
}

std::string mode_name(const ::testing::TestParamInfo<std::tuple<bool, bool>>& mode) {
  return std::string(std::get<0>(mode.param) ? "gso" : "no_gso") + "_" +
         (std::get<1>(mode.param) ? "gro" : "no_gro");
}

INSTANTIATE_TEST_SUITE_P(gso_gro, socket_port_modes,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()), mode_name);

TEST(socket_port, equal_sizes_go_out_as_gso_and_come_in_as_gro) {
  socket_port tx(on_loopback());
  socket_port rx(on_loopback());
  exchange_options o;
  o.count = 256 * 40;
  o.min_len = o.max_len = 1000;
  o.burst = 256;
  o.window = std::max(256U, safe_window(rx));
  const auto r = exchange(tx, rx, rx.local(), o);
  EXPECT_EQ(r.e.ok, o.count);
  EXPECT_EQ(r.e.bad + r.e.dup, 0U);
  // 256 equal datagrams make 4 GSO messages (64 segments at most each).
  const auto& ts = tx.socket_stats();
  EXPECT_EQ(ts.gso_dgrams, o.count);
  EXPECT_EQ(ts.gso_msgs, o.count / 64);
  const auto& rs = rx.socket_stats();
  EXPECT_GT(rs.gro_msgs, 0U);
  EXPECT_GT(rs.gro_dgrams, rs.gro_msgs);
  EXPECT_LT(rs.rx_syscalls, o.count / 4);
}

TEST(socket_port, a_coalesced_message_is_handed_out_in_order_across_calls) {
  socket_port tx(on_loopback());
  socket_port_options ro = on_loopback();
  ro.buffers = 10;
  socket_port rx(ro);
  std::vector<dgram*> out(44);
  ASSERT_EQ(tx.alloc(out.data(), 44), 44U);
  for (unsigned i = 0; i < 44; ++i) {
    test::fill(*out[i], i, 1472);  // one GSO message of 44
    out[i]->peer = rx.local();
  }
  ASSERT_EQ(tx.send(out.data(), 44), 44U);
  ASSERT_EQ(tx.socket_stats().gso_msgs, 1U);
  std::vector<int64_t> order;
  std::vector<dgram*> in(16);
  for (int spin = 0; spin < 2000 && order.size() < 44; ++spin) {
    // Ask for few at a time and hold up to the whole pool before giving buffers back.
    const unsigned k = rx.recv(in.data(), 3);
    for (unsigned i = 0; i < k; ++i)
      order.push_back(test::check(*in[i]));
    rx.free(in.data(), k);
    if (k == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (order.size() == 9) {
      // Drain the pool entirely: recv() must stop, keep the rest, and go on afterwards.
      const unsigned held = rx.recv(in.data(), 16);
      EXPECT_EQ(held, 10U);
      EXPECT_EQ(rx.recv(in.data() + held, 6), 0U);
      EXPECT_TRUE(rx.rx_pending());
      for (unsigned i = 0; i < held; ++i)
        order.push_back(test::check(*in[i]));
      rx.free(in.data(), held);
    }
  }
  ASSERT_EQ(order.size(), 44U);
  for (unsigned i = 0; i < 44; ++i)
    EXPECT_EQ(order[i], i);
  const auto& rs = rx.socket_stats();
  EXPECT_EQ(rs.gro_msgs, 1U);
  EXPECT_EQ(rs.gro_dgrams, 44U);
  EXPECT_EQ(rs.rx_copies, 43U);  // the first stays in the buffer it was received into
  EXPECT_FALSE(rx.rx_pending());
  EXPECT_EQ(rx.available(), 10U);
}

// An idle lcore sleeps on wait_fd(): readable once a datagram arrives; -1 while recv() still
// holds datagrams it received (nothing would wake the sleep for those).
TEST(socket_port, wait_fd_wakes_a_sleeper_and_is_withheld_while_datagrams_are_held) {
  socket_port tx(on_loopback());
  socket_port_options ro = on_loopback();
  ro.buffers = 4;
  socket_port rx(ro);
  ASSERT_GE(rx.wait_fd(), 0);
  pollfd pfd{.fd = rx.wait_fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);  // nothing yet
  std::vector<dgram*> out(8);
  ASSERT_EQ(tx.alloc(out.data(), 8), 8U);
  for (unsigned i = 0; i < 8; ++i) {
    test::fill(*out[i], i, 1472);  // one GSO message, one GRO message: more than rx's pool
    out[i]->peer = rx.local();
  }
  ASSERT_EQ(tx.send(out.data(), 8), 8U);
  pfd.revents = 0;
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "a datagram did not wake the sleeper";
  std::vector<dgram*> in(8);
  unsigned got = rx.recv(in.data(), 8);
  if (rx.gro()) {
    EXPECT_EQ(got, 4U);  // the pool is dry: the rest waits in the port, not in the socket
    EXPECT_TRUE(rx.rx_pending());
    EXPECT_EQ(rx.wait_fd(), -1);
    rx.free(in.data(), got);
    got = rx.recv(in.data(), 8);
    EXPECT_EQ(got, 4U);
    EXPECT_FALSE(rx.rx_pending());
    EXPECT_GE(rx.wait_fd(), 0);
  }
  rx.free(in.data(), got);
}

TEST(socket_port, single_datagrams_are_not_copied_with_gro_on) {
  socket_port tx(on_loopback(false, false));
  socket_port rx(on_loopback(false, true));
  exchange_options o;
  o.count = 2000;
  o.window = 256;
  const auto r = exchange(tx, rx, rx.local(), o);
  EXPECT_EQ(r.e.ok, o.count);
  EXPECT_EQ(rx.socket_stats().rx_copies, 0U);
}

TEST(socket_port, gso_sender_to_a_receiver_without_gro) {
  socket_port tx(on_loopback(true, false));
  socket_port rx(on_loopback(false, false));
  exchange_options o;
  o.count = 5000;
  o.min_len = o.max_len = 1472;
  o.burst = 256;
  o.window = std::max(256U, safe_window(rx));
  const auto r = exchange(tx, rx, rx.local(), o);
  EXPECT_EQ(r.e.ok, o.count);
  EXPECT_GT(tx.socket_stats().gso_msgs, 0U);
  EXPECT_EQ(rx.socket_stats().gro_msgs, 0U);  // the kernel split them for us
}

TEST(socket_port, bursts_of_256_both_ways) {
  socket_port a(on_loopback());
  socket_port b(on_loopback(false, true));
  exchange_options o;
  o.count = 256 * 50;
  o.burst = 256;
  o.seed = 11;
  o.min_len = 1200;
  o.max_len = 1472;
  o.window = std::max(256U, safe_window(b));
  const auto ab = exchange(a, b, b.local(), o);
  EXPECT_EQ(ab.e.ok, o.count);
  const auto ba = exchange(b, a, a.local(), o);
  EXPECT_EQ(ba.e.ok, o.count);
  EXPECT_EQ(ab.e.bad + ab.e.dup + ba.e.bad + ba.e.dup, 0U);
}

TEST(socket_port, large_payloads_over_loopback) {
  for (const bool gro : {false, true}) {
    socket_port_options o = on_loopback(true, gro);
    o.max_payload = 65507;
    o.buffers = 256;
    socket_port tx(o);
    socket_port rx(o);
    exchange_options x;
    x.count = 600;
    x.min_len = 9000;
    x.max_len = 65507;
    x.burst = 16;
    x.window = 24;
    const auto r = exchange(tx, rx, rx.local(), x);
    EXPECT_EQ(r.e.ok, x.count) << "gro " << gro;
    EXPECT_EQ(r.e.bad, 0U);
  }
}

TEST(socket_port, datagrams_larger_than_the_receivers_buffers_are_dropped) {
  for (const bool gro : {false, true}) {
    socket_port tx(on_loopback());
    socket_port_options ro = on_loopback(true, gro);
    ro.max_payload = 512;
    socket_port rx(ro);
    std::vector<dgram*> out(8);
    ASSERT_EQ(tx.alloc(out.data(), 8), 8U);
    for (unsigned i = 0; i < 8; ++i) {
      test::fill(*out[i], i, i < 4 ? 1000 : 500);  // 4 too large (one GSO message), 4 fine
      out[i]->peer = rx.local();
    }
    ASSERT_EQ(tx.send(out.data(), 8), 8U);
    std::vector<dgram*> in(16);
    unsigned got = 0;
    for (int spin = 0; spin < 1000 && got < 4; ++spin) {
      const unsigned k = rx.recv(in.data() + got, 16 - got);
      got += k;
      if (k == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ASSERT_EQ(got, 4U) << "gro " << gro;
    for (unsigned i = 0; i < got; ++i) {
      EXPECT_EQ(in[i]->len, 500U);
      EXPECT_GE(test::check(*in[i]), 4);
    }
    rx.free(in.data(), got);
    EXPECT_EQ(rx.socket_stats().rx_truncated, 4U) << "gro " << gro;
    EXPECT_EQ(rx.stats().rx_dropped, 4U);
  }
}

TEST(socket_port, oversize_and_refused_datagrams_are_taken_and_counted) {
  socket_port tx(on_loopback());
  std::vector<dgram*> out(4);
  ASSERT_EQ(tx.alloc(out.data(), 4), 4U);
  // Leading datagram longer than max_payload (a caller bug): taken and dropped.
  out[0]->len = 2000;
  out[0]->peer = tx.local();
  EXPECT_EQ(tx.send(out.data(), 1), 1U);
  EXPECT_EQ(tx.socket_stats().tx_oversize, 1U);
  // Broadcast without SO_BROADCAST: the kernel refuses (EACCES); a GSO pair is dropped whole.
  for (unsigned i = 1; i < 3; ++i) {
    test::fill(*out[i], i, 100);
    out[i]->peer = {ipv4_addr{0xffffffffU}, 9};
  }
  test::fill(*out[3], 3, 100);
  out[3]->peer = tx.local();
  EXPECT_EQ(tx.send(out.data() + 1, 3), 2U);  // the third goes with the next burst
  EXPECT_EQ(tx.socket_stats().tx_errors, 2U);
  EXPECT_EQ(tx.send(out.data() + 3, 1), 1U);
  EXPECT_EQ(tx.stats().tx_dgrams, 1U);
  EXPECT_EQ(tx.available(), 4096U);
  std::vector<dgram*> in(4);
  unsigned got = 0;
  for (int spin = 0; spin < 1000 && got == 0; ++spin) {
    got = tx.recv(in.data(), 4);
    if (got == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  ASSERT_EQ(got, 1U);
  EXPECT_EQ(test::check(*in[0]), 3);
  tx.free(in.data(), got);
}

TEST(socket_port, one_burst_to_several_peers) {
  socket_port tx(on_loopback());
  socket_port rx1(on_loopback());
  socket_port rx2(on_loopback(true, false));
  std::vector<dgram*> out(200);
  ASSERT_EQ(tx.alloc(out.data(), 200), 200U);
  for (unsigned i = 0; i < 200; ++i) {
    test::fill(*out[i], i, 800);
    out[i]->peer = (i / 10) % 2 == 0 ? rx1.local() : rx2.local();  // runs of 10 per peer
  }
  ASSERT_EQ(tx.send(out.data(), 200), 200U);
  EXPECT_EQ(tx.socket_stats().gso_msgs, 20U);
  EXPECT_EQ(tx.socket_stats().tx_syscalls, 1U);
  std::vector<dgram*> in(256);
  unsigned got1 = 0, got2 = 0;
  for (int spin = 0; spin < 2000 && got1 + got2 < 200; ++spin) {
    for (auto [p, count] : {std::pair{&rx1, &got1}, std::pair{&rx2, &got2}}) {
      const unsigned k = p->recv(in.data(), 256);
      for (unsigned i = 0; i < k; ++i) {
        const int64_t seq = test::check(*in[i]);
        EXPECT_GE(seq, 0);
        EXPECT_EQ((seq / 10) % 2 == 0, p == &rx1);
        EXPECT_EQ(in[i]->peer, tx.local());
        EXPECT_GT(in[i]->rx_ns, 0U);
        EXPECT_LE(in[i]->rx_ns,
                  static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::steady_clock::now().time_since_epoch())
                                            .count()));
      }
      p->free(in.data(), k);
      *count += k;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_EQ(got1, 100U);
  EXPECT_EQ(got2, 100U);
}

TEST(socket_port, receive_overflow_is_counted) {
  socket_port tx(on_loopback());
  socket_port_options ro = on_loopback(true, false);
  ro.rcvbuf = 64 * 1024;
  socket_port rx(ro);
  std::vector<dgram*> out(256);
  uint64_t sent = 0;
  uint64_t got = 0;
  // Each round overflows the queue; the next round's datagrams carry the drop count so far.
  for (int round = 0; round < 8; ++round) {
    const unsigned k = tx.alloc(out.data(), 256);
    for (unsigned i = 0; i < k; ++i) {
      test::fill(*out[i], sent + i, 1400);
      out[i]->peer = rx.local();
    }
    const unsigned taken = tx.send(out.data(), k);
    tx.free(out.data() + taken, k - taken);
    sent += taken;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    for (unsigned n; (n = rx.recv(out.data(), 256)) > 0;) {
      rx.free(out.data(), n);
      got += n;
    }
  }
  EXPECT_LT(got, sent);
  EXPECT_GT(rx.socket_stats().rx_kernel_drops, 0U);
  EXPECT_LE(rx.socket_stats().rx_kernel_drops, sent - got);
}

}  // namespace
}  // namespace tandem::dp
