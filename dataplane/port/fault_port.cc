// SPDX-License-Identifier: Apache-2.0
// The fault port: wraps any port and injects seeded drop, duplicate, reorder, corrupt, delay, rate.
#include "dataplane/port/fault_port.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace tandem::dp {

// One direction: its generator, the datagrams it holds, and its token bucket. Every held datagram
// is in exactly one of `timed` (a min-heap on release time), `held` (reordered) or `ready` (a
// FIFO ring, due now), and together they never hold more than the capacity.
struct fault_port::lane {
  struct timed_entry {
    uint64_t release_ns;
    uint64_t seq;  // ties keep arrival order
    dgram* d;
    bool reorder;
  };
  struct held_entry {
    dgram* d;
    unsigned left;  // later datagrams still to go out before this one
    uint64_t deadline_ns;
  };
  static bool later(const timed_entry& a, const timed_entry& b) noexcept {
    return a.release_ns != b.release_ns ? a.release_ns > b.release_ns : a.seq > b.seq;
  }

  lane(const fault_profile& profile, uint64_t seed, unsigned cap, uint32_t max_payload,
       uint64_t now, fault_counters& counters, bool receive)
      : p(profile),
        rng(seed),
        count(counters),
        is_rx(receive),
        capacity(cap),
        timed(std::make_unique<timed_entry[]>(cap)),
        held(std::make_unique<held_entry[]>(cap)),
        ready(std::make_unique<dgram*[]>(cap)),
        last_ns(now) {
    if (p.rate_bps > 0) {
      const double full = 2.0 * 8.0 * (max_payload + p.rate_overhead_bytes);
      const double one_ms = static_cast<double>(p.rate_bps) / 1000.0;
      depth_bits = p.burst_bytes > 0 ? 8.0 * p.burst_bytes : std::max(full, one_ms);
      queue_bits = 8.0 * p.queue_bytes;
      tokens_bits = depth_bits;
    }
    if (p.reorder_after == 0) p.reorder_after = 1;
  }

  unsigned size() const noexcept { return timed_n + held_n + ready_n; }

  void ready_push(dgram* d) noexcept { ready[(ready_head + ready_n++) % capacity] = d; }
  dgram* ready_pop() noexcept {
    dgram* d = ready[ready_head];
    ready_head = (ready_head + 1) % capacity;
    --ready_n;
    return d;
  }
  // A datagram the lane held goes out now: on receive, its receive time becomes now.
  void release(dgram* d, uint64_t now) noexcept {
    if (is_rx) d->rx_ns = now;
    ready_push(d);
  }

  fault_profile p;
  fault_rng rng;
  fault_counters& count;
  bool is_rx;
  unsigned capacity;
  std::unique_ptr<timed_entry[]> timed;
  unsigned timed_n = 0;
  uint64_t seq = 0;
  std::unique_ptr<held_entry[]> held;
  unsigned held_n = 0;
  std::unique_ptr<dgram*[]> ready;
  unsigned ready_head = 0;
  unsigned ready_n = 0;
  double depth_bits = 0;
  double queue_bits = 0;
  double tokens_bits = 0;  // negative: bits queued behind the bucket
  uint64_t last_ns;
};

namespace {

uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void check_profile(const fault_profile& p, const char* dir) {
  const auto prob = [&](double v, const char* what) {
    if (!(v >= 0.0 && v <= 1.0)) {
      throw std::invalid_argument(std::string("fault port: ") + dir + " " + what + " probability " +
                                  std::to_string(v) + " is not in 0..1");
    }
  };
  prob(p.drop, "drop");
  prob(p.duplicate, "duplicate");
  prob(p.corrupt, "corrupt");
  prob(p.reorder, "reorder");
}

port& checked(const std::unique_ptr<port>& inner) {
  if (!inner) throw std::invalid_argument("fault port: no inner port");
  return *inner;
}

fault_options checked(fault_options opts) {
  if (opts.capacity < 2) throw std::invalid_argument("fault port: capacity must be at least 2");
  check_profile(opts.tx, "tx");
  check_profile(opts.rx, "rx");
  if (!opts.clock) opts.clock = steady_ns;
  return opts;
}

}  // namespace

