// SPDX-License-Identifier: Apache-2.0
// The fault port over loopback ports with a fake clock: each fault, its counts, determinism.
#include "dataplane/port/fault_port.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/port/loopback_port.h"
#include "tests/unit/port/pattern.h"

namespace tandem::dp {
namespace {

constexpr uint64_t us = 1000;
constexpr uint64_t ms = 1000 * us;

const udp_addr addr_a{ipv4_addr::from_octets(10, 0, 0, 1), 4791};
const udp_addr addr_b{ipv4_addr::from_octets(10, 0, 0, 2), 4791};

// Two loopback ports on a hub whose clock is a number the test moves.
struct rig {
  explicit rig(unsigned buffers = 4096, unsigned rx_queue = 4096)
      : a(hub, {addr_a, buffers, 1472, rx_queue}), b(hub, {addr_b, buffers, 1472, rx_queue}) {}
  std::function<uint64_t()> clock() {
    return [this] { return now; };
  }
  uint64_t now = 0;
  loopback_hub hub{[this] { return now; }};
  loopback_port a;
  loopback_port b;
};

fault_options with(const fault_profile& tx, rig& r, uint64_t seed = 1) {
  fault_options o;
  o.seed = seed;
  o.tx = tx;
  o.clock = r.clock();
  return o;
}

// Sends datagrams first..first+n-1 of `len` bytes; returns how many were taken.
unsigned send_numbered(port& p, const udp_addr& to, uint64_t first, unsigned n, uint32_t len) {
  std::vector<dgram*> bufs(n);
  const unsigned k = p.alloc(bufs.data(), n);
  for (unsigned i = 0; i < k; ++i) {
    test::fill(*bufs[i], first + i, len);
    bufs[i]->peer = to;
  }
  const unsigned taken = p.send(bufs.data(), k);
  p.free(bufs.data() + taken, k - taken);
  return taken;
}

struct arrival {
  int64_t seq;  // -1: content does not match any numbered datagram
  std::string bytes;
  uint64_t rx_ns;
};

std::vector<arrival> drain(port& p) {
  std::vector<arrival> out;
  std::vector<dgram*> bufs(64);
  for (unsigned n; (n = p.recv(bufs.data(), 64)) > 0;) {
    for (unsigned i = 0; i < n; ++i) {
      out.push_back({test::check(*bufs[i]), test::bytes_of(*bufs[i]), bufs[i]->rx_ns});
    }
    p.free(bufs.data(), n);
  }
  return out;
}

std::string expected_bytes(uint64_t seq, uint32_t len) {
  std::vector<uint8_t> mem(len);
  dgram d;
  d.data = mem.data();
  d.cap = len;
  test::fill(d, seq, len);
  return test::bytes_of(d);
}

TEST(fault_port, without_faults_it_is_transparent) {
  rig r;
  fault_port f(r.a, with({}, r));
  EXPECT_EQ(f.name(), "fault(loopback)");
  EXPECT_EQ(f.local(), addr_a);
  EXPECT_EQ(f.max_payload(), 1472U);
  EXPECT_TRUE(f.link_up());
  EXPECT_EQ(send_numbered(f, addr_b, 0, 500, 300), 500U);
  const auto got = drain(r.b);
  ASSERT_EQ(got.size(), 500U);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].seq, static_cast<int64_t>(i));
  EXPECT_EQ(f.stats().tx_dgrams, 500U);
  EXPECT_EQ(f.stats().tx_bytes, 500U * 300);
  EXPECT_EQ(f.faults().tx, fault_counters{});
  EXPECT_EQ(f.held_tx(), 0U);
  EXPECT_EQ(r.a.available(), 4096U);
}

