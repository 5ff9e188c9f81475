// SPDX-License-Identifier: Apache-2.0
// Two mirror engines on RAM backends, metadata files in a temporary directory, in-memory ports
// (optionally through fault ports) and a fake clock; plus an application driver that keeps a
// model of what every block must hold.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/backend/mem_backend.h"
#include "dataplane/backend/uring_backend.h"
#include "dataplane/mirror/volume.h"
#include "dataplane/port/fault_port.h"
#include "dataplane/volume/metadata.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/transport/pair_port.h"

namespace tandem::test::mirror {

namespace dm = tandem::dp::mirror;
namespace dv = tandem::dp::volume;
namespace db = tandem::dp::backend;

inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline constexpr uint64_t vol_size = 4ULL << 20;
inline constexpr uint32_t blk = 4096;
inline constexpr uint64_t blocks = vol_size / blk;
inline constexpr uint32_t ext_bytes = 256u << 10;   // activity-log extent
inline constexpr uint32_t chunk_bytes = 64u << 10;  // bitmap granularity

// A temporary directory removed with everything in it, even when the test fails. In /dev/shm
// when there is one: the metadata's fdatasyncs cost nothing there, so the tests measure the
// engine, not the disk.
struct temp_dir : tandem::test::temp_dir {
  temp_dir() : tandem::test::temp_dir("tandem-mirror", true) {}
};

inline dv::format_params test_params() {
  dv::format_params p;
  p.block_size = blk;
  p.bitmap_granularity = chunk_bytes;
  p.al_extent_size = ext_bytes;  // 16 extents
  p.al_slots = 8;                // so random writes evict
  p.al_ring_records = 4;
  return p;
}

inline std::array<uint8_t, 16> test_uuid(uint8_t fill = 0x5a) {
  std::array<uint8_t, 16> u{};
  u.fill(fill);
  return u;
}

struct node {
  uint32_t id = 0;
  std::string meta_path;
  std::unique_ptr<db::mem_backend> data;
  std::optional<dv::metadata_store> meta;
  std::unique_ptr<db::uring_backend> meta_io;
  std::unique_ptr<dm::volume> vol;
  pair_port raw;
  std::unique_ptr<dp::fault_port> faults;
  dp::port* p = nullptr;
  std::vector<std::string> logs;
  dm::volume_options opt;
  dp::transport::connection_config tcfg;
  bool paused = false;  // not polled (a process stopped)

  node(uint32_t node_id, dp::udp_addr a) : id(node_id), raw(a, 8972, 512) { p = &raw; }

  bool logged(const std::string& needle) const {
    for (const auto& l : logs)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
  std::string all_logs() const {
    std::string s;
    for (const auto& l : logs)
      s += l + "\n";
    return s;
  }
};

class cluster {
 public:
  uint64_t now = 1'000'000;
  temp_dir dir;
  node a{1, {dp::ipv4_addr::from_octets(10, 0, 0, 1), 7789}};
  node b{2, {dp::ipv4_addr::from_octets(10, 0, 0, 2), 7789}};

  cluster() { a.raw.connect(b.raw); }
  ~cluster() {
    a.vol.reset();
    b.vol.reset();
  }

  static dp::transport::connection_config default_tcfg() {
    dp::transport::connection_config c;
    c.max_message = 2u << 20;
    c.send_buffer = 2u << 20;
    c.recv_buffer = 2u << 20;
    c.dead_peer_ns = 300'000'000;
    c.keepalive_ns = 50'000'000;
    return c;
  }

