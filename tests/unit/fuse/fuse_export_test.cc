// SPDX-License-Identifier: Apache-2.0
// fuse_export without a kernel: worker threads call read / write / flush / zero_range while a
// fake lcore takes the requests, checks that each is one the engine accepts (whole blocks, at
// most max_io_bytes, zeroings on the extent grid) and applies it to an in-memory image.
#include <poll.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/frontend/fuse_frontend.h"

namespace tandem::dp::frontend {
namespace {

constexpr uint64_t volume_bytes = 8u << 20;
constexpr uint32_t block = 4096;
constexpr uint64_t zero_chunk = 1u << 20;

// The engine's side: one thread, like the replicator's lcore. `sleep_when_idle`: with nothing to do
// it sleeps on the export's wake-up (for up to 200 ms) instead of spinning, as an idle lcore does.
class fake_lcore {
 public:
  explicit fake_lcore(fuse_export& e, bool sleep_when_idle = false)
      : e_(e), image_(volume_bytes, 0), sleeps_(sleep_when_idle) {
    t_ = std::thread([this] { run(); });
  }
  ~fake_lcore() {
    stop_ = true;
    t_.join();
  }
  std::vector<uint8_t>& image() { return image_; }
  std::atomic<int> fail_with{0};  // complete everything with this (0: apply)
  std::atomic<uint64_t> bad{0};   // requests the engine would refuse
  std::atomic<uint64_t> requests{0}, flushes{0}, discards{0}, zeroes{0};
  // Sleeps, those a worker's request ended, and those that ran out while a request waited.
  std::atomic<uint64_t> sleeps{0}, woken{0}, lost_wakeups{0};

 private:
  void run() {
    while (!stop_) {
      mirror::io_request io;
      if (!e_.next(io)) {
        if (sleeps_) {
          sleep(io);
        } else {
          std::this_thread::yield();
        }
        continue;
      }
      ++requests;
      EXPECT_TRUE(io.cookie & fuse_cookie_bit);
      e_.complete(io.cookie, fail_with ? fail_with.load() : apply(io));
    }
  }
  void sleep(mirror::io_request& io) {
    if (e_.arm_wakeup()) {
      e_.disarm_wakeup(false);
      return;
    }
    ++sleeps;
    pollfd p{.fd = e_.wake_fd(), .events = POLLIN, .revents = 0};
    const int rc = ::poll(&p, 1, 200);
    e_.disarm_wakeup(rc == 1);
    if (rc == 1) {
      ++woken;
    } else if (e_.next(io)) {  // a request waited through the whole sleep: its wake-up was lost
      ++lost_wakeups;
      ++requests;
      e_.complete(io.cookie, apply(io));
    }
  }
  int apply(const mirror::io_request& io) {
    const bool data = io.op == mirror::io_op::read || io.op == mirror::io_op::write;
    if (io.op == mirror::io_op::flush) {
      ++flushes;
      return 0;
    }
    if (io.offset % block || io.length % block || io.length == 0 ||
        io.offset + io.length > volume_bytes || (data && io.length > mirror::max_io_bytes) ||
        (data && (!io.buf || reinterpret_cast<uintptr_t>(io.buf) % 4096))) {
      ++bad;
      return -EINVAL;
    }
    switch (io.op) {
      case mirror::io_op::read:
        std::memcpy(io.buf, image_.data() + io.offset, io.length);
        break;
      case mirror::io_op::write:
        std::memcpy(image_.data() + io.offset, io.buf, io.length);
        break;
      default:
        // Within one cell of the zeroing grid.
        if (io.offset / zero_chunk != (io.offset + io.length - 1) / zero_chunk) ++bad;
        (io.op == mirror::io_op::discard ? discards : zeroes)++;
        std::memset(image_.data() + io.offset, 0, io.length);
    }
    return 0;
  }