// Everything at once, replayed: the same seed gives the same datagrams in the same order with the
// same damage; another seed does not.
std::pair<std::vector<std::string>, fault_stats> chaos(uint64_t seed) {
  rig r;
  fault_profile p;
  p.drop = 0.1;
  p.duplicate = 0.1;
  p.corrupt = 0.1;
  p.reorder = 0.1;
  p.delay_ns = 100 * us;
  p.jitter_ns = 200 * us;
  fault_options o = with(p, r, seed);
  o.rx = p;
  fault_port f(r.a, std::move(o));
  std::vector<std::string> trace;
  for (unsigned step = 0; step < 2000; ++step) {
    send_numbered(f, addr_b, step * 5, 5, test::length_of(seed, step, 20, 1472));
    send_numbered(r.b, addr_a, step, 1, 100);  // and back, through f's rx faults
    r.now += 10 * us;
    f.flush();
    for (auto& a : drain(r.b))
      trace.push_back("b:" + a.bytes);
    for (auto& a : drain(f))
      trace.push_back("a:" + a.bytes + std::to_string(a.rx_ns));
  }
  r.now += 10 * ms;
  f.flush();
  for (auto& a : drain(r.b))
    trace.push_back("b:" + a.bytes);
  for (auto& a : drain(f))
    trace.push_back("a:" + a.bytes + std::to_string(a.rx_ns));
  return {trace, f.faults()};
}

TEST(fault_port, the_same_seed_gives_the_same_faults) {
  const auto [t1, s1] = chaos(42);
  const auto [t2, s2] = chaos(42);
  const auto [t3, s3] = chaos(43);
  EXPECT_EQ(t1, t2);
  EXPECT_EQ(s1.tx, s2.tx);
  EXPECT_EQ(s1.rx, s2.rx);
  EXPECT_NE(t1, t3);
  EXPECT_NE(s1.tx, s3.tx);
  // Every kind of fault happened.
  for (const auto& c : {s1.tx, s1.rx}) {
    EXPECT_GT(c.dropped, 0U);
    EXPECT_GT(c.duplicated, 0U);
    EXPECT_GT(c.corrupted, 0U);
    EXPECT_GT(c.reordered, 0U);
    EXPECT_GT(c.delayed, 0U);
  }
}

TEST(fault_port, drops_ten_percent_of_100k) {
  rig r;
  fault_profile p;
  p.drop = 0.1;
  fault_port f(r.a, with(p, r, 2024));
  constexpr unsigned n = 100000;
  uint64_t received = 0;
  for (unsigned i = 0; i < n; i += 100) {
    ASSERT_EQ(send_numbered(f, addr_b, i, 100, 64), 100U);
    received += drain(r.b).size();
  }
  // Binomial(100000, 0.1): mean 10000, standard deviation 95; allow 5 of them.
  const uint64_t dropped = f.faults().tx.dropped;
  EXPECT_GE(dropped, 9525U);
  EXPECT_LE(dropped, 10475U);
  EXPECT_EQ(received + dropped, n);
  EXPECT_EQ(r.a.available(), 4096U);  // dropped buffers went back to the inner pool
}

TEST(fault_port, duplicates_are_exact_copies_and_counted) {
  rig r;
  fault_profile p;
  p.duplicate = 0.1;
  fault_port f(r.a, with(p, r));
  constexpr unsigned n = 10000;
  std::map<int64_t, int> copies;
  for (unsigned i = 0; i < n; i += 50) {
    ASSERT_EQ(send_numbered(f, addr_b, i, 50, 200), 50U);
    for (const auto& a : drain(r.b))
      ++copies[a.seq];
  }
  const uint64_t dups = f.faults().tx.duplicated;
  EXPECT_GT(dups, 800U);
  EXPECT_LT(dups, 1200U);
  ASSERT_EQ(copies.size(), n);
  uint64_t twice = 0;
  for (const auto& [seq, count] : copies) {
    EXPECT_GE(seq, 0);  // intact
    EXPECT_TRUE(count == 1 || count == 2) << seq;
    twice += count == 2;
  }
  EXPECT_EQ(twice, dups);
}