  // Creates the node's metadata (fresh) and RAM disk.
  // queue_depth / shuffle_seed: the RAM disk's (a small queue pushes back; a seed hands out
  // completions in a shuffled order, as a real device may).
  void create(node& n, uint64_t size = vol_size, uint8_t uuid_fill = 0x5a,
              unsigned queue_depth = 512, uint64_t shuffle_seed = 0) {
    n.meta_path = dir.path() + "/node" + std::to_string(n.id) + ".meta";
    dv::create_options co;
    co.fixed_uuid = true;
    co.uuid = test_uuid(uuid_fill);
    co.force = true;
    n.meta.reset();
    n.meta.emplace(dv::metadata_store::create(n.meta_path, size, test_params(), co));
    db::mem_options mo;
    mo.size = size;
    mo.block_size = blk;
    mo.queue_depth = queue_depth;
    mo.shuffle_seed = shuffle_seed;
    n.data = std::make_unique<db::mem_backend>(mo);
  }

  void with_faults(node& n, const dp::fault_profile& f, uint64_t seed) {
    dp::fault_options o;
    o.seed = seed;
    o.tx = f;
    o.clock = [this] { return now; };
    n.faults = std::make_unique<dp::fault_port>(n.raw, o);
    n.p = n.faults.get();
  }

  dm::volume_options default_opt(node& n) {
    dm::volume_options o;
    o.node_id = n.id;
    o.max_in_flight = 64;
    o.recv_slots = 128;
    o.recv_pages = 512;
    o.resync_window = 8;
    o.resync_chunk = 256u << 10;
    o.log = [&n](std::string_view l) { n.logs.emplace_back(l); };
    return o;
  }

  // Starts the engine on the node's existing metadata and disk, attached to the other node.
  void start(node& n, std::optional<dm::volume_options> opt = std::nullopt) {
    node& peer = &n == &a ? b : a;
    n.opt = opt ? *opt : default_opt(n);
    n.vol = std::make_unique<dm::volume>(*n.data, *n.meta, n.opt);
    n.tcfg = default_tcfg();
    n.tcfg.peer = peer.raw.local();
    n.tcfg.log = [&n](std::string_view l) { n.logs.emplace_back(l); };
    n.vol->attach_peer(*n.p, n.tcfg);
  }

  // A process crash: the engine goes without a clean shutdown, the metadata is closed as it is
  // (flags as committed), the disk optionally loses its unflushed writes.
  void kill(node& n) {
    n.vol.reset();
    n.meta.reset();
    n.meta_io.reset();
  }
  void reopen(node& n) { n.meta.emplace(dv::metadata_store::open(n.meta_path)); }

  void step(uint64_t dt = 20'000) {
    for (node* n : {&a, &b}) {
      if (n->vol && !n->paused) n->vol->poll(now);
      if (n->faults) n->faults->flush();
    }
    now += dt;
  }

  bool run_until(const std::function<bool()>& done, uint64_t max_ns = 20'000'000'000ULL,
                 uint64_t dt = 20'000) {
    const uint64_t end = now + max_ns;
    while (now < end) {
      if (done()) return true;
      step(dt);
    }
    return done();
  }
  void run_for(uint64_t ns, uint64_t dt = 20'000) {
    const uint64_t end = now + ns;
    while (now < end)
      step(dt);
  }

  bool in_state(node& n, dm::conn_state s) { return n.vol && n.vol->connection_state() == s; }
  bool both_connected() {
    return in_state(a, dm::conn_state::connected) && in_state(b, dm::conn_state::connected);
  }

