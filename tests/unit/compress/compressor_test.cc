// SPDX-License-Identifier: Apache-2.0
// block_compressor / block_decompressor (dataplane/compress/compressor.h): round trips at every
// level, incompressible data, short buffers, corrupt and truncated streams, bounds of reads and
// writes, and no allocation on the hot path.
#include "dataplane/compress/compressor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

// Every operator new in this binary counts, so a test can assert that compress() and
// decompress() allocate nothing. malloc/free underneath keep ASan's bookkeeping intact.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}

namespace tandem::dp {
namespace {

constexpr size_t kib = 1024;
constexpr uint8_t guard_byte = 0xA5;
constexpr size_t guard_size = 256;

std::vector<uint8_t> zeros(size_t n) {
  std::vector<uint8_t> v(n);  // value-initialised: zeros
  return v;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v)
    b = static_cast<uint8_t>(rng());
  return v;
}

// Log- or text-like data: words from a small vocabulary in a seeded random order, with numbers,
// so matches are short and scattered as in real file contents (not one repeated period).
std::vector<uint8_t> text_like(size_t n, uint32_t seed) {
  static constexpr std::string_view words[] = {
      "the",     "volume",  "mirror",   "replica", "write", "block",  "sector",  "resync",
      "primary", "peer",    "bitmap",   "journal", "node",  "ack",    "latency", "commit",
      "epoch",   "barrier", "flush",    "queue",   "disk",  "update", "state",   "degraded",
      "online",  "offline", "transfer", "error",   "ok",    "retry",  "timeout", "connected"};
  std::mt19937 rng(seed);
  std::vector<uint8_t> v;
  v.reserve(n + 32);
  while (v.size() < n) {
    const std::string_view w = words[rng() % std::size(words)];
    v.insert(v.end(), w.begin(), w.end());
    if (rng() % 8 == 0) {
      const std::string num = " " + std::to_string(rng() % 100000);
      v.insert(v.end(), num.begin(), num.end());
    }
    v.push_back(rng() % 12 == 0 ? '\n' : ' ');
  }
  v.resize(n);
  return v;
}

// A buffer whose first `n` bytes are handed out and whose guard_size bytes after them must
// never change.
class guarded {
 public:
  explicit guarded(size_t n) : n_(n), buf_(n + guard_size, guard_byte) {}
  std::span<uint8_t> span() { return {buf_.data(), n_}; }
  [[nodiscard]] std::span<const uint8_t> data(size_t len) const { return {buf_.data(), len}; }
  [[nodiscard]] bool guard_intact() const {
    return std::all_of(buf_.begin() + static_cast<ptrdiff_t>(n_), buf_.end(),
                       [](uint8_t b) { return b == guard_byte; });
  }

 private:
  size_t n_;
  std::vector<uint8_t> buf_;
};

// Bytes placed so that they end exactly where an inaccessible page begins: a read past their
// end is a SIGSEGV. ISA-L is not built with ASan, so this is how reads inside it are checked.
class page_tail {
 public:
  explicit page_tail(size_t capacity) {
    const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    readable_ = (capacity + page - 1) / page * page;
    len_ = readable_ + page;
    void* p = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<uint8_t*>(p);
    if (mprotect(base_ + readable_, page, PROT_NONE) != 0)
      throw std::runtime_error("mprotect failed");
  }
  ~page_tail() { munmap(base_, len_); }
  page_tail(const page_tail&) = delete;
  page_tail& operator=(const page_tail&) = delete;

  std::span<const uint8_t> place(std::span<const uint8_t> bytes) {
    uint8_t* dst = base_ + readable_ - bytes.size();
    std::copy(bytes.begin(), bytes.end(), dst);
    return {dst, bytes.size()};
  }

