// SPDX-License-Identifier: Apache-2.0
// dirty_bitmap (dataplane/volume/bitmap.h): marking across word and page boundaries, runs,
// persistence of changed pages only.
#include "dataplane/volume/bitmap.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/volume/metadata.h"
#include "tests/unit/volume/test_util.h"

namespace tandem::dp::volume {
namespace {

using test::mib;

constexpr uint32_t chunk = 64u << 10;

// Runs as a list, from next_dirty_run.
std::vector<dirty_bitmap::run> runs_of(const dirty_bitmap& bm, uint64_t max_len = UINT64_MAX) {
  std::vector<dirty_bitmap::run> out;
  dirty_bitmap::run r;
  for (uint64_t pos = 0; bm.next_dirty_run(pos, r, max_len); pos = r.offset + r.length)
    out.push_back(r);
  return out;
}

TEST(dirty_bitmap, set_test_count_across_word_boundaries) {
  dirty_bitmap bm(1024 * uint64_t{chunk}, chunk);
  EXPECT_EQ(bm.bits(), 1024u);
  EXPECT_EQ(bm.pages(), 1u);
  // Chunks 60..70 straddle words 0 and 1.
  EXPECT_EQ(bm.set_range(60 * uint64_t{chunk} + 5, 10 * uint64_t{chunk}), 11u);
  EXPECT_EQ(bm.count_dirty(), 11u);
  for (uint64_t b = 0; b < 1024; ++b)
    EXPECT_EQ(bm.test_bit(b), b >= 60 && b <= 70) << b;
  EXPECT_TRUE(bm.test(70 * uint64_t{chunk} + chunk - 1));
  EXPECT_FALSE(bm.test(71 * uint64_t{chunk}));
  // Setting again changes nothing.
  EXPECT_EQ(bm.set_range(62 * uint64_t{chunk}, chunk), 0u);
  EXPECT_EQ(bm.count_dirty(), 11u);
  // Rounded outward: one byte marks its chunk.
  EXPECT_EQ(bm.set_range(128 * uint64_t{chunk} - 1, 2), 2u);  // chunks 127 and 128
  EXPECT_TRUE(bm.test_bit(127));
  EXPECT_TRUE(bm.test_bit(128));
  EXPECT_EQ(bm.count_dirty(), 13u);
  EXPECT_TRUE(bm.any_in(0, 61 * uint64_t{chunk}));
  EXPECT_FALSE(bm.any_in(0, 60 * uint64_t{chunk}));
  EXPECT_EQ(bm.set_range(0, 0), 0u);
  EXPECT_EQ(bm.set_range(1024 * uint64_t{chunk}, 100), 0u);  // past the end
}

TEST(dirty_bitmap, clear_rounds_inward) {
  dirty_bitmap bm(1024 * uint64_t{chunk}, chunk);
  bm.set_all();
  EXPECT_EQ(bm.count_dirty(), 1024u);
  // [chunk 10 + 1 byte, chunk 20 - 1 byte) only covers chunks 11..18 entirely.
  EXPECT_EQ(bm.clear_range(10 * uint64_t{chunk} + 1, 10 * uint64_t{chunk} - 2), 8u);
  EXPECT_TRUE(bm.test_bit(10));
  EXPECT_FALSE(bm.test_bit(11));
  EXPECT_FALSE(bm.test_bit(18));
  EXPECT_TRUE(bm.test_bit(19));
  EXPECT_EQ(bm.clear_range(5 * uint64_t{chunk} + 1, chunk), 0u);  // no whole chunk inside
  EXPECT_EQ(bm.count_dirty(), 1016u);
  bm.clear_all();
  EXPECT_EQ(bm.count_dirty(), 0u);
}

TEST(dirty_bitmap, partial_last_chunk) {
  const uint64_t size = 10 * uint64_t{chunk} + 4096;  // 11 chunks, the last 4 KiB long
  dirty_bitmap bm(size, chunk);
  EXPECT_EQ(bm.bits(), 11u);
  EXPECT_EQ(bm.set_range(size - 1, 100), 1u);  // clipped to the volume
  EXPECT_EQ(bm.dirty_bytes(), 4096u);
  dirty_bitmap::run r;
  ASSERT_TRUE(bm.next_dirty_run(0, r));
  EXPECT_EQ(r.offset, 10 * uint64_t{chunk});
  EXPECT_EQ(r.length, 4096u);
  // A range reaching the end clears the partial chunk.
  EXPECT_EQ(bm.clear_range(10 * uint64_t{chunk}, 4096), 1u);
  bm.set_all();
  EXPECT_EQ(bm.dirty_bytes(), size);
}

TEST(dirty_bitmap, page_boundaries_and_runs) {
  // Three pages: 3 * 32768 chunks.
  const uint64_t bits = 3 * bitmap_page_bits;
  dirty_bitmap bm(bits * chunk, chunk);
  EXPECT_EQ(bm.pages(), 3u);
  // Bits 32760..32780 cross from page 0 into page 1.
  EXPECT_EQ(bm.set_range(32760 * uint64_t{chunk}, 21 * uint64_t{chunk}), 21u);
  EXPECT_EQ(bm.dirty_pages(), 2u);
  EXPECT_EQ(bm.set_range(bits * chunk - 1, 1), 1u);  // very last bit, page 2
  EXPECT_EQ(bm.dirty_pages(), 3u);
  const auto runs = runs_of(bm);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].offset, 32760 * uint64_t{chunk});
  EXPECT_EQ(runs[0].length, 21 * uint64_t{chunk});
  EXPECT_EQ(runs[1].offset, (bits - 1) * chunk);
  EXPECT_EQ(runs[1].length, chunk);
  // max_len cuts runs into pieces of whole chunks.
  const auto cut = runs_of(bm, 8 * uint64_t{chunk});
  ASSERT_EQ(cut.size(), 4u);  // 8 + 8 + 5, then the last bit
  EXPECT_EQ(cut[0].length, 8 * uint64_t{chunk});
  EXPECT_EQ(cut[2].offset, (32760 + 16) * uint64_t{chunk});
  EXPECT_EQ(cut[2].length, 5 * uint64_t{chunk});
  // A max_len below a chunk still makes progress.
  dirty_bitmap::run r;
  ASSERT_TRUE(bm.next_dirty_run(0, r, 1));
  EXPECT_EQ(r.length, chunk);
  // Starting inside a run starts at the chunk holding `from`.
  ASSERT_TRUE(bm.next_dirty_run(32770 * uint64_t{chunk} + 5, r));
  EXPECT_EQ(r.offset, 32770 * uint64_t{chunk});
  EXPECT_FALSE(bm.next_dirty_run(bits * chunk, r));
}

