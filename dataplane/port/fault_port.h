// SPDX-License-Identifier: Apache-2.0
// The fault port: wraps any port and injects seeded drop, duplicate, reorder, corrupt, delay, rate.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dataplane/port/port.h"

namespace tandem::dp {

// xoshiro256** seeded through splitmix64: small, fast, and the same sequence everywhere.
class fault_rng {
 public:
  explicit fault_rng(uint64_t seed) noexcept {
    for (auto& w : s_)
      w = splitmix64(seed);
  }
  uint64_t next() noexcept {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // True with probability p (p <= 0: never, p >= 1: always).
  bool chance(double p) noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
  // Uniform in [0, n); n > 0.
  uint64_t below(uint64_t n) noexcept {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  static uint64_t splitmix64(uint64_t& x) noexcept {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// The faults of one direction. A datagram goes through the stages in this order:
//   drop -> duplicate (an exact copy, made before corruption) -> corrupt (one random bit of the
//   payload) -> rate limit -> delay + jitter -> reorder,
// and a duplicate joins at the rate limit. Probabilities are per datagram, 0..1.
struct fault_profile {
  double drop = 0;
  double duplicate = 0;
  double corrupt = 0;
  // Held back until `reorder_after` later datagrams have gone out in this direction, or for at
  // most `reorder_max_ns`, whichever comes first.
  double reorder = 0;
  unsigned reorder_after = 3;
  uint64_t reorder_max_ns = 1'000'000;
  // Fixed delay plus a uniform extra in [0, jitter_ns] (jitter reorders, as on a real path).
  uint64_t delay_ns = 0;
  uint64_t jitter_ns = 0;
  // Token bucket in bits/s (0: no limit) over payload + rate_overhead_bytes (IPv4 + UDP). The
  // bucket holds burst_bytes (0: the larger of two full datagrams and 1 ms at the rate). What
  // exceeds it waits in a FIFO of up to queue_bytes (a link's queue; the wait shows as delay) and
  // beyond that is dropped; queue_bytes 0 makes a pure policer.
  uint64_t rate_bps = 0;
  uint32_t burst_bytes = 0;
  uint32_t queue_bytes = 0;
  uint32_t rate_overhead_bytes = 28;
};

struct fault_options {
  uint64_t seed = 1;
  fault_profile tx;  // applied in send()
  fault_profile rx;  // applied in recv()
  // Datagrams each direction may hold (delayed, reordered, waiting for the inner port). A full
  // direction pushes back: send() takes fewer, recv() pulls fewer from the inner port.
  unsigned capacity = 4096;
  // Time in ns; empty: std::chrono::steady_clock. Tests pass a fake clock.
  std::function<uint64_t()> clock;
};

struct fault_counters {
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t duplicate_failed = 0;  // no buffer for the copy: the duplicate was skipped
  uint64_t corrupted = 0;
  uint64_t reordered = 0;
  uint64_t delayed = 0;       // held for delay_ns + jitter > 0
  uint64_t rate_queued = 0;   // waited for the token bucket
  uint64_t rate_dropped = 0;  // the queue was full
  friend bool operator==(const fault_counters&, const fault_counters&) = default;
};

struct fault_stats {
  fault_counters tx, rx;
};

// Buffers: alloc() and free() are the inner port's. A datagram that send() takes, or that recv()
// gets from the inner port, belongs to the fault port until it is passed on (to inner.send(), or
// out of recv()) or dropped (inner.free()); held ones are those very buffers. A duplicate is a
// copy in a buffer from inner.alloc(). Destroying the fault port frees what it still holds.
//
// Nothing runs by itself: held datagrams go out from send(), flush() (tx) and recv() (rx), so a
// caller polls (next_event_ns() says when something is due). Each of send()/flush() makes at most
// one inner.send() call and recv() at most one inner.recv(); decisions come from one seeded
// generator per direction, so the same seed, clock and traffic give the same faults.
class fault_port final : public port {
 public:
  // Wraps `inner`, which must outlive this port.
  fault_port(port& inner, fault_options opts);
  // Wraps and owns `inner`.
  fault_port(std::unique_ptr<port> inner, fault_options opts);
  ~fault_port() override;
  fault_port(const fault_port&) = delete;
  fault_port& operator=(const fault_port&) = delete;

  unsigned alloc(dgram** bufs, unsigned n) override { return inner_.alloc(bufs, n); }
  unsigned send(dgram** bufs, unsigned n) override;
  unsigned recv(dgram** bufs, unsigned n) override;
  void free(dgram** bufs, unsigned n) override { inner_.free(bufs, n); }
  void flush() override;

  uint32_t max_payload() const override { return inner_.max_payload(); }
  udp_addr local() const override { return inner_.local(); }
  bool link_up() const override { return inner_.link_up(); }
  // Datagrams crossing this port's own interface: taken by send(), handed out by recv().
  const port_stats& stats() const override { return stats_; }
  std::string name() const override { return "fault(" + inner_.name() + ")"; }

  const fault_stats& faults() const { return faults_; }
  port& inner() { return inner_; }
  // Datagrams held in each direction.
  unsigned held_tx() const;
  unsigned held_rx() const;
  // The earliest time (clock ns) a held datagram is due; UINT64_MAX when nothing waits on time.
  uint64_t next_event_ns() const;

 private:
  struct lane;

  void process(lane& l, dgram* d, uint64_t now);
  void schedule(lane& l, dgram* d, uint64_t now);
  void emit(lane& l, dgram* d, bool reorder, uint64_t now);
  void release_due(lane& l, uint64_t now);
  void push_tx();
  void free_all(lane& l) noexcept;

  std::unique_ptr<port> owned_;
  port& inner_;
  std::function<uint64_t()> clock_;
  unsigned capacity_;
  std::unique_ptr<lane> tx_;
  std::unique_ptr<lane> rx_;
  std::unique_ptr<dgram*[]> scratch_;  // one burst to or from the inner port
  port_stats stats_;
  fault_stats faults_;
};

}  // namespace tandem::dp
