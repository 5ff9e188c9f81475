// SPDX-License-Identifier: Apache-2.0
// The backend contract, one suite for every backend: io_uring on a file, on tmpfs and on a loop
// device, and RAM. Round trips at QD 64, validation, FUA and flush, discard, write_zeroes, queue
// full.
#include "dataplane/backend/backend.h"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/backend/targets.h"

namespace tandem::dp::backend {
namespace {

using test::aligned_buffer;
using test::drain;
using test::kind;
using test::run_one;

constexpr uint64_t volume_size = 64ULL << 20;

class backend_contract : public ::testing::TestWithParam<kind> {
 protected:
  void open(unsigned qd = 128, uint32_t block_size = 0) {
    t_.reset();
    const std::string why = test::open_target(GetParam(), volume_size, qd, t_, block_size);
    if (!why.empty()) GTEST_SKIP() << why;
  }
  void SetUp() override { open(); }

  backend& b() { return *t_.b; }

  // Writes `len` bytes of `data` at `offset` and checks the completion.
  void write(uint64_t offset, const uint8_t* data, uint64_t len, uint8_t flags = 0) {
    auto buf = aligned_buffer(len);
    std::memcpy(buf.get(), data, len);
    ASSERT_EQ(run_one(b(), request::write(offset, buf.get(), len, 1, flags)),
              static_cast<int64_t>(len));
  }
  std::vector<uint8_t> read(uint64_t offset, uint64_t len) {
    auto buf = aligned_buffer(len);
    EXPECT_EQ(run_one(b(), request::read(offset, buf.get(), len, 2)), static_cast<int64_t>(len));
    return {buf.get(), buf.get() + len};
  }

  test::target t_;
};

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t x = rng();
    std::memcpy(v.data() + i, &x, std::min<size_t>(8, n - i));
  }
  return v;
}