TEST(dirty_bitmap, random_operations_match_a_simple_model) {
  std::mt19937_64 rng(7);
  const uint64_t bits = 70000;  // 3 pages, last one partial
  const uint64_t size = bits * 4096 - 512;
  dirty_bitmap bm(size, 4096);
  std::vector<bool> model(bits, false);
  for (int op = 0; op < 3000; ++op) {
    const uint64_t off = rng() % size;
    const uint64_t len = rng() % (op % 10 == 0 ? 4000000 : 40000);
    if (rng() % 3 != 0) {
      bm.set_range(off, len);
      if (len > 0) {
        const uint64_t end = std::min(size, off + len);
        for (uint64_t b = off / 4096; b <= (end - 1) / 4096; ++b)
          model[b] = true;
      }
    } else {
      bm.clear_range(off, len);
      const uint64_t end = std::min(size, off + len);
      const uint64_t first = (off + 4095) / 4096;
      const uint64_t stop = end == size ? bits : end / 4096;
      for (uint64_t b = first; b < stop; ++b)
        model[b] = false;
    }
  }
  uint64_t count = 0;
  for (uint64_t b = 0; b < bits; ++b) {
    ASSERT_EQ(bm.test_bit(b), model[b]) << b;
    count += model[b] ? 1 : 0;
  }
  EXPECT_EQ(bm.count_dirty(), count);
  // The runs cover exactly the set bits, maximal and in order.
  uint64_t covered = 0;
  uint64_t prev_end = 0;
  for (const auto& r : runs_of(bm)) {
    if (prev_end != 0) {
      EXPECT_GT(r.offset, prev_end);  // maximal: a clean chunk between
    }
    if (r.offset + r.length < size) {
      EXPECT_FALSE(model[(r.offset + r.length) / 4096]);
    }
    for (uint64_t b = r.offset / 4096; b < (r.offset + r.length + 4095) / 4096; ++b)
      EXPECT_TRUE(model[b]);
    if (r.offset > 0) {
      EXPECT_FALSE(model[r.offset / 4096 - 1]);
    }
    covered += (r.length + 4095) / 4096;
    prev_end = r.offset + r.length;
  }
  EXPECT_EQ(covered, count);
}

// ---- Persistence through the store ------------------------------------------------------------