 private:
  uint8_t* base_ = nullptr;
  size_t readable_ = 0;
  size_t len_ = 0;
};

// Compresses `in` at `level` with out = compress_bound; returns the stream (empty when 0).
std::vector<uint8_t> compressed(std::span<const uint8_t> in, int level) {
  block_compressor c(level);
  std::vector<uint8_t> out(block_compressor::compress_bound(in.size()));
  out.resize(c.compress(in, out));
  return out;
}

TEST(compression_kind, names_round_trip) {
  EXPECT_EQ(static_cast<int>(compression::none), 0);
  EXPECT_EQ(static_cast<int>(compression::igzip), 1);
  EXPECT_EQ(to_string(compression::none), "none");
  EXPECT_EQ(to_string(compression::igzip), "igzip");
  EXPECT_EQ(to_string(static_cast<compression>(7)), "unknown");
  for (const compression c : {compression::none, compression::igzip})
    EXPECT_EQ(parse_compression(to_string(c)), c);
  for (const std::string_view bad : {"", "IGZIP", "zlib", "gzip", "igzip ", "none\n", "unknown"})
    EXPECT_EQ(parse_compression(bad), std::nullopt) << bad;
}

TEST(block_compressor, level_checked_in_constructor_only) {
  EXPECT_THROW(block_compressor(-1), std::invalid_argument);
  EXPECT_THROW(block_compressor(4), std::invalid_argument);
  EXPECT_THROW(block_compressor(9), std::invalid_argument);
  for (int level = block_compressor::min_level; level <= block_compressor::max_level; ++level)
    EXPECT_EQ(block_compressor(level).level(), level);
  EXPECT_EQ(block_compressor().level(), 1);
}

TEST(block_compressor, bound_covers_stored_blocks) {
  EXPECT_EQ(block_compressor::compress_bound(0), 5u + 64u);
  EXPECT_EQ(block_compressor::compress_bound(1), 1u + 5u + 64u);
  EXPECT_EQ(block_compressor::compress_bound(65535), 65535u + 5u + 64u);
  EXPECT_EQ(block_compressor::compress_bound(65536), 65536u + 10u + 64u);
  EXPECT_EQ(block_compressor::compress_bound(1024 * kib), 1024 * kib + size_t{17} * 5 + 64);
}

TEST(block_compressor, empty_input_is_not_compressed) {
  block_compressor c;
  std::vector<uint8_t> out(64);
  EXPECT_EQ(c.compress({}, out), 0u);
}

class every_level : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(levels, every_level, ::testing::Range(0, 4),
                         [](const auto& p) { return "level" + std::to_string(p.param); });

TEST_P(every_level, compressible_round_trips) {
  block_compressor comp(GetParam());
  block_decompressor decomp;
  for (const size_t n : {4 * kib, 64 * kib, 1024 * kib}) {
    for (const bool text : {false, true}) {
      SCOPED_TRACE(testing::Message() << n << (text ? " text" : " zeros"));
      const std::vector<uint8_t> in = text ? text_like(n, static_cast<uint32_t>(n)) : zeros(n);
      guarded out(block_compressor::compress_bound(n));
      const size_t c = comp.compress(in, out.span());
      ASSERT_GT(c, 0u);
      ASSERT_LT(c, n);
      EXPECT_TRUE(out.guard_intact());

      guarded back(n);
      ASSERT_EQ(decomp.decompress_exact(out.data(c), back.span()), static_cast<long>(n));
      EXPECT_TRUE(std::equal(in.begin(), in.end(), back.span().begin()));
      EXPECT_TRUE(back.guard_intact());

      // A larger buffer than needed: decompress reports the size.
      std::vector<uint8_t> roomy(n + 100, 0xEE);
      ASSERT_EQ(decomp.decompress(out.data(c), roomy), static_cast<long>(n));
      EXPECT_TRUE(std::equal(in.begin(), in.end(), roomy.begin()));
      EXPECT_EQ(roomy[n], 0xEE);
    }
  }
}

TEST_P(every_level, ratio_on_compressible_data_is_below_half) {
  block_compressor comp(GetParam());
  for (const size_t n : {4 * kib, 64 * kib, 1024 * kib}) {
    const std::vector<uint8_t> in = text_like(n, 7);
    std::vector<uint8_t> out(block_compressor::compress_bound(n));
    const size_t c = comp.compress(in, out);
    ASSERT_GT(c, 0u) << n;
    EXPECT_LT(static_cast<double>(c) / static_cast<double>(n), 0.5) << n << " -> " << c;
    // All zeros shrink to almost nothing (ISA-L's run-length path).
    EXPECT_LT(comp.compress(zeros(n), out), n / 100) << n;
  }
}

TEST_P(every_level, random_data_is_not_compressed) {
  block_compressor comp(GetParam());
  for (const size_t n : {4 * kib, 64 * kib, 1024 * kib}) {
    const std::vector<uint8_t> in = random_bytes(n, static_cast<uint32_t>(n) + 1);
    guarded out(block_compressor::compress_bound(n));
    EXPECT_EQ(comp.compress(in, out.span()), 0u) << n;
    EXPECT_TRUE(out.guard_intact());
  }
  // Tiny inputs cannot shrink either: a DEFLATE stream has at least a few bytes of overhead.
  std::vector<uint8_t> out(block_compressor::compress_bound(8));
  EXPECT_EQ(comp.compress(random_bytes(1, 3), out), 0u);
  EXPECT_EQ(comp.compress(random_bytes(8, 3), out), 0u);
}

TEST_P(every_level, out_too_small_gives_zero_and_no_write_past_it) {
  block_compressor comp(GetParam());
  block_decompressor decomp;
  const std::vector<uint8_t> in = text_like(64 * kib, 11);
  const size_t c = compressed(in, GetParam()).size();
  ASSERT_GT(c, 0u);
  for (const size_t room : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{100}, c / 2}) {
    guarded out(room);
    EXPECT_EQ(comp.compress(in, out.span()), 0u) << room;
    EXPECT_TRUE(out.guard_intact()) << room;
  }
  // in.size() bytes of room suffice for data that compresses this well.
  guarded out(in.size());
  EXPECT_EQ(comp.compress(in, out.span()), c);
  EXPECT_TRUE(out.guard_intact());

