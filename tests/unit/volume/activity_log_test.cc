// SPDX-License-Identifier: Apache-2.0
// activity_log (dataplane/volume/activity_log.h): batching, refcount-protected LRU eviction,
// two-phase commits, crash replay, torn and corrupt records, no allocation on the write path.
#include "dataplane/volume/activity_log.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dataplane/crypto/crc32c.h"
#include "dataplane/volume/bitmap.h"
#include "dataplane/volume/metadata.h"
#include "tests/unit/volume/test_util.h"

// Counts every allocation of this test binary, so a test can assert that a stretch of code made
// none. Plain malloc underneath, so ASan still sees every block.
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// GCC's -O2 inlines these and then takes free() of what new returned for a mismatch; the
// replacement pair is malloc/free on both sides, so the warning does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace tandem::dp::volume {
namespace {

using test::mib;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr uint64_t ext = 4 * mib;
constexpr uint64_t volume = 64 * mib;  // 16 extents

al_config config(uint32_t slots, uint64_t volume_size = volume) {
  al_config c;
  c.volume_size = volume_size;
  c.extent_size = static_cast<uint32_t>(ext);
  c.slots = slots;
  c.ring_records = 4;
  c.ring_offset = 0;
  c.uuid = {9, 9, 9};
  return c;
}

// "Commits" an in-memory log: prepare and report success; returns the record's extents.
std::vector<uint32_t> commit_in_memory(activity_log& al) {
  std::vector<uint8_t> rec(al_record_size);
  uint64_t off = 0;
  const int rc = al.prepare_commit(std::span<uint8_t, al_record_size>(rec), off);
  EXPECT_EQ(rc, 1);
  al.commit_done(true);
  al_record r;
  EXPECT_EQ(decode_al_record(std::span<const uint8_t, al_record_size>(rec), al.config(), r),
            al_record_status::ok);
  return {r.extents.begin(), r.extents.begin() + r.count};
}

// The decoded record at ring index `i` of a metadata file.
al_record_status read_record(const std::string& path, const metadata_store& m, uint32_t i,
                             al_record& out) {
  const auto image = test::read_bytes(path);
  al_config c;
  c.volume_size = m.identity().volume_size;
  c.extent_size = m.identity().params.al_extent_size;
  c.slots = m.identity().params.al_slots;
  c.uuid = m.identity().uuid;
  return decode_al_record(
      std::span<const uint8_t, al_record_size>(
          image.data() + m.layout().al_offset + uint64_t{i} * al_record_size, al_record_size),
      c, out);
}

// ---- Record codec -----------------------------------------------------------------------------

TEST(al_record_codec, round_trip_and_validation) {
  const al_config c = config(8);
  al_record r;
  r.seq = 5;
  r.uuid = c.uuid;
  r.extent_size = c.extent_size;
  r.count = 3;
  r.extents[0] = 1;
  r.extents[1] = 7;
  r.extents[2] = 15;
  std::vector<uint8_t> buf(al_record_size);
  encode_al_record(r, std::span<uint8_t, al_record_size>(buf));
  EXPECT_EQ(std::memcmp(buf.data(), "TANDEMAL", 8), 0);
  EXPECT_EQ(buf[12], 3);  // count
  EXPECT_EQ(buf[16], 5);  // seq
  EXPECT_EQ(buf[48 + 4], 7);
  al_record back;
  const auto view = std::span<const uint8_t, al_record_size>(buf);
  ASSERT_EQ(decode_al_record(view, c, back), al_record_status::ok);
  EXPECT_EQ(back.seq, 5u);
  EXPECT_EQ(back.count, 3u);
  EXPECT_EQ(back.extents[2], 15u);

  const auto resealed = [&](auto edit) {
    auto b = buf;
    edit(b);
    std::memset(b.data() + 8, 0, 4);
    const uint32_t crc = crc32c(b);
    for (int i = 0; i < 4; ++i)
      b[8 + static_cast<size_t>(i)] = static_cast<uint8_t>(crc >> (8 * i));
    al_record out;
    return decode_al_record(std::span<const uint8_t, al_record_size>(b), c, out);
  };
  EXPECT_EQ(resealed([](auto&) {}), al_record_status::ok);
  EXPECT_EQ(resealed([](auto& b) { b[48 + 8] = 16; }), al_record_status::bad_field);  // >= 16
  EXPECT_EQ(resealed([](auto& b) { b[48 + 4] = 1; }), al_record_status::bad_field);   // order
  EXPECT_EQ(resealed([](auto& b) { b[12] = 9; }), al_record_status::bad_field);       // > slots
  EXPECT_EQ(resealed([](auto& b) { b[24] ^= 1; }), al_record_status::bad_field);      // uuid
  EXPECT_EQ(resealed([](auto& b) { b[44] = 1; }), al_record_status::bad_field);       // reserved
  EXPECT_EQ(resealed([](auto& b) { b[4000] = 1; }), al_record_status::bad_field);     // tail
  EXPECT_EQ(resealed([](auto& b) { std::memset(b.data() + 16, 0, 8); }),
            al_record_status::bad_field);  // seq 0
  auto flipped = buf;
  flipped[100] ^= 1;
  EXPECT_EQ(decode_al_record(std::span<const uint8_t, al_record_size>(flipped), c, back),
            al_record_status::bad_crc);
  flipped = buf;
  flipped[0] = 0;
  EXPECT_EQ(decode_al_record(std::span<const uint8_t, al_record_size>(flipped), c, back),
            al_record_status::bad_magic);
  std::vector<uint8_t> zero(al_record_size, 0);
  EXPECT_EQ(decode_al_record(std::span<const uint8_t, al_record_size>(zero), c, back),
            al_record_status::empty);
}

// ---- The write path ---------------------------------------------------------------------------

TEST(activity_log, rejects_bad_configuration) {
  EXPECT_THROW(activity_log(config(0)), std::invalid_argument);
  EXPECT_THROW(activity_log(config(al_max_slots + 1)), std::invalid_argument);
  al_config c = config(4);
  c.extent_size = 3 << 20;
  EXPECT_THROW(activity_log{c}, std::invalid_argument);
  c = config(4);
  c.ring_records = 1;
  EXPECT_THROW(activity_log{c}, std::invalid_argument);
}

TEST(activity_log, ranges_and_errors) {
  activity_log al(config(4));
  EXPECT_EQ(al.extents(), 16u);
  EXPECT_EQ(al.note_write(0, 0), 0);                // touches nothing
  EXPECT_EQ(al.note_write(volume, 4096), -EINVAL);  // past the end
  EXPECT_EQ(al.note_write(volume - 4096, 8192), -EINVAL);
  EXPECT_EQ(al.note_write(0, 5 * ext), -E2BIG);  // 5 extents, 4 slots
  EXPECT_EQ(al.hot(), 0u);
  EXPECT_EQ(al.note_write(ext - 4096, 8192), 2);  // straddles extents 0 and 1
  EXPECT_EQ(al.refs(0), 1u);
  EXPECT_EQ(al.refs(1), 1u);
  EXPECT_EQ(al.pending(), 2u);
  EXPECT_FALSE(al.ready(ext - 4096, 8192));
  EXPECT_EQ(al.commit(), -EBADF);  // no device
  EXPECT_THAT(commit_in_memory(al), ElementsAre(0u, 1u));
  EXPECT_TRUE(al.ready(ext - 4096, 8192));
  al.complete_write(ext - 4096, 8192);
  EXPECT_EQ(al.refs(0), 0u);
  EXPECT_EQ(al.writes_in_flight(), 0u);
  EXPECT_TRUE(al.is_hot(0));  // idle extents stay hot until evicted
}

TEST(activity_log, many_writes_to_new_extents_make_one_transaction) {
  test::temp_dir dir;
  const std::string path = dir.file("meta");
  auto m = metadata_store::create(path, volume, test::small_params());
  activity_log& al = m.al();
  // 100 writes over 5 cold extents (0, 2, 4, 6, 8), all before the commit.
  for (int i = 0; i < 100; ++i) {
    const uint64_t off = uint64_t(i % 5) * 2 * ext + uint64_t(i) * 8192;
    EXPECT_EQ(al.note_write(off, 4096), 1) << i;  // its extent is not on disk yet
  }
  EXPECT_EQ(al.pending(), 5u);
  EXPECT_EQ(al.writes_in_flight(), 100u);
  EXPECT_EQ(m.commit_activity_log(), 1);
  EXPECT_EQ(al.transactions(), 1u);
  EXPECT_EQ(al.pending(), 0u);
  for (int i = 0; i < 100; ++i)
    EXPECT_TRUE(al.ready(uint64_t(i % 5) * 2 * ext + uint64_t(i) * 8192, 4096));
  al_record r;
  ASSERT_EQ(read_record(path, m, 1, r), al_record_status::ok);  // seq 1 lives at index 1
  EXPECT_EQ(r.seq, 1u);
  EXPECT_THAT(std::vector<uint32_t>(r.extents.begin(), r.extents.begin() + r.count),
              ElementsAre(0u, 2u, 4u, 6u, 8u));
  for (int i = 0; i < 100; ++i)
    al.complete_write(uint64_t(i % 5) * 2 * ext + uint64_t(i) * 8192, 4096);

  // Writes to hot extents go straight through: no transaction at all.
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(al.note_write(uint64_t(i % 5) * 2 * ext + 4096, 4096), 0);
  EXPECT_FALSE(al.needs_commit());
  EXPECT_EQ(m.commit_activity_log(), 0);
  EXPECT_EQ(al.transactions(), 1u);
}

TEST(activity_log, eviction_takes_the_least_recently_idle_extent_never_a_busy_one) {
  activity_log al(config(4));
  for (uint32_t e = 0; e < 4; ++e)
    EXPECT_EQ(al.note_write(e * ext, 4096), 1);
  (void)commit_in_memory(al);
  // All four extents have a write in flight: no room, and the refusal changes nothing.
  EXPECT_EQ(al.note_write(4 * ext, 4096), -EBUSY);
  EXPECT_EQ(al.hot(), 4u);
  EXPECT_EQ(al.pending(), 0u);
  EXPECT_FALSE(al.is_hot(4));
  EXPECT_EQ(al.writes_in_flight(), 4u);

  al.complete_write(2 * ext, 4096);  // idle first
  al.complete_write(0, 4096);        // idle second
  EXPECT_EQ(al.note_write(4 * ext, 4096), 1);
  EXPECT_FALSE(al.is_hot(2));  // the least recently idle went
  EXPECT_TRUE(al.is_hot(0));
  EXPECT_EQ(al.evictions(), 1u);
  EXPECT_EQ(al.drops_pending(), 1u);  // extent 2 was on disk: the next record drops it
  EXPECT_EQ(al.note_write(5 * ext, 4096), 1);
  EXPECT_FALSE(al.is_hot(0));
  EXPECT_EQ(al.note_write(6 * ext, 4096), -EBUSY);
  EXPECT_THAT(commit_in_memory(al), ElementsAre(1u, 3u, 4u, 5u));
  EXPECT_EQ(al.drops_pending(), 0u);

  // A range holding an idle hot extent and a new one evicts another idle extent, not its own,
  // even when its own is the least recently idle.
  al.complete_write(3 * ext, 4096);  // idle first
  al.complete_write(1 * ext, 4096);
  EXPECT_EQ(al.note_write(3 * ext - 4096, 8192), 1);  // extents 2 (new) and 3 (idle, hot)
  EXPECT_TRUE(al.is_hot(2));
  EXPECT_TRUE(al.is_hot(3));
  EXPECT_FALSE(al.is_hot(1));
}

TEST(activity_log, an_abandoned_pending_extent_is_evicted_without_a_drop) {
  activity_log al(config(1));
  EXPECT_EQ(al.note_write(0, 4096), 1);
  al.complete_write(0, 4096);  // the write was failed before any commit
  EXPECT_EQ(al.note_write(ext, 4096), 1);
  EXPECT_EQ(al.drops_pending(), 0u);
  EXPECT_EQ(al.pending(), 1u);
  EXPECT_THAT(commit_in_memory(al), ElementsAre(1u));
}

TEST(activity_log, two_phase_commit) {
  activity_log al(config(8));
  EXPECT_EQ(al.note_write(0, 4096), 1);
  std::vector<uint8_t> rec(al_record_size);
  const auto span = std::span<uint8_t, al_record_size>(rec);
  uint64_t off = 0;
  ASSERT_EQ(al.prepare_commit(span, off), 1);
  EXPECT_EQ(off, 1 * al_record_size);  // seq 1 at index 1
  EXPECT_EQ(al.prepare_commit(span, off), -EBUSY);
  // Extent 0 is in the prepared record; a write to extent 1 waits for the next one.
  EXPECT_EQ(al.note_write(0, 4096), 1);
  EXPECT_EQ(al.note_write(ext, 4096), 1);
  EXPECT_EQ(al.pending(), 1u);
  al.commit_done(true);
  EXPECT_TRUE(al.ready(0, 4096));
  EXPECT_FALSE(al.ready(ext, 4096));
  EXPECT_TRUE(al.needs_commit());
  // A failed write of the record leaves its extents queued.
  ASSERT_EQ(al.prepare_commit(span, off), 1);
  EXPECT_EQ(off, 2 * al_record_size);
  al.commit_done(false);
  EXPECT_FALSE(al.ready(ext, 4096));
  EXPECT_EQ(al.pending(), 1u);
  ASSERT_EQ(al.prepare_commit(span, off), 1);
  EXPECT_EQ(off, 2 * al_record_size);  // the same transaction again
  al.commit_done(true);
  EXPECT_TRUE(al.ready(ext, 4096));
  EXPECT_EQ(al.next_seq(), 3u);
  EXPECT_EQ(al.transactions(), 2u);
}

TEST(activity_log, random_workload_matches_a_reference_count_model) {
  std::mt19937_64 rng(11);
  const uint32_t slots = 6;
  activity_log al(config(slots, 32 * ext));
  struct write {
    uint64_t off, len;
  };
  std::vector<write> outstanding;
  std::map<uint32_t, uint32_t> refs;  // extent -> writes in flight touching it
  for (int op = 0; op < 20000; ++op) {
    const uint64_t r = rng() % 10;
    if (r < 5) {
      const uint64_t off = (rng() % 32) * ext + (rng() % ext);
      const uint64_t len = std::min<uint64_t>(1 + rng() % (ext + ext / 2), 32 * ext - off);
      const uint32_t first = static_cast<uint32_t>(off / ext);
      const uint32_t last = static_cast<uint32_t>((off + len - 1) / ext);
      uint32_t pinned = 0;
      for (const auto& [e, n] : refs)
        pinned += n > 0 ? 1 : 0;
      uint32_t need = 0;
      uint32_t idle_in_range = 0;
      for (uint32_t e = first; e <= last; ++e) {
        if (!al.is_hot(e)) {
          ++need;
        } else if (refs[e] == 0) {
          ++idle_in_range;
        }
      }
      const int rc = al.note_write(off, len);
      if (rc == -EBUSY) {
        EXPECT_GT(need + idle_in_range + pinned, slots);
        continue;
      }
      ASSERT_GE(rc, 0);
      EXPECT_LE(need + idle_in_range + pinned, slots);
      outstanding.push_back({off, len});
      for (uint32_t e = first; e <= last; ++e)
        ++refs[e];
    } else if (r < 9 && !outstanding.empty()) {
      const size_t i = rng() % outstanding.size();
      const write w = outstanding[i];
      outstanding[i] = outstanding.back();
      outstanding.pop_back();
      al.complete_write(w.off, w.len);
      for (uint64_t e = w.off / ext; e <= (w.off + w.len - 1) / ext; ++e)
        --refs[static_cast<uint32_t>(e)];
    } else if (al.needs_commit()) {
      (void)commit_in_memory(al);
    }
    // Invariants: every extent with writes in flight is hot with the right count.
    uint32_t hot = 0;
    for (uint32_t e = 0; e < 32; ++e) {
      hot += al.is_hot(e) ? 1 : 0;
      ASSERT_EQ(al.refs(e), refs[e]) << "extent " << e << " op " << op;
      if (refs[e] > 0) {
        ASSERT_TRUE(al.is_hot(e));
      }
    }
    ASSERT_EQ(hot, al.hot());
    ASSERT_LE(hot, slots);
  }
}

TEST(activity_log, marking_and_noting_writes_never_allocate) {
  activity_log al(config(8));
  dirty_bitmap bm(volume, 64u << 10);
  std::vector<uint8_t> rec(al_record_size);
  const auto span = std::span<uint8_t, al_record_size>(rec);
  uint64_t off = 0;
  const uint64_t before = g_allocations.load();
  for (uint64_t i = 0; i < 2000; ++i) {
    const uint64_t o = (i * 7919 * 4096) % (volume - 8192);
    if (al.note_write(o, 8192) > 0 && al.prepare_commit(span, off) == 1) al.commit_done(true);
    bm.set_range(o, 8192);
    al.complete_write(o, 8192);
    if (i % 3 == 0) bm.clear_range(o, 65536);
    dirty_bitmap::run r;
    (void)bm.next_dirty_run(o, r);
    (void)bm.count_dirty();
  }
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_GT(al.evictions(), 0u);
}

// ---- Crash and replay ---------------------------------------------------------------------------

class al_store_test : public ::testing::Test {
 protected:
  // A primary with the clean-shutdown flag cleared, as before its first write.
  metadata_store make_primary(uint32_t slots = 8) {
    format_params p = test::small_params();
    p.al_slots = slots;
    auto m = metadata_store::create(path_, volume, p);
    m.state().role = role::primary;
    m.state().flags |= flag_primary_active;
    EXPECT_EQ(m.commit(), 0);
    return m;
  }
  // The extents whose chunks are dirty.
  static std::set<uint32_t> dirty_extents(metadata_store& m) {
    std::set<uint32_t> out;
    dirty_bitmap::run r;
    for (uint64_t pos = 0; m.bitmap().next_dirty_run(pos, r); pos = r.offset + r.length) {
      for (uint64_t o = r.offset; o < r.offset + r.length; o += 64 << 10)
        out.insert(static_cast<uint32_t>(o / ext));
    }
    return out;
  }
  test::temp_dir dir_;
  std::string path_ = dir_.file("meta");
};

TEST_F(al_store_test, replay_after_a_crash_marks_exactly_the_hot_extents) {
  {
    auto m = make_primary(2);
    ASSERT_EQ(m.al().note_write(3 * ext + 4096, 4096), 1);
    ASSERT_EQ(m.al().note_write(7 * ext, 4096), 1);
    ASSERT_EQ(m.commit_activity_log(), 1);
    m.al().complete_write(3 * ext + 4096, 4096);
    ASSERT_EQ(m.al().note_write(9 * ext, 8192), 1);  // evicts 3
    ASSERT_EQ(m.commit_activity_log(), 1);
    EXPECT_FALSE(m.al().is_hot(3));
    // The node dies here: no close_clean, writes to 7 and 9 in flight.
  }
  {
    auto m = metadata_store::open(path_);
    EXPECT_TRUE(m.needs_replay());
    EXPECT_EQ(m.al_scan().newest_seq, 2u);
    EXPECT_EQ(m.bitmap().count_dirty(), 0u);
    ASSERT_EQ(m.al().note_write(0, 4096), 1);
    EXPECT_EQ(m.al().commit(), -ESTALE);  // not before the replay
    m.al().complete_write(0, 4096);

    const replay_result r = m.replay();
    EXPECT_TRUE(r.replayed);
    EXPECT_EQ(r.extents, 2u);
    EXPECT_FALSE(r.whole_volume);
    EXPECT_EQ(r.al_seq, 2u);
    EXPECT_TRUE(r.problem.empty()) << r.problem;
    EXPECT_EQ(dirty_extents(m), (std::set<uint32_t>{7, 9}));
    EXPECT_EQ(m.bitmap().count_dirty(), 2u * 64u);  // two extents of 64 chunks
    EXPECT_EQ(m.bitmap().dirty_pages(), 0u);        // already on disk
    EXPECT_FALSE(m.needs_replay());
    EXPECT_EQ(m.state().flags & flag_primary_active, 0u);
    EXPECT_NE(m.state().flags & flag_crashed_primary, 0u);
    EXPECT_FALSE(m.replay().replayed);  // once only
  }
  // Everything the replay did is durable.
  auto m = metadata_store::open(path_);
  EXPECT_FALSE(m.needs_replay());
  EXPECT_EQ(dirty_extents(m), (std::set<uint32_t>{7, 9}));
  EXPECT_NE(m.state().flags & flag_crashed_primary, 0u);
  al_record rec;
  ASSERT_EQ(read_record(path_, m, 3, rec), al_record_status::ok);  // the empty transaction 3
  EXPECT_EQ(rec.count, 0u);
}

TEST_F(al_store_test, bits_of_an_evicted_extent_reach_the_disk_before_the_drop) {
  {
    auto m = make_primary(1);
    ASSERT_EQ(m.al().note_write(1 * ext, 4096), 1);
    ASSERT_EQ(m.commit_activity_log(), 1);
    m.bitmap().set_range(1 * ext + 8192, 4096);  // the peer is away: record the write
    m.al().complete_write(1 * ext, 4096);
    ASSERT_EQ(m.al().note_write(5 * ext, 4096), 1);  // evicts extent 1
    EXPECT_EQ(m.al().drops_pending(), 1u);
    EXPECT_EQ(m.bitmap().dirty_pages(), 1u);
    ASSERT_EQ(m.commit_activity_log(), 1);
    EXPECT_EQ(m.bitmap().dirty_pages(), 0u);  // flushed first
    EXPECT_EQ(m.bitmap().flushes(), 1u);
    m.bitmap().set_range(5 * ext, 4096);  // hot: the AL covers it, no flush needed
    EXPECT_EQ(m.bitmap().dirty_pages(), 1u);
  }
  auto m = metadata_store::open(path_);
  EXPECT_TRUE(m.bitmap().test(1 * ext + 8192));  // survived although extent 1 is cold
  EXPECT_FALSE(m.bitmap().test(5 * ext));        // lost with the crash ...
  (void)m.replay();
  EXPECT_TRUE(m.bitmap().test(5 * ext));  // ... and brought back by the replay
  EXPECT_EQ(dirty_extents(m), (std::set<uint32_t>{1, 5}));
}

TEST_F(al_store_test, clean_close_needs_no_replay) {
  {
    auto m = make_primary();
    ASSERT_EQ(m.al().note_write(2 * ext, 2 * ext), 2);
    ASSERT_EQ(m.commit_activity_log(), 1);
    m.bitmap().set_range(0, 4096);
    EXPECT_THROW(m.close_clean(), std::runtime_error);  // a write is still in flight
    m.al().complete_write(2 * ext, 2 * ext);
    m.close_clean();
    EXPECT_EQ(m.commit(), -EBADF);
  }
  auto m = metadata_store::open(path_);
  EXPECT_FALSE(m.needs_replay());
  EXPECT_EQ(m.state().flags & flag_primary_active, 0u);
  EXPECT_EQ(m.bitmap().count_dirty(), 1u);  // flushed by the close
  al_record rec;
  ASSERT_EQ(read_record(path_, m, 2, rec), al_record_status::ok);
  EXPECT_EQ(rec.count, 0u);  // the log was emptied on disk too
  EXPECT_EQ(m.al().next_seq(), 3u);
}

TEST_F(al_store_test, mark_clean_then_primary_again_replays_only_the_new_extents) {
  {
    auto m = make_primary();
    ASSERT_EQ(m.al().note_write(2 * ext, 2 * ext), 2);
    ASSERT_EQ(m.commit_activity_log(), 1);
    m.al().complete_write(2 * ext, 2 * ext);
    m.mark_clean();  // demoted
    EXPECT_EQ(m.state().flags & flag_primary_active, 0u);
    EXPECT_EQ(m.al().hot(), 0u);
    m.state().flags |= flag_primary_active;  // promoted again
    ASSERT_EQ(m.commit(), 0);
    ASSERT_EQ(m.al().note_write(9 * ext, 4096), 1);
    ASSERT_EQ(m.commit_activity_log(), 1);
  }
  auto m = metadata_store::open(path_);
  ASSERT_TRUE(m.needs_replay());
  EXPECT_EQ(m.replay().extents, 1u);
  EXPECT_EQ(dirty_extents(m), (std::set<uint32_t>{9}));
}

TEST_F(al_store_test, a_torn_record_is_the_unfinished_transaction) {
  {
    auto m = make_primary();
    ASSERT_EQ(m.al().note_write(3 * ext, 4096), 1);
    ASSERT_EQ(m.commit_activity_log(), 1);
    ASSERT_EQ(m.al().note_write(8 * ext, 4096), 1);
    ASSERT_EQ(m.commit_activity_log(), 1);
    const uint64_t at = m.layout().al_offset + 3 * al_record_size;  // where seq 3 would go
    std::vector<uint8_t> half(al_record_size / 2, 0x33);
    std::memcpy(half.data(), "TANDEMAL", 8);
    test::patch_bytes(path_, at, half);
  }
  auto m = metadata_store::open(path_);
  EXPECT_EQ(m.al_scan().torn, 1u);
  EXPECT_EQ(m.al_scan().corrupt, 0u);
  const replay_result r = m.replay();
  EXPECT_EQ(r.extents, 2u);
  EXPECT_FALSE(r.whole_volume);
  EXPECT_THAT(r.problem, HasSubstr("torn"));
  EXPECT_EQ(dirty_extents(m), (std::set<uint32_t>{3, 8}));
}

TEST_F(al_store_test, an_invalid_newest_record_marks_the_whole_volume) {
  {
    auto m = make_primary();
    ASSERT_EQ(m.al().note_write(3 * ext, 4096), 1);
    ASSERT_EQ(m.commit_activity_log(), 1);
    ASSERT_EQ(m.al().note_write(8 * ext, 4096), 1);
    ASSERT_EQ(m.commit_activity_log(), 1);
  }
  // Transaction 2 (index 2) names extent 200 of a 16-extent volume, with a valid CRC.
  auto image = test::read_bytes(path_);
  const size_t at = 8192 + 4096 + 2 * al_record_size;
  image[at + 48 + 4] = 200;
  std::memset(image.data() + at + 8, 0, 4);
  const uint32_t crc = crc32c({image.data() + at, al_record_size});
  for (int i = 0; i < 4; ++i)
    image[at + 8 + static_cast<size_t>(i)] = static_cast<uint8_t>(crc >> (8 * i));
  test::write_bytes(path_, image);

  auto m = metadata_store::open(path_);
  EXPECT_TRUE(m.al_scan().newest_invalid);
  const replay_result r = m.replay();
  EXPECT_TRUE(r.whole_volume);
  EXPECT_THAT(r.problem, HasSubstr("whole volume"));
  EXPECT_EQ(m.bitmap().count_dirty(), m.bitmap().bits());
  // The ring was reset, so the bad record cannot force this again.
  const auto after = test::read_bytes(path_);
  for (size_t i = 0; i < 4 * al_record_size; ++i)
    ASSERT_EQ(after[8192 + 4096 + i], 0) << i;
}

TEST_F(al_store_test, a_corrupt_older_record_is_reported_but_the_replay_stays_exact) {
  {
    auto m = make_primary();
    for (const uint32_t e : {3u, 5u, 11u}) {
      ASSERT_EQ(m.al().note_write(e * ext, 4096), 1);
      ASSERT_EQ(m.commit_activity_log(), 1);  // seqs 1, 2, 3
    }
  }
  test::flip_byte(path_, 8192 + 4096 + 1 * al_record_size + 60);  // seq 1
  auto m = metadata_store::open(path_);
  EXPECT_EQ(m.al_scan().corrupt, 1u);
  EXPECT_THAT(m.al_scan().problem, HasSubstr("activity-log record 1"));
  const replay_result r = m.replay();
  EXPECT_FALSE(r.whole_volume);
  EXPECT_THAT(r.problem, HasSubstr("CRC mismatch"));
  EXPECT_EQ(dirty_extents(m), (std::set<uint32_t>{3, 5, 11}));
}

TEST_F(al_store_test, sequence_numbers_continue_across_opens_and_wrap_the_ring) {
  for (int round = 0; round < 3; ++round) {
    auto m = round == 0 ? make_primary(1) : metadata_store::open(path_);
    if (m.needs_replay()) (void)m.replay();
    m.state().flags |= flag_primary_active;
    ASSERT_EQ(m.commit(), 0);
    for (uint32_t e = 0; e < 3; ++e) {
      ASSERT_GE(m.al().note_write(e * ext, 4096), 0);
      ASSERT_GE(m.commit_activity_log(), 0);
      m.al().complete_write(e * ext, 4096);
    }
  }
  auto m = metadata_store::open(path_);
  EXPECT_EQ(m.al_scan().corrupt, 0u) << m.al_scan().problem;
  EXPECT_EQ(m.al_scan().torn, 0u);
  EXPECT_GT(m.al_scan().newest_seq, 8u);  // several laps of a 4-record ring
  const replay_result r = m.replay();
  EXPECT_EQ(r.extents, 1u);  // one slot: only the last extent
  EXPECT_EQ(dirty_extents(m), (std::set<uint32_t>{2}));
}

}  // namespace
}  // namespace tandem::dp::volume