class bitmap_file_test : public ::testing::Test {
 protected:
  // 3 bitmap pages.
  static constexpr uint64_t volume = 3 * bitmap_page_bits * chunk;
  format_params params() const {
    format_params p = test::small_params();
    p.al_extent_size = 64u << 20;
    return p;
  }
  std::vector<uint8_t> page_on_disk(size_t page) const {
    const auto image = test::read_bytes(path_);
    const size_t at = 8192 + page * bitmap_page_size;
    return {image.begin() + static_cast<std::ptrdiff_t>(at),
            image.begin() + static_cast<std::ptrdiff_t>(at + bitmap_page_size)};
  }
  static std::vector<uint8_t> in_memory(const dirty_bitmap& bm, size_t page) {
    const auto b = bm.page_bytes(page);
    return {b.begin(), b.end()};
  }
  test::temp_dir dir_;
  std::string path_ = dir_.file("meta");
};

TEST_F(bitmap_file_test, flush_writes_only_changed_pages) {
  auto m = metadata_store::create(path_, volume, params());
  dirty_bitmap& bm = m.bitmap();
  ASSERT_EQ(bm.pages(), 3u);
  EXPECT_EQ(bm.flush(), 0);  // nothing changed: no write at all
  EXPECT_EQ(bm.flushes(), 0u);

  bm.set_range(5 * uint64_t{chunk}, 3 * uint64_t{chunk});  // page 0
  bm.set_range((2 * bitmap_page_bits + 9) * chunk, 1);     // page 2
  EXPECT_EQ(bm.dirty_pages(), 2u);
  ASSERT_EQ(bm.flush(), 0);
  EXPECT_EQ(bm.dirty_pages(), 0u);
  EXPECT_EQ(bm.pages_written(), 2u);
  for (size_t p = 0; p < 3; ++p)
    EXPECT_EQ(page_on_disk(p), in_memory(bm, p)) << p;
  EXPECT_EQ(page_on_disk(0)[0], 0xE0);  // bits 5, 6, 7: bit i is bit i % 8 of byte i / 8
  EXPECT_EQ(page_on_disk(2)[1], 0x02);  // bit 9 of page 2

  // Scribble on pages 1 and 2 behind the bitmap's back, change page 0 only: the scribbles stay,
  // so pages 1 and 2 were not rewritten.
  const std::vector<uint8_t> marker(16, 0x5A);
  test::patch_bytes(path_, 8192 + 1 * bitmap_page_size + 100, marker);
  test::patch_bytes(path_, 8192 + 2 * bitmap_page_size + 100, marker);
  const auto page1_before = page_on_disk(1);
  const auto page2_before = page_on_disk(2);
  bm.set_range(1000 * uint64_t{chunk}, 1);  // page 0
  EXPECT_EQ(bm.dirty_pages(), 1u);
  ASSERT_EQ(bm.flush(), 0);
  EXPECT_EQ(bm.pages_written(), 3u);
  EXPECT_EQ(page_on_disk(0), in_memory(bm, 0));
  EXPECT_EQ(page_on_disk(1), page1_before);
  EXPECT_EQ(page_on_disk(2), page2_before);

  // Clearing a bit dirties its page too.
  bm.clear_range(5 * uint64_t{chunk}, chunk);
  EXPECT_EQ(bm.dirty_pages(), 1u);
  ASSERT_EQ(bm.flush(), 0);
  EXPECT_EQ(page_on_disk(0), in_memory(bm, 0));
}

TEST_F(bitmap_file_test, bits_survive_reopen) {
  std::vector<dirty_bitmap::run> runs;
  {
    auto m = metadata_store::create(path_, volume, params());
    m.bitmap().set_range(123 * mib, 5 * mib);
    m.bitmap().set_range(volume - 1, 1);
    m.bitmap().set_range(bitmap_page_bits * chunk - chunk, 2 * uint64_t{chunk});
    ASSERT_EQ(m.bitmap().flush(), 0);
    m.bitmap().set_range(0, 1);  // not flushed: lost with the crash
    runs = runs_of(m.bitmap());
  }
  auto m = metadata_store::open(path_);
  const auto again = runs_of(m.bitmap());
  ASSERT_EQ(again.size(), runs.size() - 1);
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].offset, runs[i + 1].offset);
    EXPECT_EQ(again[i].length, runs[i + 1].length);
  }
  EXPECT_EQ(m.bitmap().count_dirty(), 80u + 1u + 2u);
  EXPECT_EQ(m.bitmap().dirty_pages(), 0u);
}

TEST(dirty_bitmap, flush_without_a_device_fails) {
  dirty_bitmap bm(mib, 4096);
  bm.set_range(0, 1);
  EXPECT_EQ(bm.flush(), -EBADF);
  EXPECT_EQ(bm.dirty_pages(), 1u);  // still pending
}

}  // namespace
}  // namespace tandem::dp::volume