TEST(fault_port, reordered_datagrams_arrive_late_and_once) {
  rig r;
  fault_profile p;
  p.reorder = 0.05;
  p.reorder_after = 3;
  fault_port f(r.a, with(p, r));
  constexpr unsigned n = 10000;
  std::vector<int64_t> order;
  for (unsigned i = 0; i < n; ++i) {
    ASSERT_EQ(send_numbered(f, addr_b, i, 1, 100), 1U);
    for (const auto& a : drain(r.b))
      order.push_back(a.seq);
  }
  r.now += 2 * ms;
  f.flush();
  EXPECT_EQ(f.held_tx(), 0U);
  for (const auto& a : drain(r.b))
    order.push_back(a.seq);
  ASSERT_EQ(order.size(), n);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (unsigned i = 0; i < n; ++i)
    ASSERT_EQ(sorted[i], i);
  // A datagram is late when a higher number came before it.
  uint64_t late = 0;
  int64_t highest = -1;
  for (const int64_t s : order) {
    if (s < highest) ++late;
    highest = std::max(highest, s);
  }
  const uint64_t reordered = f.faults().tx.reordered;
  EXPECT_GT(reordered, 350U);
  EXPECT_LT(reordered, 650U);
  EXPECT_LE(late, reordered);
  EXPECT_GE(late + 5, reordered);  // only the last few, freed by time, may not be overtaken
}

TEST(fault_port, corruption_flips_exactly_one_bit) {
  rig r;
  fault_profile p;
  p.corrupt = 0.1;
  fault_port f(r.a, with(p, r));
  constexpr unsigned n = 10000;
  std::vector<arrival> got;
  for (unsigned i = 0; i < n; i += 100) {
    ASSERT_EQ(send_numbered(f, addr_b, i, 100, 200), 100U);
    for (auto& a : drain(r.b))
      got.push_back(std::move(a));
  }
  ASSERT_EQ(got.size(), n);
  uint64_t flipped = 0;
  for (unsigned i = 0; i < n; ++i) {
    const std::string want = expected_bytes(i, 200);
    ASSERT_EQ(got[i].bytes.size(), want.size());
    int bits = 0;
    for (size_t j = 0; j < want.size(); ++j) {
      bits += std::popcount(static_cast<unsigned>(static_cast<uint8_t>(want[j] ^ got[i].bytes[j])));
    }
    EXPECT_LE(bits, 1) << i;
    flipped += bits;
  }
  EXPECT_EQ(flipped, f.faults().tx.corrupted);
  EXPECT_GT(flipped, 800U);
  EXPECT_LT(flipped, 1200U);
}

TEST(fault_port, delay_holds_datagrams_until_the_clock_passes) {
  rig r;
  fault_profile p;
  p.delay_ns = 5 * ms;
  fault_port f(r.a, with(p, r));
  r.now = 1 * ms;
  EXPECT_EQ(f.next_event_ns(), UINT64_MAX);
  ASSERT_EQ(send_numbered(f, addr_b, 0, 100, 500), 100U);
  EXPECT_EQ(f.held_tx(), 100U);
  EXPECT_EQ(f.next_event_ns(), 6 * ms);
  EXPECT_TRUE(drain(r.b).empty());
  r.now = 6 * ms - 1;
  f.flush();
  EXPECT_TRUE(drain(r.b).empty());
  r.now = 6 * ms;
  f.flush();
  const auto got = drain(r.b);
  ASSERT_EQ(got.size(), 100U);
  for (unsigned i = 0; i < 100; ++i)
    EXPECT_EQ(got[i].seq, i);  // a fixed delay keeps order
  EXPECT_EQ(got[0].rx_ns, 6 * ms);
  EXPECT_EQ(f.faults().tx.delayed, 100U);
  EXPECT_EQ(f.held_tx(), 0U);
}