  static bool identical(const node& x, const node& y) {
    return std::memcmp(x.data->data().data(), y.data->data().data(), vol_size) == 0;
  }
  // First differing block, for messages.
  static int64_t first_difference(const node& x, const node& y) {
    for (uint64_t k = 0; k < blocks; ++k) {
      if (std::memcmp(x.data->data().data() + k * blk, y.data->data().data() + k * blk, blk) != 0) {
        return static_cast<int64_t>(k);
      }
    }
    return -1;
  }
};

// Block contents: the first 8 bytes name the write (0: zeroes, never written), the rest follow
// from (write id, block).
inline void fill_block(uint8_t* p, uint64_t id, uint64_t block) {
  std::memcpy(p, &id, 8);
  uint64_t s = mix(id * 1315423911ULL + block);
  for (size_t k = 8; k < blk; k += 8) {
    s += 0x9e3779b97f4a7c15ULL;  // cheap and distinct per block and write
    std::memcpy(p + k, &s, 8);
  }
}
inline uint64_t block_id(std::span<const uint8_t> image, uint64_t block) {
  uint64_t id;
  std::memcpy(&id, image.data() + block * blk, 8);
  return id;
}

struct aligned_free {
  void operator()(uint8_t* p) const { std::free(p); }
};
using aligned_buf = std::unique_ptr<uint8_t[], aligned_free>;
inline aligned_buf make_buf(size_t n) {
  return aligned_buf(static_cast<uint8_t*>(std::aligned_alloc(4096, n)));
}

// Drives application I/O on one engine and tracks, per block:
//  - `last`: the id of the last completed write (what both replicas must hold at the end);
//  - `hist`: the completed writes since the last point known durable (flush / FUA), oldest
//    first, with the first entry durable: after a power loss the block holds one of them or a
//    write that was still in flight.
class app_driver {
 public:
  struct stats {
    uint64_t submitted = 0, completed = 0, errors = 0, writes = 0, flushes = 0, fuas = 0,
             discards = 0, zeroes = 0, reads = 0;
  };

  explicit app_driver(cluster& c, node& n, uint64_t seed) : c_(c), n_(n), rng_(seed) {
    last_.assign(blocks, 0);
    hist_.assign(blocks, {{0, 0}});
  }

  // Submits one request; false when the engine refused it (-EAGAIN etc.).
  bool submit(dm::io_op op, uint64_t first_block, uint64_t nblocks, bool fua = false) {
    pending p;
    p.io.op = op;
    p.io.offset = first_block * blk;
    p.io.length = op == dm::io_op::flush ? 0 : nblocks * blk;
    p.io.flags = fua ? dm::io_fua : 0;
    p.id = op == dm::io_op::write ? next_id_++ : 0;
    if (op == dm::io_op::write || op == dm::io_op::read) {
      p.buf = make_buf(nblocks * blk);
      if (op == dm::io_op::write) {
        for (uint64_t k = 0; k < nblocks; ++k)
          fill_block(p.buf.get() + k * blk, p.id, first_block + k);
      }
      p.io.buf = p.buf.get();
    }
    p.io.cookie = next_cookie_++;
    p.submit_tick = tick_;
    p.submit_ns = c_.now;
    const int rc = n_.vol->submit(p.io);
    if (rc != 0) {
      last_rc_ = rc;
      return false;
    }
    ++st_.submitted;
    if (op != dm::io_op::read && op != dm::io_op::flush) {
      order_.push_back({first_block, nblocks, p.id});
    }
    inflight_.emplace(p.io.cookie, std::move(p));
    return true;
  }

  // Random request: writes of 1..32 blocks (some FUA), flushes, discards, zeroes, reads, with
  // offsets drawn from a small hot area so that they overlap often.
  bool submit_random(uint64_t hot_blocks = blocks) {
    const uint64_t r = rng_.next() % 100;
    const uint64_t len = 1 + rng_.next() % 32;
    const uint64_t start = rng_.next() % (hot_blocks - len + 1);
    if (r < 60) return submit(dm::io_op::write, start, len, rng_.next() % 8 == 0);
    if (r < 70) return submit(dm::io_op::flush, 0, 0);
    if (r < 77) return submit(dm::io_op::discard, start, len);
    if (r < 84) return submit(dm::io_op::write_zeroes, start, len);
    return submit(dm::io_op::read, start, len);
  }

  // Reaps completions and applies them to the model. Returns how many.
  unsigned reap() {
    dm::io_completion out[64];
    unsigned total = 0;
    for (;;) {
      const unsigned n = n_.vol->reap(out);
      for (unsigned k = 0; k < n; ++k)
        complete(out[k]);
      total += n;
      if (n < 64) break;
    }
    return total;
  }