  // Around the stream's size the result depends on the room: ISA-L takes its shortcut for runs
  // of zero bytes only when it has room for it, and at levels 1 and 2 the regular path then
  // comes out 3 bytes shorter. Whatever comes back is 0 or a stream within the room that
  // decodes to the input.
  const std::vector<uint8_t> z = zeros(64 * kib);
  const size_t cz = compressed(z, GetParam()).size();
  ASSERT_GT(cz, 0u);
  for (size_t room = cz + 32; room-- > 0;) {
    guarded tight(room);
    const size_t r = comp.compress(z, tight.span());
    EXPECT_TRUE(tight.guard_intact()) << room;
    EXPECT_LE(r, room);
    if (room >= cz + 16) {
      // ISA-L wants a few bytes beyond the stream before it finishes one (up to 14 seen).
      EXPECT_GT(r, 0u) << room;
    }
    if (room < 8) {
      EXPECT_EQ(r, 0u) << room;
    }
    if (r == 0) continue;
    std::vector<uint8_t> back(z.size(), 1);
    EXPECT_EQ(decomp.decompress_exact(tight.data(r), back), static_cast<long>(z.size())) << room;
    EXPECT_EQ(back, z) << room;
  }
}

TEST_P(every_level, output_is_deterministic_per_object) {
  block_compressor comp(GetParam());
  const std::vector<uint8_t> a = text_like(64 * kib, 21);
  const std::vector<uint8_t> b = text_like(64 * kib, 22);
  std::vector<uint8_t> first(block_compressor::compress_bound(a.size()));
  std::vector<uint8_t> other(first.size());
  std::vector<uint8_t> again(first.size());
  const size_t c1 = comp.compress(a, first);
  ASSERT_GT(comp.compress(b, other), 0u);  // state left behind by another block must not matter
  const size_t c2 = comp.compress(a, again);
  ASSERT_EQ(c1, c2);
  EXPECT_TRUE(std::equal(first.begin(), first.begin() + static_cast<ptrdiff_t>(c1), again.begin()));
}