TEST(fault_port, jitter_stays_within_its_bounds) {
  rig r;
  fault_profile p;
  p.delay_ns = 1 * ms;
  p.jitter_ns = 1 * ms;
  fault_port f(r.a, with(p, r));
  ASSERT_EQ(send_numbered(f, addr_b, 0, 1000, 100), 1000U);
  std::vector<uint64_t> when(1000, 0);
  std::vector<int64_t> order;
  for (; r.now <= 3 * ms; r.now += 10 * us) {
    f.flush();
    for (const auto& a : drain(r.b)) {
      when.at(static_cast<size_t>(a.seq)) = a.rx_ns;
      order.push_back(a.seq);
    }
  }
  ASSERT_EQ(order.size(), 1000U);
  const auto [lo, hi] = std::minmax_element(when.begin(), when.end());
  EXPECT_GE(*lo, 1 * ms);
  EXPECT_LE(*hi, 2 * ms + 10 * us);
  EXPECT_LT(*lo, 1 * ms + 50 * us);
  EXPECT_GT(*hi, 2 * ms - 50 * us);
  EXPECT_FALSE(std::is_sorted(order.begin(), order.end()));  // jitter reorders
}

// Offers 2000 datagrams/s of 10,000 bits each for a second to a 10 Mbit/s limit.
struct rate_run {
  uint64_t delivered = 0;
  bool never_ahead = true;  // the output never beat bucket + rate * t
  fault_counters c;
};

rate_run offer_twice_the_rate(uint32_t queue_bytes) {
  rig r;
  fault_profile p;
  p.rate_bps = 10'000'000;
  p.queue_bytes = queue_bytes;
  fault_port f(r.a, with(p, r));
  constexpr uint32_t len = 1250 - 28;  // 1250 bytes = 10,000 bits with the IPv4 + UDP headers
  const double bucket_bits = 2.0 * 8 * (1472 + 28);
  rate_run out;
  uint64_t seq = 0;
  for (; r.now < 1000 * ms; r.now += 50 * us) {
    if (r.now % (500 * us) == 0) {
      EXPECT_EQ(send_numbered(f, addr_b, seq++, 1, len), 1U);
    }
    f.flush();
    out.delivered += drain(r.b).size();
    const double allowed = bucket_bits + 1e7 * static_cast<double>(r.now) * 1e-9;
    if (static_cast<double>(out.delivered) * 10000 > allowed) out.never_ahead = false;
  }
  out.c = f.faults().tx;
  EXPECT_EQ(seq, 2000U);
  return out;
}

TEST(fault_port, rate_limit_polices_to_the_configured_rate) {
  const rate_run run = offer_twice_the_rate(0);
  // 10 Mbit/s for 1 s is 1000 datagrams, plus the 2.4 the full bucket held at the start.
  EXPECT_GE(run.delivered, 1000U);
  EXPECT_LE(run.delivered, 1003U);
  EXPECT_TRUE(run.never_ahead);
  EXPECT_EQ(run.c.rate_dropped + run.delivered, 2000U);
  EXPECT_EQ(run.c.rate_queued, 0U);
}

TEST(fault_port, rate_limit_with_a_queue_shapes) {
  const rate_run run = offer_twice_the_rate(12500);  // 10 datagrams of queue
  EXPECT_GE(run.delivered, 999U);
  EXPECT_LE(run.delivered, 1003U);
  EXPECT_TRUE(run.never_ahead);
  EXPECT_GT(run.c.rate_queued, 900U);
  // What was not dropped was delivered, or is still queued at the end (at most 10).
  EXPECT_GE(run.c.rate_dropped + run.delivered, 1985U);
  EXPECT_LT(run.c.rate_dropped, 1000U);
}

TEST(fault_port, receive_faults_apply_in_recv) {
  rig r;
  fault_options o;
  o.clock = r.clock();
  o.rx.drop = 0.5;
  o.rx.delay_ns = 1 * ms;
  fault_port fb(r.b, std::move(o));
  ASSERT_EQ(send_numbered(r.a, addr_b, 0, 1000, 100), 1000U);
  EXPECT_TRUE(drain(fb).empty());
  EXPECT_EQ(r.b.queued(), 0U);  // pulled into the fault port, waiting there
  r.now = 1 * ms;
  const auto got = drain(fb);
  EXPECT_EQ(got.size() + fb.faults().rx.dropped, 1000U);
  EXPECT_GT(got.size(), 400U);
  EXPECT_LT(got.size(), 600U);
  for (const auto& a : got)
    EXPECT_EQ(a.rx_ns, 1 * ms);  // received when released
  EXPECT_EQ(fb.stats().rx_dgrams, got.size());
  EXPECT_EQ(fb.faults().tx, fault_counters{});
}