  void step(uint64_t dt = 20'000) {
    c_.step(dt);
    reap();
  }

  bool drain(uint64_t max_ns = 20'000'000'000ULL) {
    return c_.run_until(
        [&] {
          reap();
          return inflight_.empty();
        },
        max_ns);
  }

  // Every block of `image` holds its model value (the last completed write).
  ::testing::AssertionResult matches_last(std::span<const uint8_t> image) const {
    for (uint64_t k = 0; k < blocks; ++k) {
      const uint64_t got = block_id(image, k);
      if (got != last_[k]) {
        return ::testing::AssertionFailure()
               << "block " << k << " holds write " << got << ", expected " << last_[k];
      }
      if (got != 0) {
        uint8_t want[blk];
        fill_block(want, got, k);
        if (std::memcmp(want, image.data() + k * blk, blk) != 0) {
          return ::testing::AssertionFailure() << "block " << k << " is torn";
        }
      } else {
        for (uint64_t w = 0; w < blk; ++w) {
          if (image[k * blk + w] != 0) {
            return ::testing::AssertionFailure() << "block " << k << " should be zeroes";
          }
        }
      }
    }
    return ::testing::AssertionSuccess();
  }

  // After a power loss: every block holds a write that may have survived (see hist_), or one
  // still in flight. With `all_completed` (a process kill: nothing is lost), every block holds
  // its last completed write or one in flight.
  ::testing::AssertionResult survived(std::span<const uint8_t> image, bool all_completed) const {
    for (uint64_t k = 0; k < blocks; ++k) {
      const uint64_t got = block_id(image, k);
      bool ok = false;
      if (all_completed) {
        ok = got == last_[k];
      } else {
        for (const auto& e : hist_[k])
          ok = ok || e.first == got;
      }
      for (const auto& [ck, p] : inflight_) {
        if (ok) break;
        if (p.io.op == dm::io_op::flush || p.io.op == dm::io_op::read) continue;
        const uint64_t first = p.io.offset / blk, n = p.io.length / blk;
        if (k >= first && k < first + n) ok = p.id == got;  // zeroes: id 0
      }
      if (!ok) {
        std::string want;
        if (all_completed) {
          want = std::to_string(last_[k]);
        } else {
          for (const auto& e : hist_[k])
            want += std::to_string(e.first) + " ";
        }
        return ::testing::AssertionFailure() << "block " << k << " holds write " << got
                                             << "; acceptable: " << want << "(or one in flight)";
      }
    }
    return ::testing::AssertionSuccess();
  }

  // Accepted write-kind requests in submission order (the order an async primary keeps): their
  // blocks and the write id they leave (0: discard / write_zeroes).
  struct ordered_write {
    uint64_t first = 0, n = 0, id = 0;
  };
  const std::vector<ordered_write>& submission_order() const { return order_; }

  // `image` is exactly what the first k write-kind requests of submission_order() leave on a
  // volume that held zeroes (k from 0 to all of them), every block whole. Returns k, or -1.
  int64_t prefix_length(std::span<const uint8_t> image) const {
    for (uint64_t k = 0; k < blocks; ++k) {
      const uint64_t got = block_id(image, k);
      uint8_t want[blk] = {};
      if (got != 0) fill_block(want, got, k);
      if (std::memcmp(want, image.data() + k * blk, blk) != 0) return -1;  // torn
    }
    std::vector<uint64_t> model(blocks, 0);
    uint64_t wrong = 0;
    for (uint64_t k = 0; k < blocks; ++k)
      wrong += block_id(image, k) != 0 ? 1 : 0;
    if (wrong == 0) return 0;
    for (size_t w = 0; w < order_.size(); ++w) {
      const ordered_write& o = order_[w];
      for (uint64_t k = o.first; k < o.first + o.n; ++k) {
        const uint64_t have = block_id(image, k);
        wrong -= model[k] != have ? 1 : 0;
        model[k] = o.id;
        wrong += model[k] != have ? 1 : 0;
      }
      if (wrong == 0) return static_cast<int64_t>(w + 1);
    }
    return -1;
  }

