// SPDX-License-Identifier: Apache-2.0
// The RAM backend: the crash model (unflushed writes lost, flushed and FUA kept, seeded partial
// persistence), fault injection, shuffled completions and options.
#include "dataplane/backend/mem_backend.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/backend/targets.h"

namespace tandem::dp::backend {
namespace {

using test::aligned_buffer;
using test::drain;
using test::run_one;

mem_options small(unsigned qd = 32) {
  mem_options o;
  o.size = 1 << 20;
  o.queue_depth = qd;
  return o;
}

// Writes `len` bytes of `value` at `offset`.
int64_t fill(mem_backend& b, uint64_t offset, uint64_t len, uint8_t value, uint8_t flags = 0) {
  auto buf = aligned_buffer(len);
  std::memset(buf.get(), value, len);
  return run_one(b, request::write(offset, buf.get(), len, offset, flags));
}

// Whether every byte of [offset, offset+len) reads back as `value`.
bool reads_as(mem_backend& b, uint64_t offset, uint64_t len, uint8_t value) {
  auto buf = aligned_buffer(len);
  if (run_one(b, request::read(offset, buf.get(), len, 0)) != static_cast<int64_t>(len)) {
    return false;
  }
  return std::all_of(buf.get(), buf.get() + len, [&](uint8_t c) { return c == value; });
}

TEST(mem_backend, crash_forgets_unflushed_writes) {
  mem_backend b(small());
  ASSERT_EQ(fill(b, 0, 8192, 0x11), 8192);
  EXPECT_EQ(b.dirty_blocks(), 16U);
  EXPECT_TRUE(reads_as(b, 0, 8192, 0x11));
  b.crash();
  EXPECT_TRUE(reads_as(b, 0, 8192, 0x00));
  EXPECT_EQ(b.dirty_blocks(), 0U);
}

TEST(mem_backend, flushed_writes_survive_a_crash) {
  mem_backend b(small());
  ASSERT_EQ(fill(b, 0, 8192, 0x22), 8192);
  ASSERT_EQ(run_one(b, request::flush(1)), 0);
  EXPECT_EQ(b.dirty_blocks(), 0U);
  // Overwritten after the flush and not flushed again: the flushed version comes back.
  ASSERT_EQ(fill(b, 4096, 4096, 0x33), 4096);
  b.crash();
  EXPECT_TRUE(reads_as(b, 0, 8192, 0x22));
}

TEST(mem_backend, fua_writes_survive_a_crash) {
  mem_backend b(small());
  ASSERT_EQ(fill(b, 0, 4096, 0x44), 4096);              // plain: lost
  ASSERT_EQ(fill(b, 4096, 4096, 0x55, req_fua), 4096);  // FUA: kept without a flush
  EXPECT_EQ(b.dirty_blocks(), 8U);
  // FUA over a dirty block makes it clean: both images agree there now.
  ASSERT_EQ(fill(b, 0, 512, 0x66, req_fua), 512);
  EXPECT_EQ(b.dirty_blocks(), 7U);
  b.crash();
  EXPECT_TRUE(reads_as(b, 0, 512, 0x66));
  EXPECT_TRUE(reads_as(b, 512, 3584, 0x00));
  EXPECT_TRUE(reads_as(b, 4096, 4096, 0x55));
}

TEST(mem_backend, unflushed_discards_and_zeroes_come_undone) {
  mem_backend b(small());
  ASSERT_EQ(fill(b, 0, 16384, 0x77), 16384);
  ASSERT_EQ(run_one(b, request::flush(1)), 0);
  ASSERT_EQ(run_one(b, request::discard(0, 4096, 2)), 4096);
  ASSERT_EQ(run_one(b, request::write_zeroes(8192, 4096, 3)), 4096);
  EXPECT_TRUE(reads_as(b, 0, 4096, 0));
  EXPECT_TRUE(reads_as(b, 8192, 4096, 0));
  b.crash();
  EXPECT_TRUE(reads_as(b, 0, 16384, 0x77));
  // Flushed, they stay.
  ASSERT_EQ(run_one(b, request::discard(0, 4096, 4)), 4096);
  ASSERT_EQ(run_one(b, request::flush(5)), 0);
  b.crash();
  EXPECT_TRUE(reads_as(b, 0, 4096, 0));
  EXPECT_TRUE(reads_as(b, 4096, 12288, 0x77));
}

TEST(mem_backend, crash_keeps_a_seeded_subset_of_whole_blocks) {
  constexpr size_t block = 512;
  constexpr size_t blocks = 256;
  mem_backend b(small());
  ASSERT_EQ(fill(b, 0, blocks * block, 0x88), blocks * block);
  b.crash(0.5, 7);
  const auto data = b.data();
  unsigned kept = 0;
  for (size_t blk = 0; blk < blocks; ++blk) {
    const uint8_t first = data[blk * block];
    ASSERT_TRUE(first == 0x88 || first == 0) << "block " << blk;
    // Whole blocks: never torn.
    ASSERT_TRUE(std::all_of(data.subspan(blk * block, block).begin(),
                            data.subspan(blk * block, block).end(),
                            [&](uint8_t c) { return c == first; }))
        << "block " << blk;
    if (first == 0x88) ++kept;
  }
  EXPECT_GT(kept, 64U);
  EXPECT_LT(kept, 192U);
  // The durable image now holds exactly what survived.
  EXPECT_TRUE(std::equal(b.data().begin(), b.data().end(), b.durable().begin()));

  // The same seed, the same survivors.
  mem_backend again(small());
  ASSERT_EQ(fill(again, 0, blocks * block, 0x88), blocks * block);
  again.crash(0.5, 7);
  EXPECT_TRUE(std::equal(again.data().begin(), again.data().end(), b.data().begin()));

  // keep_probability 1: a crash right after the writes loses nothing.
  mem_backend all(small());
  ASSERT_EQ(fill(all, 0, 4096, 0x99), 4096);
  all.crash(1.0);
  EXPECT_TRUE(reads_as(all, 0, 4096, 0x99));
}

TEST(mem_backend, crash_drops_completions_not_yet_polled) {
  mem_backend b(small());
  auto buf = aligned_buffer(4096);
  const std::vector<request> reqs = {request::write(0, buf.get(), 4096, 1),
                                     request::write(4096, buf.get(), 4096, 2)};
  ASSERT_EQ(b.submit(reqs), 2);
  EXPECT_EQ(b.in_flight(), 2U);
  b.crash();
  EXPECT_EQ(b.in_flight(), 0U);
  EXPECT_EQ(b.lost_completions(), 2U);
  completion c[4];
  EXPECT_EQ(b.poll(c), 0);
}

TEST(mem_backend, fail_nth_fails_exactly_that_request_and_changes_nothing) {
  mem_backend b(small());
  b.fail_nth(3, EIO);
  EXPECT_EQ(fill(b, 0, 512, 0x01), 512);
  EXPECT_EQ(fill(b, 512, 512, 0x02), 512);
  EXPECT_EQ(fill(b, 1024, 512, 0x03), -EIO);
  EXPECT_EQ(fill(b, 1536, 512, 0x04), 512);
  EXPECT_TRUE(reads_as(b, 1024, 512, 0x00));
  EXPECT_TRUE(reads_as(b, 1536, 512, 0x04));
  EXPECT_EQ(b.stats().errors, 1U);

  b.fail_all(ENOSPC);
  EXPECT_EQ(fill(b, 0, 512, 0x05), -ENOSPC);
  EXPECT_EQ(run_one(b, request::flush(1)), -ENOSPC);
  b.fail_all(0);
  EXPECT_TRUE(reads_as(b, 0, 512, 0x01));
  // Validation comes first: a bad request is -EINVAL even on a dead disk.
  b.fail_all(EIO);
  EXPECT_EQ(run_one(b, request::flush(1)), -EIO);
  auto buf = aligned_buffer(512);
  EXPECT_EQ(run_one(b, request::write(1, buf.get(), 512, 2)), -EINVAL);
}

TEST(mem_backend, shuffled_completions_are_all_there_in_another_order) {
  mem_options o = small(64);
  o.shuffle_seed = 12345;
  mem_backend b(o);
  auto buf = aligned_buffer(512);
  std::vector<request> reqs;
  for (uint64_t i = 0; i < 64; ++i)
    reqs.push_back(request::write(i * 512, buf.get(), 512, i));
  ASSERT_EQ(b.submit(reqs), 64);
  EXPECT_EQ(b.wait(64, std::chrono::seconds(0)), 64);
  const auto done = drain(b, 64);
  std::vector<uint64_t> order;
  order.reserve(done.size());
  for (const completion& c : done)
    order.push_back(c.cookie);
  std::vector<uint64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (uint64_t i = 0; i < 64; ++i)
    EXPECT_EQ(sorted[i], i);
  EXPECT_FALSE(std::is_sorted(order.begin(), order.end()));
}

TEST(mem_backend, fifo_by_default) {
  mem_backend b(small());
  auto buf = aligned_buffer(512);
  std::vector<request> reqs;
  for (uint64_t i = 0; i < 16; ++i)
    reqs.push_back(request::read(i * 512, buf.get(), 512, i));
  ASSERT_EQ(b.submit(reqs), 16);
  const auto done = drain(b, 16);
  for (uint64_t i = 0; i < 16; ++i)
    EXPECT_EQ(done[i].cookie, i);
}

TEST(mem_backend, options_are_checked) {
  mem_options o = small();
  o.block_size = 1000;
  EXPECT_THROW(mem_backend{o}, std::invalid_argument);
  o = small();
  o.mem_align = 256;
  EXPECT_THROW(mem_backend{o}, std::invalid_argument);
  o = small();
  o.size = 100;
  EXPECT_THROW(mem_backend{o}, std::invalid_argument);
  o = small();
  o.queue_depth = 0;
  EXPECT_THROW(mem_backend{o}, std::invalid_argument);
  o = small();
  o.size = (1 << 20) + 100;
  o.block_size = 4096;
  mem_backend b(o);
  EXPECT_EQ(b.geom().size, 1U << 20);
  EXPECT_EQ(b.geom().mem_align, 4096U);
  EXPECT_EQ(b.name(), "mem");
}

}  // namespace
}  // namespace tandem::dp::backend