  fuse_export& e_;
  std::vector<uint8_t> image_;
  bool sleeps_;
  std::atomic<bool> stop_{false};
  std::thread t_;
};

std::string pattern(size_t n, uint8_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>(seed + i * 7 + i / 251);
  return s;
}

TEST(fuse_export, unpublished_file_refuses_everything) {
  fuse_export e("db", 2);
  char buf[16];
  EXPECT_FALSE(e.open());
  EXPECT_EQ(e.read(buf, sizeof buf, 0), -ENXIO);
  EXPECT_EQ(e.write(buf, sizeof buf, 0), -ENXIO);
  EXPECT_EQ(e.flush(), -ENXIO);
  EXPECT_EQ(e.zero_range(0, 4096, true), -ENXIO);
}

TEST(fuse_export, aligned_unaligned_and_oversized_io_reach_the_engine_as_whole_blocks) {
  fuse_export e("db", 2);
  e.publish(volume_bytes, block, zero_chunk);
  fake_lcore lc(e);
  ASSERT_TRUE(e.open());
  EXPECT_EQ(e.open_count(), 1u);
  EXPECT_EQ(e.withdraw(), -EBUSY);  // open: stays

  // 3 MiB + 1 byte at an odd offset: split into engine-sized pieces, edges merged.
  const std::string big = pattern((3u << 20) + 1, 3);
  ASSERT_EQ(e.write(big.data(), big.size(), 12345), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(std::memcmp(lc.image().data() + 12345, big.data(), big.size()), 0);
  EXPECT_EQ(lc.image()[12344], 0);
  EXPECT_EQ(lc.image()[12345 + big.size()], 0);
  std::string back(big.size(), '\0');
  ASSERT_EQ(e.read(back.data(), back.size(), 12345), static_cast<ssize_t>(back.size()));
  EXPECT_TRUE(back == big);

  // Aligned 2 MiB: no read before the write.
  const uint64_t before = lc.requests;
  const std::string al = pattern(2u << 20, 9);
  ASSERT_EQ(e.write(al.data(), al.size(), 4u << 20), static_cast<ssize_t>(al.size()));
  EXPECT_EQ(lc.requests - before, 2u);  // two 1 MiB writes

  // Reads past the end are short; writes past it get ENOSPC after a short write.
  char tail[8192];
  EXPECT_EQ(e.read(tail, sizeof tail, volume_bytes - 100), 100);
  EXPECT_EQ(e.read(tail, sizeof tail, volume_bytes), 0);
  EXPECT_EQ(e.write(tail, sizeof tail, volume_bytes - 4096), 4096);
  EXPECT_EQ(e.write(tail, sizeof tail, volume_bytes), -ENOSPC);

  EXPECT_EQ(e.flush(), 0);
  EXPECT_EQ(lc.flushes, 1u);
  EXPECT_EQ(lc.bad, 0u);
  EXPECT_GE(e.stats().unaligned.load(), 2u);
  e.release();
  EXPECT_EQ(e.withdraw(), 0);
  EXPECT_FALSE(e.published());
  EXPECT_EQ(e.in_flight(), 0u);
}

TEST(fuse_export, zero_range_zeroes_edges_and_cuts_the_middle_on_the_grid) {
  fuse_export e("db", 2);
  e.publish(volume_bytes, block, zero_chunk);
  fake_lcore lc(e);
  std::memset(lc.image().data(), 0xab, volume_bytes);
  // From 100 bytes into block 1 to 5 bytes into a block past 3 MiB: two partial edges and a
  // middle that crosses three grid lines.
  const uint64_t off = block + 100, end = (3u << 20) + 3 * block + 5;
  ASSERT_EQ(e.zero_range(off, end - off, true), 0);
  for (uint64_t i = 0; i < volume_bytes; ++i) {
    const uint8_t want = (i >= off && i < end) ? 0 : 0xab;
    ASSERT_EQ(lc.image()[i], want) << "byte " << i;
  }
  EXPECT_EQ(lc.discards, 4u);  // [8K,1M) [1M,2M) [2M,3M) [3M,3M+12K)
  EXPECT_EQ(lc.bad, 0u);
  ASSERT_EQ(e.zero_range(0, block, false), 0);
  EXPECT_EQ(lc.zeroes, 1u);
  EXPECT_EQ(e.stats().discards.load(), 1u);
}

TEST(fuse_export, engine_errors_reach_the_caller_and_concurrent_writers_do_not_tear_blocks) {
  fuse_export e("db", 2);
  e.publish(volume_bytes, block, zero_chunk);
  fake_lcore lc(e);
  lc.fail_with = -EROFS;
  char buf[4096] = {};
  EXPECT_EQ(e.write(buf, sizeof buf, 0), -EROFS);
  EXPECT_EQ(e.read(buf, sizeof buf, 0), -EROFS);
  EXPECT_EQ(e.stats().errors.load(), 2u);
  lc.fail_with = 0;

  // Threads write disjoint, unaligned byte ranges that share blocks, each time with a new value.
  // Without the merge lock one thread's read-modify-write could put back another's older bytes;
  // with it, every range ends holding its writer's last value.
  constexpr int writers = 8, rounds = 40;
  constexpr uint64_t span = 1500;
  auto value = [](int t, int k) { return static_cast<char>((t * 31 + k) % 251 + 1); };
  std::vector<std::thread> ts;
  for (int t = 0; t < writers; ++t) {
    ts.emplace_back([&e, &value, t] {
      for (int k = 0; k < rounds; ++k) {
        const std::string piece(span, value(t, k));
        EXPECT_EQ(e.write(piece.data(), span, 1000 + static_cast<uint64_t>(t) * span),
                  static_cast<ssize_t>(span));
      }
    });
  }
  for (auto& t : ts)
    t.join();
  for (int t = 0; t < writers; ++t) {
    for (uint64_t i = 0; i < span; ++i) {
      ASSERT_EQ(static_cast<char>(lc.image()[1000 + t * span + i]), value(t, rounds - 1))
          << "writer " << t << " byte " << i;
    }
  }
  EXPECT_EQ(lc.bad, 0u);
}

// An lcore that sleeps between requests is woken by each worker's request: none waits out a
// sleep, and every write lands.
TEST(fuse_export, a_sleeping_lcore_is_woken_by_every_request) {
  fuse_export e("db", 2);
  e.publish(volume_bytes, block, zero_chunk);
  fake_lcore lc(e, true);
  constexpr int writers = 4, rounds = 300;
  std::vector<std::thread> ts;
  for (int t = 0; t < writers; ++t) {
    ts.emplace_back([&e, t] {
      for (int k = 0; k < rounds; ++k) {
        const std::string piece = pattern(block, static_cast<uint8_t>(t * 13 + k));
        EXPECT_EQ(e.write(piece.data(), block, static_cast<uint64_t>(t * rounds + k) * block),
                  static_cast<ssize_t>(block));
      }
    });
  }
  for (auto& t : ts)
    t.join();
  EXPECT_EQ(lc.requests, uint64_t{writers} * rounds);
  EXPECT_EQ(lc.lost_wakeups, 0u);
  EXPECT_GT(lc.woken, 0u) << "the lcore never slept: the test shows nothing";
  for (int t = 0; t < writers; ++t) {
    for (int k = 0; k < rounds; ++k) {
      const std::string piece = pattern(block, static_cast<uint8_t>(t * 13 + k));
      ASSERT_EQ(std::memcmp(lc.image().data() + static_cast<uint64_t>(t * rounds + k) * block,
                            piece.data(), block),
                0)
          << "writer " << t << " round " << k;
    }
  }
}

TEST(fuse_export, close_down_turns_requests_away) {
  fuse_export e("db", 2);
  e.publish(volume_bytes, block, zero_chunk);
  e.close_down();
  char buf[4096];
  EXPECT_EQ(e.write(buf, sizeof buf, 0), -ESHUTDOWN);
  EXPECT_EQ(e.flush(), -ESHUTDOWN);
  EXPECT_EQ(e.in_flight(), 0u);
}

}  // namespace
}  // namespace tandem::dp::frontend