bool same(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

bool all_zero(const std::vector<uint8_t>& v) {
  return std::all_of(v.begin(), v.end(), [](uint8_t c) { return c == 0; });
}

TEST_P(backend_contract, geometry) {
  const geometry& g = b().geom();
  EXPECT_EQ(g.size, volume_size);
  EXPECT_TRUE(std::has_single_bit(g.block_size));
  EXPECT_GE(g.block_size, 512U);
  EXPECT_GE(g.mem_align, g.block_size);
  EXPECT_EQ(b().queue_depth(), 128U);
  EXPECT_EQ(b().in_flight(), 0U);
  EXPECT_EQ(g.block_device, GetParam() == kind::loop);
  EXPECT_FALSE(b().name().empty());
}

// Random writes of 1..128 blocks to distinct 64 KiB slots, up to 64 in flight, some from a
// registered pool and some iovec; then everything is read back at QD 64 and compared with a
// model of the volume.
TEST_P(backend_contract, round_trip_random_data_at_qd64) {
  constexpr unsigned qd = 64;
  constexpr uint64_t slot_bytes = 64 << 10;
  constexpr uint64_t slots = volume_size / slot_bytes;
  const uint32_t bs = b().geom().block_size;
  std::vector<uint8_t> model(volume_size, 0);
  std::mt19937_64 rng(42);

  // Each in-flight request owns one 64 KiB piece of a registered pool.
  auto pool = aligned_buffer(qd * slot_bytes);
  const iovec region{pool.get(), qd * slot_bytes};
  ASSERT_EQ(b().register_buffers({&region, 1}), 0);
  auto loose = aligned_buffer(qd * slot_bytes);  // not registered

  struct io {
    uint64_t offset;
    uint64_t len;
    uint8_t* buf;
    iovec iov[3];
  };
  std::vector<io> ios(qd);
  std::vector<unsigned> free_tags;
  for (unsigned i = 0; i < qd; ++i)
    free_tags.push_back(i);
  std::set<uint64_t> busy_slots;

  auto pick_request = [&](unsigned tag, bool is_write) {
    io& x = ios[tag];
    uint64_t slot = 0;
    do {
      slot = rng() % slots;
    } while (busy_slots.count(slot) != 0);
    busy_slots.insert(slot);
    const uint64_t blocks_in_slot = slot_bytes / bs;
    x.len = (1 + rng() % blocks_in_slot) * bs;
    x.offset = slot * slot_bytes + (rng() % (blocks_in_slot - x.len / bs + 1)) * bs;
    x.buf = (tag % 2 == 0 ? pool.get() : loose.get()) + tag * slot_bytes;
    if (is_write) {
      const auto data = random_bytes(x.len, rng());
      std::memcpy(x.buf, data.data(), x.len);
      std::memcpy(model.data() + x.offset, data.data(), x.len);
    }
    const uint8_t flags = is_write && rng() % 8 == 0 ? req_fua : 0;
    if (tag % 3 == 1 && x.len >= 2ULL * bs) {
      // Two or three segments, split at block boundaries.
      const uint64_t a = (1 + rng() % (x.len / bs - 1)) * bs;
      x.iov[0] = {x.buf, a};
      x.iov[1] = {x.buf + a, x.len - a};
      return is_write ? request::writev(x.offset, x.iov, 2, x.len, tag, flags)
                      : request::readv(x.offset, x.iov, 2, x.len, tag);
    }
    return is_write ? request::write(x.offset, x.buf, x.len, tag, flags)
                    : request::read(x.offset, x.buf, x.len, tag);
  };

  auto run_phase = [&](bool is_write, unsigned total) {
    unsigned submitted = 0;
    unsigned completed = 0;
    completion done[qd];
    while (completed < total) {
      std::vector<request> burst;
      while (submitted + burst.size() < total && !free_tags.empty()) {
        const unsigned tag = free_tags.back();
        free_tags.pop_back();
        burst.push_back(pick_request(tag, is_write));
      }
      if (!burst.empty()) {
        ASSERT_EQ(b().submit(burst), static_cast<int>(burst.size()));
        submitted += burst.size();
      }
      ASSERT_LE(b().in_flight(), qd);
      int got = b().poll(done);
      if (got == 0) {
        ASSERT_GE(b().wait(1, std::chrono::seconds(10)), 0);
        got = b().poll(done);
      }
      ASSERT_GE(got, 0);
      for (int i = 0; i < got; ++i) {
        ASSERT_LT(done[i].cookie, qd);
        const io& x = ios[done[i].cookie];
        ASSERT_EQ(done[i].result, static_cast<int64_t>(x.len)) << "cookie " << done[i].cookie;
        if (!is_write) {
          ASSERT_EQ(0, std::memcmp(x.buf, model.data() + x.offset, x.len))
              << "read at " << x.offset << " len " << x.len;
        }
        busy_slots.erase(x.offset / slot_bytes);
        free_tags.push_back(static_cast<unsigned>(done[i].cookie));
        ++completed;
      }
    }
  };
  run_phase(true, 600);
  ASSERT_EQ(run_one(b(), request::flush(99)), 0);
  run_phase(false, 600);

  // And the whole volume, 1 MiB at a time.
  auto chunk = aligned_buffer(1 << 20);
  for (uint64_t off = 0; off < volume_size; off += 1 << 20) {
    ASSERT_EQ(run_one(b(), request::read(off, chunk.get(), 1 << 20, 7)), 1 << 20);
    ASSERT_EQ(0, std::memcmp(chunk.get(), model.data() + off, 1 << 20)) << "at " << off;
  }
  EXPECT_GT(b().stats().fixed_ios, 0U);
  EXPECT_LT(b().stats().fixed_ios, b().stats().reads + b().stats().writes);
  EXPECT_GT(b().stats().fua_writes, 0U);
  EXPECT_EQ(b().stats().errors, 0U);
  EXPECT_EQ(b().in_flight(), 0U);
}

TEST_P(backend_contract, iovec_segments_split_anywhere_on_block_boundaries) {
  const auto data = random_bytes(12288, 7);
  auto a = aligned_buffer(4096);
  auto c = aligned_buffer(8192);
  std::memcpy(a.get(), data.data(), 4096);
  std::memcpy(c.get(), data.data() + 4096, 8192);
  const iovec w[2] = {{a.get(), 4096}, {c.get(), 8192}};
  ASSERT_EQ(run_one(b(), request::writev(1 << 20, w, 2, 12288, 5)), 12288);
  // Read back through three segments of other sizes.
  auto r = aligned_buffer(16384);
  const iovec rv[3] = {{r.get(), 512}, {r.get() + 4096, 10240}, {r.get() + 14336, 1536}};
  ASSERT_EQ(run_one(b(), request::readv(1 << 20, rv, 3, 12288, 6)), 12288);
  EXPECT_EQ(0, std::memcmp(r.get(), data.data(), 512));
  EXPECT_EQ(0, std::memcmp(r.get() + 4096, data.data() + 512, 10240));
  EXPECT_EQ(0, std::memcmp(r.get() + 14336, data.data() + 10752, 1536));
}

TEST_P(backend_contract, refuses_misaligned_and_out_of_range_without_touching_data) {
  const uint64_t size = b().geom().size;
  const auto pattern = random_bytes(1 << 20, 3);
  write(0, pattern.data(), pattern.size());
  write(size - (1 << 20), pattern.data(), pattern.size());

  auto buf = aligned_buffer(2 << 20);
  std::memset(buf.get(), 0xee, 2 << 20);
  uint8_t* p = buf.get();
  const iovec bad_len[2] = {{p, 4096}, {p + 4096, 100}};
  const iovec ok_iov[2] = {{p, 4096}, {p + 4096, 4096}};
  const iovec odd_base[1] = {{p + 1, 4096}};
  std::vector<iovec> too_many(max_iovecs + 1, iovec{p, 512});
  const uint64_t huge = max_rw_bytes + 512;
  const std::vector<request> bad = {
      request::write(100, p, 4096, 1),                                         // misaligned offset
      request::write(0, p, 100, 2),                                            // misaligned length
      request::write(0, p + 1, 4096, 3),                                       // misaligned buffer
      request::write(size, p, 512, 4),                                         // starts at the end
      request::write(size - 512, p, 1024, 5),                                  // runs past the end
      request::write(std::numeric_limits<uint64_t>::max() - 511, p, 1024, 6),  // wraps around
      request::write(0, p, 0, 7),                                              // empty
      request::write(0, nullptr, 4096, 8),                                     // no buffer
      request::read(0, p, huge, 9),               // longer than the volume
      request::writev(0, bad_len, 2, 4196, 10),   // segment not whole blocks
      request::writev(0, ok_iov, 2, 4096, 11),    // sum differs from length
      request::writev(0, odd_base, 1, 4096, 12),  // misaligned segment
      request::writev(0, too_many.data(), static_cast<uint16_t>(too_many.size()),
                      512 * too_many.size(), 13),                  // too many segments
      request{op::flush, 0, 0, 0, 4096, nullptr, nullptr, 14},     // flush with a length
      request{op::read, req_fua, 0, 0, 4096, p, nullptr, 15},      // FUA on a read
      request{op::write, 0x80, 0, 0, 4096, p, nullptr, 16},        // unknown flag
      request{op::discard, 0, 0, 0, 4096, p, nullptr, 17},         // discard with a buffer
      request::discard(size - 512, 4096, 18),                      // discard past the end
      request::write_zeroes(512, 100, 19),                         // misaligned zeroes
      request{static_cast<op>(9), 0, 0, 0, 4096, p, nullptr, 20},  // no such op
  };
  ASSERT_EQ(b().submit(bad), static_cast<int>(bad.size()));
  const auto done = drain(b(), bad.size());
  std::set<uint64_t> cookies;
  for (const completion& c : done) {
    EXPECT_EQ(c.result, -EINVAL) << "cookie " << c.cookie;
    cookies.insert(c.cookie);
  }
  EXPECT_EQ(cookies.size(), bad.size());
  EXPECT_EQ(b().stats().invalid, bad.size());
  EXPECT_EQ(b().stats().writes, 2U);  // only the two good ones
  EXPECT_TRUE(same(read(0, 1 << 20), pattern));
  EXPECT_TRUE(same(read(size - (1 << 20), 1 << 20), pattern));
  // The last block is still readable and writable.
  EXPECT_EQ(run_one(b(), request::write(size - 512, p, 512, 21)), 512);
}

TEST_P(backend_contract, fua_write_and_flush_complete) {
  const auto data = random_bytes(65536, 11);
  write(4096, data.data(), data.size(), req_fua);
  EXPECT_EQ(run_one(b(), request::flush(3)), 0);
  write(131072, data.data(), data.size());
  EXPECT_EQ(run_one(b(), request::flush(4)), 0);
  EXPECT_TRUE(same(read(4096, 65536), data));
  EXPECT_TRUE(same(read(131072, 65536), data));
  EXPECT_EQ(b().stats().fua_writes, 1U);
  EXPECT_EQ(b().stats().flushes, 2U);
  EXPECT_EQ(b().stats().writes, 2U);
}

TEST_P(backend_contract, discard_then_read_returns_zeroes) {
  const auto data = random_bytes(4 << 20, 5);
  write(0, data.data(), data.size());
  // A 64 KiB-aligned range, one that is only block aligned, and one of a single block.
  const std::pair<uint64_t, uint64_t> ranges[] = {
      {1 << 20, 1 << 20}, {(2 << 20) + 512, 4096 + 1024}, {3 << 20, 512}};
  for (const auto& [off, len] : ranges) {
    EXPECT_EQ(run_one(b(), request::discard(off, len, 7)), static_cast<int64_t>(len));
  }
  const auto back = read(0, 4 << 20);
  std::vector<uint8_t> want = data;
  for (const auto& [off, len] : ranges)
    std::fill_n(want.data() + off, len, 0);
  EXPECT_TRUE(same(back, want));
  EXPECT_EQ(b().stats().discards, 3U);
  // Discarding what is already zero (never written) works too.
  EXPECT_EQ(run_one(b(), request::discard(32 << 20, 8 << 20, 8)), 8 << 20);
  EXPECT_TRUE(all_zero(read(32 << 20, 1 << 20)));
}

TEST_P(backend_contract, write_zeroes_then_read_returns_zeroes) {
  const auto data = random_bytes(8 << 20, 9);
  write(0, data.data(), data.size());
  // Larger than the 1 MiB zero buffer of the write fallback, and not a multiple of it.
  const uint64_t off = (1 << 20) + 512;
  const uint64_t len = (3 << 20) + 1536;
  EXPECT_EQ(run_one(b(), request::write_zeroes(off, len, 1)), static_cast<int64_t>(len));
  EXPECT_EQ(run_one(b(), request::write_zeroes(6 << 20, 512, 2)), 512);
  std::vector<uint8_t> want = data;
  std::fill_n(want.data() + off, len, 0);
  std::fill_n(want.data() + (6 << 20), 512, 0);
  EXPECT_TRUE(same(read(0, 8 << 20), want));
  EXPECT_EQ(b().stats().write_zeroes, 2U);
  EXPECT_EQ(b().stats().errors, 0U);
}

TEST_P(backend_contract, queue_full_takes_what_fits_and_then_says_eagain) {
  open(8);
  if (IsSkipped()) return;
  auto buf = aligned_buffer(4096);
  std::vector<request> reqs;
  for (uint64_t i = 0; i < 12; ++i)
    reqs.push_back(request::write(i * 4096, buf.get(), 4096, i));
  ASSERT_EQ(b().submit(reqs), 8);
  EXPECT_EQ(b().in_flight(), 8U);
  EXPECT_EQ(b().submit(std::span(reqs).subspan(8)), -EAGAIN);
  // An invalid request needs a slot too.
  const request bad = request::write(100, buf.get(), 4096, 77);
  EXPECT_EQ(b().submit({&bad, 1}), -EAGAIN);
  EXPECT_GE(b().stats().queue_full, 2U);
  EXPECT_EQ(b().submit({}), 0);

  // poll() hands out no more than it is given room for.
  completion two[2];
  size_t got = 0;
  while (got == 0) {
    ASSERT_GE(b().wait(2, std::chrono::seconds(5)), 0);
    got = static_cast<size_t>(b().poll(two));
  }
  ASSERT_LE(got, 2U);
  auto rest = drain(b(), 8 - got);
  EXPECT_EQ(got + rest.size(), 8U);
  EXPECT_EQ(b().in_flight(), 0U);
  ASSERT_EQ(b().submit(std::span(reqs).subspan(8)), 4);
  ASSERT_EQ(b().submit({&bad, 1}), 1);
  const auto last = drain(b(), 5);
  std::map<uint64_t, int64_t> by_cookie;
  for (const completion& c : last)
    by_cookie[c.cookie] = c.result;
  EXPECT_EQ(by_cookie.size(), 5U);
  EXPECT_EQ(by_cookie[77], -EINVAL);
  for (uint64_t i = 8; i < 12; ++i)
    EXPECT_EQ(by_cookie[i], 4096);
}

TEST_P(backend_contract, a_larger_block_size_is_enforced) {
  open(16, 4096);
  if (IsSkipped()) return;
  EXPECT_EQ(b().geom().block_size, 4096U);
  EXPECT_GE(b().geom().mem_align, 4096U);
  auto buf = aligned_buffer(8192);
  EXPECT_EQ(run_one(b(), request::write(512, buf.get(), 4096, 1)), -EINVAL);
  EXPECT_EQ(run_one(b(), request::write(4096, buf.get(), 512, 2)), -EINVAL);
  EXPECT_EQ(run_one(b(), request::write(4096, buf.get(), 8192, 3)), 8192);
}

TEST_P(backend_contract, wait_with_nothing_in_flight_returns_at_once) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(b().wait(1, std::chrono::seconds(5)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  completion c[4];
  EXPECT_EQ(b().poll(c), 0);
  EXPECT_EQ(b().poll({}), 0);
}

TEST_P(backend_contract, register_buffers_needs_an_idle_queue) {
  auto pool = aligned_buffer(1 << 20);
  const iovec region{pool.get(), 1 << 20};
  ASSERT_EQ(b().register_buffers({&region, 1}), 0);
  ASSERT_EQ(b().submit(std::vector{request::write(0, pool.get(), 4096, 1)}), 1);
  EXPECT_EQ(b().register_buffers({&region, 1}), -EBUSY);
  drain(b(), 1);
  EXPECT_EQ(b().stats().fixed_ios, 1U);
  // Unregistered: the same buffer still works, without the fixed path.
  ASSERT_EQ(b().register_buffers({}), 0);
  EXPECT_EQ(run_one(b(), request::write(0, pool.get(), 4096, 2)), 4096);
  EXPECT_EQ(b().stats().fixed_ios, 1U);
  const iovec empty{nullptr, 0};
  EXPECT_EQ(b().register_buffers({&empty, 1}), -EINVAL);
}

std::string param_name(const ::testing::TestParamInfo<kind>& info) {
  return test::kind_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(all, backend_contract,
                         ::testing::Values(kind::mem, kind::file, kind::tmpfs, kind::loop),
                         param_name);

TEST(backend_validate, op_names) {
  EXPECT_STREQ(op_name(op::read), "read");
  EXPECT_STREQ(op_name(op::write_zeroes), "write_zeroes");
  EXPECT_STREQ(op_name(static_cast<op>(42)), "unknown");
}

}  // namespace
}  // namespace tandem::dp::backend