  const stats& st() const { return st_; }
  size_t in_flight() const { return inflight_.size(); }
  int last_rc() const { return last_rc_; }
  uint64_t last_completion_ns() const { return last_completion_ns_; }
  const std::vector<uint64_t>& last() const { return last_; }
  dp::fault_rng& rng() { return rng_; }

 private:
  struct pending {
    dm::io_request io;
    aligned_buf buf;
    uint64_t id = 0;
    uint64_t submit_tick = 0;
    uint64_t submit_ns = 0;
  };

  void complete(const dm::io_completion& c) {
    auto it = inflight_.find(c.cookie);
    ASSERT_NE(it, inflight_.end()) << "completion for an unknown cookie";
    pending& p = it->second;
    ++tick_;
    ++st_.completed;
    last_completion_ns_ = c_.now;
    if (c.result != 0) {
      ++st_.errors;
      ADD_FAILURE() << "request failed: " << c.result;
      inflight_.erase(it);
      return;
    }
    const uint64_t first = p.io.offset / blk, n = p.io.length / blk;
    switch (p.io.op) {
      case dm::io_op::write:
      case dm::io_op::discard:
      case dm::io_op::write_zeroes: {
        const uint64_t id = p.io.op == dm::io_op::write ? p.id : 0;
        const bool fua = (p.io.flags & dm::io_fua) != 0;
        for (uint64_t k = first; k < first + n; ++k) {
          last_[k] = id;
          if (fua) hist_[k].clear();
          hist_[k].push_back({id, tick_});
        }
        if (p.io.op == dm::io_op::write) ++st_.writes;
        if (fua) ++st_.fuas;
        if (p.io.op == dm::io_op::discard) ++st_.discards;
        if (p.io.op == dm::io_op::write_zeroes) ++st_.zeroes;
        break;
      }
      case dm::io_op::flush:
        // Writes completed before the flush was submitted are durable: the newest of them
        // becomes the block's durable baseline.
        for (auto& h : hist_) {
          size_t keep = 0;
          for (size_t e = 0; e < h.size(); ++e)
            if (h[e].second <= p.submit_tick) keep = e;
          if (keep > 0) h.erase(h.begin(), h.begin() + static_cast<ptrdiff_t>(keep));
        }
        ++st_.flushes;
        break;
      case dm::io_op::read: {
        // A read sees the model unless a write to the same blocks was in flight meanwhile.
        bool racing = false;
        for (const auto& [ck, q] : inflight_) {
          if (ck == c.cookie || q.io.op == dm::io_op::read || q.io.op == dm::io_op::flush) continue;
          if (q.io.offset < p.io.offset + p.io.length && p.io.offset < q.io.offset + q.io.length)
            racing = true;
        }
        if (!racing && !reads_racing_) {
          for (uint64_t k = first; k < first + n; ++k) {
            uint64_t id;
            std::memcpy(&id, p.buf.get() + (k - first) * blk, 8);
            EXPECT_EQ(id, last_[k]) << "read of block " << k;
          }
        }
        ++st_.reads;
        break;
      }
    }
    inflight_.erase(it);
  }

 public:
  bool reads_racing_ = true;  // reads are only checked when set false (no concurrent writes)

 private:
  cluster& c_;
  node& n_;
  dp::fault_rng rng_;
  std::map<uint64_t, pending> inflight_;
  std::vector<uint64_t> last_;
  std::vector<ordered_write> order_;
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> hist_;
  uint64_t next_id_ = 1;
  uint64_t next_cookie_ = 1;
  uint64_t tick_ = 0;
  uint64_t last_completion_ns_ = 0;
  int last_rc_ = 0;
  stats st_;
};

}  // namespace tandem::test::mirror
