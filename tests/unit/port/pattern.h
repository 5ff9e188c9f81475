// SPDX-License-Identifier: Apache-2.0
// Numbered test datagrams: sizes and contents derived from a sequence number, checked on arrival.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/port/fault_port.h"
#include "dataplane/port/port.h"

namespace tandem::test {

// A datagram of `len` bytes numbered `seq`: 8 bytes of seq (when it fits), then bytes derived
// from seq and the offset. Shorter ones are the pattern only, so they are told apart by content.
inline uint8_t pattern_byte(uint64_t seq, size_t i) {
  return static_cast<uint8_t>((seq * 131 + i * 7 + (i >> 8) * 13 + 0x5a) & 0xff);
}

inline void fill(dp::dgram& d, uint64_t seq, uint32_t len) {
  d.len = len;
  size_t i = 0;
  if (len >= 8) {
    std::memcpy(d.data, &seq, 8);
    i = 8;
  }
  for (; i < len; ++i)
    d.data[i] = pattern_byte(seq, i);
}

// The seq of a datagram of 8 bytes or more whose content is intact, or -1.
inline int64_t check(const dp::dgram& d) {
  if (d.len < 8) return -1;
  uint64_t seq = 0;
  std::memcpy(&seq, d.data, 8);
  for (size_t i = 8; i < d.len; ++i) {
    if (d.data[i] != pattern_byte(seq, i)) return -1;
  }
  return static_cast<int64_t>(seq);
}

// Random-looking but reproducible length for datagram seq, in [lo, hi].
inline uint32_t length_of(uint64_t seed, uint64_t seq, uint32_t lo, uint32_t hi) {
  uint64_t s = seed * 0x100000001b3ULL + seq;
  return lo + static_cast<uint32_t>(dp::fault_rng::splitmix64(s) % (hi - lo + 1));
}

inline std::string bytes_of(const dp::dgram& d) {
  return {reinterpret_cast<const char*>(d.data), d.len};
}

// What a receiver expects: every seq once, with its length; short datagrams as a multiset of
// their bytes.
struct expectation {
  std::vector<uint32_t> len;              // by seq
  std::vector<uint8_t> seen;              // by seq
  std::map<std::string, int> short_ones;  // content -> expected minus received
  uint64_t ok = 0, dup = 0, bad = 0;

  void expect(uint64_t seq, uint32_t l, const dp::dgram& filled) {
    if (len.size() <= seq) {
      len.resize(seq + 1);
      seen.resize(seq + 1);
    }
    len[seq] = l;
    if (l < 8) ++short_ones[bytes_of(filled)];
  }
  void got(const dp::dgram& d) {
    if (d.len < 8) {
      auto it = short_ones.find(bytes_of(d));
      if (it == short_ones.end()) {
        ++bad;
      } else if (it->second <= 0) {
        ++dup;
      } else {
        --it->second;
        ++ok;
      }
      return;
    }
    const int64_t seq = check(d);
    if (seq < 0 || static_cast<uint64_t>(seq) >= len.size() || len[seq] != d.len) {
      ++bad;
    } else if (seen[seq]) {
      ++dup;
    } else {
      seen[seq] = 1;
      ++ok;
    }
  }
};

struct exchange_options {
  uint64_t count = 10000;
  uint64_t seed = 1;
  uint32_t min_len = 1;
  uint32_t max_len = 1472;
  unsigned burst = 64;    // datagrams per send() call
  unsigned window = 512;  // sent but not yet received, before the sender waits
  // Lossy paths: a datagram not back within this long is presumed lost (the window moves on),
  // and the exchange ends when nothing has arrived for this long after the last send.
  std::chrono::milliseconds patience{300};
  bool lossy = false;
  std::chrono::seconds timeout{60};
};

struct exchange_result {
  uint64_t sent = 0;
  uint64_t received = 0;  // ok + dup + bad
  uint64_t bad_peer = 0;
  expectation e;
  double seconds = 0;
  bool timed_out = false;
};

// Sends numbered datagrams from tx to `to` and receives them on rx, both from this thread.
inline exchange_result exchange(dp::port& tx, dp::port& rx, const dp::udp_addr& to,
                                const exchange_options& o) {
  using clock = std::chrono::steady_clock;
  exchange_result r;
  std::vector<dp::dgram*> pending;
  std::vector<dp::dgram*> in(256);
  const auto start = clock::now();
  auto last_progress = start;
  uint64_t next = 0;
  uint64_t presumed_lost = 0;
  for (;;) {
    const auto now = clock::now();
    if (now - start > o.timeout) {
      r.timed_out = true;
      break;
    }
    bool busy = false;
    const uint64_t accounted = r.received + presumed_lost;  // duplicates may make it pass next
    uint64_t in_flight = next > accounted ? next - accounted : 0;
    if (o.lossy && in_flight > 0 && now - last_progress > o.patience / 4) {
      presumed_lost += in_flight;  // the window slides past what the path lost
      in_flight = 0;
      last_progress = now;
    }
    if (pending.empty() && next < o.count && in_flight < o.window) {
      const auto want = static_cast<unsigned>(
          std::min<uint64_t>({o.burst, o.count - next, o.window - in_flight}));
      pending.resize(want);
      const unsigned k = tx.alloc(pending.data(), want);
      pending.resize(k);
      for (dp::dgram* d : pending) {
        const uint32_t len = length_of(o.seed, next, o.min_len, o.max_len);
        fill(*d, next, len);
        d->peer = to;
        r.e.expect(next, len, *d);
        ++next;
      }
    }
    if (!pending.empty()) {
      const unsigned taken = tx.send(pending.data(), static_cast<unsigned>(pending.size()));
      r.sent += taken;
      pending.erase(pending.begin(), pending.begin() + taken);
      busy = busy || taken > 0;
    }
    tx.flush();
    const unsigned got = rx.recv(in.data(), static_cast<unsigned>(in.size()));
    for (unsigned i = 0; i < got; ++i) {
      r.e.got(*in[i]);
      const dp::udp_addr from = tx.local();
      if (!from.ip.is_unspecified() && in[i]->peer != from) ++r.bad_peer;
    }
    rx.free(in.data(), got);
    r.received += got;
    if (got > 0) {
      busy = true;
      last_progress = clock::now();
    }
    const bool all_sent = next == o.count && pending.empty();
    if (all_sent && r.received >= r.sent) break;
    if (all_sent && o.lossy && clock::now() - last_progress > o.patience) break;
    if (!busy) std::this_thread::yield();
  }
  for (dp::dgram* d : pending)
    tx.free(&d, 1);
  r.seconds = std::chrono::duration<double>(clock::now() - start).count();
  return r;
}

}  // namespace tandem::test