TEST_P(every_level, truncated_streams_are_bad_messages) {
  block_decompressor decomp;
  page_tail tail(64 * kib);
  for (const bool text : {false, true}) {
    const std::vector<uint8_t> in = text ? text_like(4 * kib, 5) : zeros(4 * kib);
    const std::vector<uint8_t> z = compressed(in, GetParam());
    ASSERT_FALSE(z.empty());
    guarded out(in.size());
    for (size_t t = 0; t < z.size(); ++t) {
      // The prefix ends where the unreadable page begins: reading past it crashes the test.
      const std::span<const uint8_t> prefix = tail.place({z.data(), t});
      ASSERT_EQ(decomp.decompress(prefix, out.span()), -EBADMSG) << "prefix " << t;
      ASSERT_EQ(decomp.decompress_exact(prefix, out.span()), -EBADMSG) << "prefix " << t;
    }
    EXPECT_TRUE(out.guard_intact());
    // And the whole stream at the page's end decodes.
    EXPECT_EQ(decomp.decompress_exact(tail.place(z), out.span()), static_cast<long>(in.size()));
  }
}

TEST(block_decompressor, bytes_after_the_stream_are_bad_messages) {
  const std::vector<uint8_t> in = text_like(4 * kib, 9);
  std::vector<uint8_t> z = compressed(in, 1);
  ASSERT_FALSE(z.empty());
  block_decompressor decomp;
  std::vector<uint8_t> out(in.size());
  ASSERT_EQ(decomp.decompress(z, out), static_cast<long>(in.size()));
  for (const uint8_t extra : {0x00, 0x03, 0xFF}) {
    std::vector<uint8_t> longer = z;
    longer.push_back(extra);
    EXPECT_EQ(decomp.decompress(longer, out), -EBADMSG) << int{extra};
    EXPECT_EQ(decomp.decompress_exact(longer, out), -EBADMSG) << int{extra};
  }
}

// Hand-made streams, each broken in one way DEFLATE defines (checked against zlib, which
// rejects each with the message in the comment).
TEST(block_decompressor, corrupt_streams_are_bad_messages) {
  const std::vector<std::vector<uint8_t>> broken = {
      {0x07},  // BFINAL, BTYPE 11: the reserved block type ("invalid block type")
      // A stored block whose NLEN is not the complement of LEN ("invalid stored block lengths").
      {0x01, 0x05, 0x00, 0x00, 0x00, 'a', 'b', 'c', 'd', 'e'},
      // Fixed Huffman: a length-3 match at distance 1 before any output ("invalid distance too
      // far back"), then end of block.
      {0x03, 0x02, 0x00},
      // Dynamic Huffman whose 19 code-length codes are all 1 bit long, an over-subscribed code
      // ("invalid code lengths set").
      {0x05, 0xe0, 0x93, 0x24, 0x49, 0x92, 0x24, 0x49, 0x92, 0x00},
  };
  block_decompressor decomp;
  page_tail tail(64);
  for (const auto& z : broken) {
    guarded out(4 * kib);
    EXPECT_EQ(decomp.decompress(tail.place(z), out.span()), -EBADMSG)
        << int{z[0]} << " " << z.size();
    EXPECT_EQ(decomp.decompress_exact(tail.place(z), out.span()), -EBADMSG);
    EXPECT_TRUE(out.guard_intact());
  }
  // The same object decodes a good stream afterwards.
  const std::vector<uint8_t> good = {0x01, 0x05, 0x00, 0xfa, 0xff, 'a', 'b', 'c', 'd', 'e'};
  std::vector<uint8_t> out(5);
  ASSERT_EQ(decomp.decompress_exact(good, out), 5);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), 5), "abcde");
}