fault_port::fault_port(std::unique_ptr<port> inner, fault_options opts)
    : fault_port(checked(inner), std::move(opts)) {
  owned_ = std::move(inner);
}

fault_port::fault_port(port& inner, fault_options opts) : inner_(inner) {
  opts = checked(std::move(opts));
  clock_ = std::move(opts.clock);
  capacity_ = opts.capacity;
  const uint64_t now = clock_();
  uint64_t s = opts.seed;
  const uint64_t tx_seed = fault_rng::splitmix64(s);
  const uint64_t rx_seed = fault_rng::splitmix64(s);
  const uint32_t mp = inner_.max_payload();
  tx_ = std::make_unique<lane>(opts.tx, tx_seed, capacity_, mp, now, faults_.tx, false);
  rx_ = std::make_unique<lane>(opts.rx, rx_seed, capacity_, mp, now, faults_.rx, true);
  scratch_ = std::make_unique<dgram*[]>(capacity_);
}

fault_port::~fault_port() {
  free_all(*tx_);
  free_all(*rx_);
}

void fault_port::free_all(lane& l) noexcept {
  unsigned k = 0;
  const auto put = [&](dgram* d) {
    scratch_[k++] = d;
    if (k == capacity_) {
      inner_.free(scratch_.get(), k);
      k = 0;
    }
  };
  for (unsigned i = 0; i < l.timed_n; ++i)
    put(l.timed[i].d);
  for (unsigned i = 0; i < l.held_n; ++i)
    put(l.held[i].d);
  while (l.ready_n > 0)
    put(l.ready_pop());
  l.timed_n = l.held_n = 0;
  if (k > 0) inner_.free(scratch_.get(), k);
}

unsigned fault_port::held_tx() const {
  return tx_->size();
}
unsigned fault_port::held_rx() const {
  return rx_->size();
}

uint64_t fault_port::next_event_ns() const {
  uint64_t t = UINT64_MAX;
  for (const lane* l : {tx_.get(), rx_.get()}) {
    if (l->timed_n > 0) t = std::min(t, l->timed[0].release_ns);
    for (unsigned i = 0; i < l->held_n; ++i)
      t = std::min(t, l->held[i].deadline_ns);
  }
  return t;
}

// drop -> duplicate -> corrupt, then each copy is scheduled.
void fault_port::process(lane& l, dgram* d, uint64_t now) {
  const fault_profile& p = l.p;
  if (p.drop > 0 && l.rng.chance(p.drop)) {
    ++l.count.dropped;
    inner_.free(&d, 1);
    return;
  }
  dgram* dup = nullptr;
  if (p.duplicate > 0 && l.rng.chance(p.duplicate)) {
    if (inner_.alloc(&dup, 1) == 1) {
      const uint32_t len = std::min(d->len, dup->cap);
      std::memcpy(dup->data, d->data, len);
      dup->len = len;
      dup->peer = d->peer;
      dup->rx_ns = d->rx_ns;
      ++l.count.duplicated;
    } else {
      dup = nullptr;
      ++l.count.duplicate_failed;
    }
  }
  if (p.corrupt > 0 && l.rng.chance(p.corrupt) && d->len > 0) {
    const uint64_t bit = l.rng.below(static_cast<uint64_t>(d->len) * 8);
    d->data[bit / 8] ^= static_cast<uint8_t>(1U << (bit % 8));
    ++l.count.corrupted;
  }
  schedule(l, d, now);
  if (dup) schedule(l, dup, now);
}