TEST(fault_port, a_full_port_pushes_back) {
  rig r;
  fault_profile p;
  p.delay_ns = 1 * ms;
  fault_options o = with(p, r);
  o.capacity = 8;
  fault_port f(r.a, std::move(o));
  const unsigned taken = send_numbered(f, addr_b, 0, 20, 100);
  EXPECT_EQ(taken, 7U);  // room for the datagram and a possible duplicate is kept
  EXPECT_EQ(f.stats().tx_full, 13U);
  r.now = 1 * ms;
  f.flush();  // the first 7 go out, which makes room
  EXPECT_EQ(f.held_tx(), 0U);
  EXPECT_EQ(send_numbered(f, addr_b, taken, 20, 100), 7U);
  EXPECT_EQ(drain(r.b).size(), 7U);
}

TEST(fault_port, the_inner_ports_backpressure_loses_nothing) {
  rig r(4096, 8);  // b queues at most 8
  fault_port f(r.a, with({}, r));
  ASSERT_EQ(send_numbered(f, addr_b, 0, 100, 100), 100U);
  std::vector<int64_t> order;
  for (int i = 0; i < 50 && order.size() < 100; ++i) {
    for (const auto& a : drain(r.b))
      order.push_back(a.seq);
    f.flush();
  }
  ASSERT_EQ(order.size(), 100U);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST(fault_port, destruction_frees_what_it_holds) {
  rig r;
  {
    fault_profile p;
    p.delay_ns = 1 * ms;
    p.duplicate = 0.5;
    p.reorder = 0.5;
    fault_port f(r.a, with(p, r));
    ASSERT_EQ(send_numbered(f, addr_b, 0, 100, 100), 100U);
    EXPECT_LT(r.a.available(), 4000U);
  }
  EXPECT_EQ(r.a.available(), 4096U);
}

TEST(fault_port, can_own_its_inner_port) {
  rig r;
  auto inner = std::make_unique<loopback_port>(
      r.hub, loopback_port_options{{ipv4_addr::from_octets(10, 0, 0, 3), 1}, 16, 1000, 16});
  port* raw = inner.get();
  fault_port f(std::move(inner), with({}, r));
  EXPECT_EQ(&f.inner(), raw);
  EXPECT_EQ(f.max_payload(), 1000U);
  EXPECT_EQ(send_numbered(f, addr_b, 0, 4, 10), 4U);
  EXPECT_EQ(drain(r.b).size(), 4U);
  EXPECT_THROW(fault_port(std::unique_ptr<port>(), fault_options{}), std::invalid_argument);
}

TEST(fault_port, bad_options_are_rejected) {
  rig r;
  fault_options o;
  o.tx.drop = 1.5;
  EXPECT_THROW(fault_port(r.a, o), std::invalid_argument);
  o = {};
  o.rx.reorder = -0.1;
  EXPECT_THROW(fault_port(r.a, o), std::invalid_argument);
  o = {};
  o.capacity = 1;
  EXPECT_THROW(fault_port(r.a, o), std::invalid_argument);
}

TEST(fault_port, steady_clock_by_default) {
  rig r;
  fault_profile p;
  p.delay_ns = 1 * ms;
  fault_options o;
  o.tx = p;
  fault_port f(r.a, std::move(o));
  ASSERT_EQ(send_numbered(f, addr_b, 0, 10, 10), 10U);
  EXPECT_TRUE(drain(r.b).empty());
  std::vector<arrival> got;
  for (int i = 0; i < 1000 && got.size() < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    f.flush();
    for (auto& a : drain(r.b))
      got.push_back(std::move(a));
  }
  EXPECT_EQ(got.size(), 10U);
}

}  // namespace
}  // namespace tandem::dp