// Flipping bytes of a real stream: the result is whatever DEFLATE makes of it (it has no
// checksum; the transport's CRC32C or AEAD is what catches corruption on the wire), but only
// ever one of the documented results, within `out`.
TEST(block_decompressor, damaged_streams_stay_within_bounds) {
  const std::vector<uint8_t> in = text_like(16 * kib, 13);
  for (int level = 0; level <= 3; ++level) {
    const std::vector<uint8_t> z = compressed(in, level);
    ASSERT_FALSE(z.empty());
    block_decompressor decomp;
    guarded out(in.size());
    int rejected = 0;
    for (size_t i = 0; i < z.size(); i += 3) {
      for (const uint8_t mask : {0x01, 0x10, 0xFF}) {
        std::vector<uint8_t> bad = z;
        bad[i] ^= mask;
        const long r = decomp.decompress(bad, out.span());
        ASSERT_TRUE(r == -EBADMSG || r == -EMSGSIZE ||
                    (r >= 0 && r <= static_cast<long>(in.size())))
            << "level " << level << " byte " << i << " mask " << int{mask} << " -> " << r;
        const long e = decomp.decompress_exact(bad, out.span());
        ASSERT_TRUE(e == -EBADMSG || e == static_cast<long>(in.size())) << e;
        rejected += r < 0;
      }
    }
    EXPECT_TRUE(out.guard_intact()) << level;
    EXPECT_GT(rejected, 0) << level;  // most damage is detected as such
  }
}

TEST(block_decompressor, output_larger_than_out_is_msgsize) {
  block_decompressor decomp;
  for (const bool text : {false, true}) {
    const std::vector<uint8_t> in = text ? text_like(64 * kib, 3) : zeros(1024 * kib);
    const std::vector<uint8_t> z = compressed(in, 1);
    ASSERT_FALSE(z.empty());
    for (const size_t room : {size_t{0}, size_t{1}, 4 * kib, in.size() - 1}) {
      guarded out(room);
      EXPECT_EQ(decomp.decompress(z, out.span()), -EMSGSIZE) << room;
      EXPECT_TRUE(out.guard_intact()) << room;
      // The exact variant has no such case: the size is wrong, so the message is.
      EXPECT_EQ(decomp.decompress_exact(z, out.span()), -EBADMSG) << room;
      EXPECT_TRUE(out.guard_intact()) << room;
    }
    // The decoded bytes up to `out` were the real ones: the overflow was genuine.
    guarded out(4 * kib);
    ASSERT_EQ(decomp.decompress(z, out.span()), -EMSGSIZE);
    EXPECT_TRUE(std::equal(in.begin(), in.begin() + 4 * kib, out.span().begin()));
  }
}

TEST(block_decompressor, exact_size_required_by_the_exact_variant) {
  const std::vector<uint8_t> in = text_like(64 * kib, 4);
  const std::vector<uint8_t> z = compressed(in, 2);
  block_decompressor decomp;
  std::vector<uint8_t> out(in.size() + 1);
  EXPECT_EQ(decomp.decompress_exact(z, {out.data(), in.size()}), static_cast<long>(in.size()));
  EXPECT_TRUE(std::equal(in.begin(), in.end(), out.begin()));
  EXPECT_EQ(decomp.decompress_exact(z, {out.data(), in.size() + 1}), -EBADMSG);
  EXPECT_EQ(decomp.decompress_exact(z, {out.data(), in.size() - 1}), -EBADMSG);
  EXPECT_EQ(decomp.decompress(z, {out.data(), in.size() + 1}), static_cast<long>(in.size()));
}

TEST(block_decompressor, empty_streams) {
  block_decompressor decomp;
  std::vector<uint8_t> out(16);
  EXPECT_EQ(decomp.decompress({}, out), -EBADMSG);
  EXPECT_EQ(decomp.decompress_exact({}, {}), -EBADMSG);
  // A final fixed-Huffman block holding only its end code: the empty block, valid.
  const uint8_t empty_block[] = {0x03, 0x00};
  EXPECT_EQ(decomp.decompress(empty_block, out), 0);
  EXPECT_EQ(decomp.decompress_exact(empty_block, {}), 0);
  EXPECT_EQ(decomp.decompress_exact(empty_block, out), -EBADMSG);
}