// rate limit -> delay + jitter -> (reorder, at the exit).
void fault_port::schedule(lane& l, dgram* d, uint64_t now) {
  const fault_profile& p = l.p;
  uint64_t release = now;
  if (p.rate_bps > 0) {
    if (now > l.last_ns) {
      const double refill =
          static_cast<double>(now - l.last_ns) * 1e-9 * static_cast<double>(p.rate_bps);
      l.tokens_bits = std::min(l.depth_bits, l.tokens_bits + refill);
      l.last_ns = now;
    }
    const double after = l.tokens_bits - 8.0 * (d->len + p.rate_overhead_bytes);
    if (after < -l.queue_bits) {
      ++l.count.rate_dropped;
      inner_.free(&d, 1);
      return;
    }
    l.tokens_bits = after;
    if (after < 0) {
      release += static_cast<uint64_t>(std::ceil(-after * 1e9 / static_cast<double>(p.rate_bps)));
      ++l.count.rate_queued;
    }
  }
  if (p.delay_ns > 0 || p.jitter_ns > 0) {
    const uint64_t extra = p.jitter_ns > 0 ? l.rng.below(p.jitter_ns + 1) : 0;
    if (p.delay_ns + extra > 0) ++l.count.delayed;
    release += p.delay_ns + extra;
  }
  const bool reorder = p.reorder > 0 && l.rng.chance(p.reorder);
  if (release > now) {
    l.timed[l.timed_n++] = {release, l.seq++, d, reorder};
    std::push_heap(l.timed.get(), l.timed.get() + l.timed_n, lane::later);
    return;
  }
  emit(l, d, reorder, now);
}

// A datagram is due: hold it back (reorder), or make it ready and count it as one "later"
// datagram for those held back.
void fault_port::emit(lane& l, dgram* d, bool reorder, uint64_t now) {
  if (reorder) {
    l.held[l.held_n++] = {d, l.p.reorder_after, now + l.p.reorder_max_ns};
    ++l.count.reordered;
    return;
  }
  l.ready_push(d);
  unsigned w = 0;
  for (unsigned i = 0; i < l.held_n; ++i) {
    if (--l.held[i].left == 0) {
      l.release(l.held[i].d, now);
    } else {
      l.held[w++] = l.held[i];
    }
  }
  l.held_n = w;
}

void fault_port::release_due(lane& l, uint64_t now) {
  unsigned w = 0;
  for (unsigned i = 0; i < l.held_n; ++i) {
    if (l.held[i].deadline_ns <= now) {
      l.release(l.held[i].d, now);
    } else {
      l.held[w++] = l.held[i];
    }
  }
  l.held_n = w;
  while (l.timed_n > 0 && l.timed[0].release_ns <= now) {
    std::pop_heap(l.timed.get(), l.timed.get() + l.timed_n, lane::later);
    const lane::timed_entry e = l.timed[--l.timed_n];
    if (l.is_rx) e.d->rx_ns = now;
    emit(l, e.d, e.reorder, now);
  }
}

// Hands what is ready to the inner port: one inner.send().
void fault_port::push_tx() {
  lane& l = *tx_;
  const unsigned k = l.ready_n;
  if (k == 0) return;
  for (unsigned i = 0; i < k; ++i)
    scratch_[i] = l.ready[(l.ready_head + i) % capacity_];
  const unsigned sent = inner_.send(scratch_.get(), k);
  l.ready_head = (l.ready_head + sent) % capacity_;
  l.ready_n -= sent;
}

unsigned fault_port::send(dgram** bufs, unsigned n) {
  const uint64_t now = clock_();
  lane& l = *tx_;
  release_due(l, now);
  unsigned taken = 0;
  // Room for the datagram and a possible duplicate, whatever the draw.
  while (taken < n && l.size() + 2 <= capacity_) {
    dgram* d = bufs[taken++];
    stats_.tx_bytes += d->len;
    process(l, d, now);
  }
  stats_.tx_dgrams += taken;
  stats_.tx_full += n - taken;
  push_tx();
  return taken;
}

void fault_port::flush() {
  release_due(*tx_, clock_());
  push_tx();
  inner_.flush();
}

unsigned fault_port::recv(dgram** bufs, unsigned n) {
  const uint64_t now = clock_();
  lane& l = *rx_;
  release_due(l, now);
  // Pull all the inner port has (up to the room left, keeping room for duplicates), so that
  // delays count from arrival rather than from when the caller asks.
  const unsigned want = (capacity_ - l.size()) / 2;
  if (want > 0) {
    const unsigned got = inner_.recv(scratch_.get(), want);
    for (unsigned i = 0; i < got; ++i)
      process(l, scratch_[i], now);
  }
  const unsigned out = std::min(n, l.ready_n);
  for (unsigned i = 0; i < out; ++i) {
    bufs[i] = l.ready_pop();
    stats_.rx_bytes += bufs[i]->len;
  }
  stats_.rx_dgrams += out;
  return out;
}

}  // namespace tandem::dp