// Streams from another encoder decode too: the format is plain RFC 1951.
TEST(block_decompressor, reads_zlib_streams) {
  // zlib compressobj(9, DEFLATED, -15, 9, Z_FIXED) of "hello hello hello\n".
  const uint8_t fixed[] = {0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x40, 0x90, 0x5c, 0x00};
  block_decompressor decomp;
  std::vector<uint8_t> out(18);
  ASSERT_EQ(decomp.decompress_exact(fixed, out), 18);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), out.size()),
            "hello hello hello\n");
}

TEST(block_decompressor, sizes_beyond_32_bits_are_invalid) {
  // Address space only (nothing is touched): a valid range longer than ISA-L can count.
  const size_t len = max_block + size_t{1};
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  const std::span<uint8_t> huge(static_cast<uint8_t*>(p), len);
  const uint8_t empty_block[] = {0x03, 0x00};
  std::vector<uint8_t> small(16);
  block_decompressor decomp;
  EXPECT_EQ(decomp.decompress(huge, small), -EINVAL);
  EXPECT_EQ(decomp.decompress(empty_block, huge), -EINVAL);
  EXPECT_EQ(decomp.decompress_exact(empty_block, huge), -EINVAL);
  block_compressor comp;
  EXPECT_EQ(comp.compress(huge, small), 0u);
  // A huge `out` is fine for compress (it is only written as far as the stream goes).
  const std::vector<uint8_t> in = text_like(4 * kib, 1);
  const size_t c = comp.compress(in, huge);
  ASSERT_GT(c, 0u);
  std::vector<uint8_t> back(in.size());
  EXPECT_EQ(decomp.decompress_exact(huge.first(c), back), static_cast<long>(in.size()));
  EXPECT_EQ(back, in);
  munmap(p, len);
}

TEST(hot_path, no_allocation_after_construction) {
  const long before_ctor = g_allocations.load();
  block_compressor comp(3);
  block_decompressor decomp;
  ASSERT_GT(g_allocations.load(), before_ctor);  // the counter sees the constructors' buffers

  const std::vector<uint8_t> text = text_like(64 * kib, 2);
  const std::vector<uint8_t> noise = random_bytes(64 * kib, 2);
  std::vector<uint8_t> z(block_compressor::compress_bound(text.size()));
  std::vector<uint8_t> back(text.size());
  const long before = g_allocations.load();
  const size_t c = comp.compress(text, z);
  EXPECT_EQ(comp.compress(noise, z), 0u);
  const size_t c2 = comp.compress(text, z);
  const long r = decomp.decompress_exact({z.data(), c2}, back);
  const long bad = decomp.decompress({z.data(), c2 / 2}, back);
  const long over = decomp.decompress({z.data(), c2}, {back.data(), 100});
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_GT(c, 0u);
  EXPECT_EQ(r, static_cast<long>(text.size()));
  EXPECT_EQ(bad, -EBADMSG);
  EXPECT_EQ(over, -EMSGSIZE);
}

TEST(hot_path, objects_move) {
  block_compressor a(3);
  block_compressor b(std::move(a));
  EXPECT_EQ(b.level(), 3);
  block_compressor c(0);
  c = std::move(b);
  EXPECT_EQ(c.level(), 3);
  block_decompressor d1;
  block_decompressor d2(std::move(d1));
  block_decompressor d3;
  d3 = std::move(d2);
  const std::vector<uint8_t> in = text_like(4 * kib, 8);
  std::vector<uint8_t> z(block_compressor::compress_bound(in.size()));
  const size_t n = c.compress(in, z);
  ASSERT_GT(n, 0u);
  std::vector<uint8_t> back(in.size());
  EXPECT_EQ(d3.decompress_exact({z.data(), n}, back), static_cast<long>(in.size()));
  EXPECT_EQ(back, in);
}

}  // namespace
}  // namespace tandem::dp
