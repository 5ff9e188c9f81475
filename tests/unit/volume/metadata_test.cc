// SPDX-License-Identifier: Apache-2.0
// metadata (dataplane/volume/metadata.h): layout, superblock codec, create / open / commit,
// torn and corrupt slots, refusals, and the fuzz seeds.
#include "dataplane/volume/metadata.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dataplane/crypto/crc32c.h"
#include "tests/unit/volume/test_util.h"

namespace tandem::dp::volume {
namespace {

using test::mib;
using test::small_params;
using ::testing::HasSubstr;

constexpr uint64_t small_volume = 64 * mib;  // 1024 bits, 16 extents

// The message of the exception `f` throws (fails the test if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return {};
}

// Recomputes the CRC of the slot at `offset` in `image` after a deliberate edit.
void reseal_slot(std::vector<uint8_t>& image, size_t offset) {
  std::memset(image.data() + offset + 12, 0, 4);
  const uint32_t crc = crc32c({image.data() + offset, meta_block_size});
  for (int i = 0; i < 4; ++i)
    image[offset + 12 + static_cast<size_t>(i)] = static_cast<uint8_t>(crc >> (8 * i));
}

uint64_t slot_seq(const std::vector<uint8_t>& image, int slot) {
  superblock sb;
  const auto s =
      decode_superblock(std::span<const uint8_t, meta_block_size>(
                            image.data() + superblock_slot_offset[slot], meta_block_size),
                        sb);
  return s == sb_status::ok ? sb.seq : 0;
}

class metadata_test : public ::testing::Test {
 protected:
  test::temp_dir dir_;
  std::string path_ = dir_.file("meta");
};

// ---- Layout -------------------------------------------------------------------------------------

TEST(layout, one_tib_with_defaults) {
  const uint64_t tib = uint64_t{1} << 40;
  const metadata_layout l = compute_layout(tib);
  EXPECT_EQ(l.bitmap_offset, 8192u);
  EXPECT_EQ(l.bitmap_bits, uint64_t{1} << 24);   // 1 TiB / 64 KiB
  EXPECT_EQ(l.bitmap_bytes, uint64_t{2} << 20);  // 2 MiB
  EXPECT_EQ(l.al_offset, 8192u + (2u << 20));
  EXPECT_EQ(l.al_bytes, 16u * 4096u);  // 16 records
  EXPECT_EQ(l.al_extents, 262144u);    // 1 TiB / 4 MiB
  EXPECT_EQ(l.total_size, 8192u + (2u << 20) + 65536u);
  EXPECT_EQ(required_size(tib), l.total_size);
}

TEST(layout, bitmap_rounds_up_to_whole_pages) {
  const format_params p = small_params();
  const metadata_layout l = compute_layout(small_volume, p);
  EXPECT_EQ(l.bitmap_bits, 1024u);
  EXPECT_EQ(l.bitmap_bytes, 4096u);
  EXPECT_EQ(l.al_extents, 16u);
  EXPECT_EQ(l.total_size, 8192u + 4096u + 4u * 4096u);
  // One bit more than a page's worth needs a second page.
  EXPECT_EQ(compute_layout(uint64_t{32768} * (64 << 10) + 4096, p).bitmap_bytes, 8192u);
  // A partial last chunk still gets its bit.
  EXPECT_EQ(compute_layout(64 * mib + 4096, p).bitmap_bits, 1025u);
}

TEST(layout, rejects_invalid_parameters) {
  const auto bad = [](uint64_t size, auto edit) {
    format_params p = small_params();
    edit(p);
    EXPECT_NE(check_params(size, p), nullptr);
    EXPECT_THROW((void)compute_layout(size, p), std::invalid_argument);
  };
  bad(small_volume, [](format_params& p) { p.block_size = 1024; });
  bad(small_volume + 512, [](format_params& p) { p.block_size = 4096; });
  bad(0, [](format_params&) {});
  bad(uint64_t{1} << 61, [](format_params& p) { p.bitmap_granularity = 1u << 30; });
  bad(small_volume, [](format_params& p) { p.bitmap_granularity = 3u << 16; });
  bad(small_volume, [](format_params& p) { p.bitmap_granularity = 2048; });   // < block size
  bad(small_volume, [](format_params& p) { p.al_extent_size = 32u << 10; });  // < granularity
  bad(small_volume, [](format_params& p) { p.al_extent_size = (4u << 20) + 4096; });
  bad(small_volume, [](format_params& p) { p.al_slots = 0; });
  bad(small_volume, [](format_params& p) { p.al_slots = al_max_slots + 1; });
  bad(small_volume, [](format_params& p) { p.al_ring_records = 1; });
  bad(small_volume, [](format_params& p) { p.al_ring_records = 1025; });
  // A bitmap over 1 GiB: 64 TiB in 4 KiB chunks is 2^34 bits.
  bad(uint64_t{1} << 46, [](format_params& p) { p.bitmap_granularity = 4096; });
  format_params ok = small_params();
  ok.block_size = 512;
  ok.bitmap_granularity = 512;
  ok.al_extent_size = 4096;
  EXPECT_EQ(check_params(512 * 3, ok), nullptr);
}

// ---- Superblock codec -----------------------------------------------------------------------

superblock sample_superblock() {
  superblock sb;
  sb.seq = 42;
  for (size_t i = 0; i < sb.id.uuid.size(); ++i)
    sb.id.uuid[i] = static_cast<uint8_t>(0xA0 + i);
  sb.id.volume_size = small_volume;
  sb.id.params = small_params();
  sb.state.role = role::primary;
  sb.state.disk = disk_state::up_to_date;
  sb.state.flags = flag_primary_active | flag_resync_in_progress;
  sb.state.peer_node_id = 0x01020304;
  sb.state.gen = {0x1111111111111111, 0x2222222222222222, {0x3333, 0x4444}};
  return sb;
}

TEST(superblock_codec, round_trip_and_little_endian_offsets) {
  const superblock sb = sample_superblock();
  std::vector<uint8_t> slot(meta_block_size);
  encode_superblock(sb, std::span<uint8_t, meta_block_size>(slot));
  EXPECT_EQ(std::memcmp(slot.data(), "TANDEMMD", 8), 0);
  EXPECT_EQ(slot[8], 1);    // version
  EXPECT_EQ(slot[16], 42);  // seq, little-endian
  EXPECT_EQ(slot[24], 0xA0);
  EXPECT_EQ(slot[47], 0x00);  // volume size 64 MiB = 0x04000000: byte 43 is 0x04
  EXPECT_EQ(slot[43], 0x04);
  EXPECT_EQ(slot[80], 1);     // role primary
  EXPECT_EQ(slot[81], 3);     // up_to_date
  EXPECT_EQ(slot[84], 0x04);  // peer node id, low byte first
  EXPECT_EQ(slot[88], 0x11);
  superblock back;
  ASSERT_EQ(decode_superblock(std::span<const uint8_t, meta_block_size>(slot), back),
            sb_status::ok);
  EXPECT_EQ(back, sb);
}

TEST(superblock_codec, statuses) {
  std::vector<uint8_t> slot(meta_block_size, 0);
  const auto view = std::span<const uint8_t, meta_block_size>(slot);
  superblock out;
  const char* why = nullptr;
  EXPECT_EQ(decode_superblock(view, out, &why), sb_status::empty);
  encode_superblock(sample_superblock(), std::span<uint8_t, meta_block_size>(slot));

  auto copy = slot;
  copy[0] = 'X';
  EXPECT_EQ(decode_superblock(std::span<const uint8_t, meta_block_size>(copy), out),
            sb_status::bad_magic);
  copy = slot;
  copy[2000] ^= 1;  // the CRC covers the reserved area too
  EXPECT_EQ(decode_superblock(std::span<const uint8_t, meta_block_size>(copy), out),
            sb_status::bad_crc);
  copy = slot;
  copy[8] = 2;
  reseal_slot(copy, 0);
  EXPECT_EQ(decode_superblock(std::span<const uint8_t, meta_block_size>(copy), out),
            sb_status::bad_version);
  EXPECT_EQ(out.seq, 42u);  // known even so, to pick the newest slot

  const auto field = [&](size_t at, uint8_t value, const char* expect) {
    auto c = slot;
    c[at] = value;
    reseal_slot(c, 0);
    const char* reason = nullptr;
    EXPECT_EQ(decode_superblock(std::span<const uint8_t, meta_block_size>(c), out, &reason),
              sb_status::bad_field)
        << "byte " << at;
    ASSERT_NE(reason, nullptr);
    EXPECT_THAT(reason, HasSubstr(expect)) << "byte " << at;
  };
  field(3000, 1, "reserved");
  field(82, 1, "reserved");
  field(80, 2, "role");
  field(81, 4, "disk state");
  field(76, 0x80, "flags");
  field(57, 0x20, "block size");  // 0x2000: not 512 or 4096
  field(48, 0xFF, "layout");      // meta_size
  field(128, 0x01, "layout");     // bitmap_bytes
  field(16, 0, "sequence");       // seq 42 -> 0
}

// ---- Create, open, commit -------------------------------------------------------------------

TEST_F(metadata_test, create_open_round_trip) {
  const format_params p = small_params();
  volume_identity id;
  {
    auto m = metadata_store::create(path_, small_volume, p);
    EXPECT_EQ(std::filesystem::file_size(path_), required_size(small_volume, p));
    EXPECT_EQ(m.seq(), 1u);
    EXPECT_EQ(m.active_slot(), 0);
    EXPECT_EQ(m.identity().volume_size, small_volume);
    EXPECT_EQ(m.identity().params, p);
    EXPECT_NE(m.identity().uuid, (std::array<uint8_t, 16>{}));
    EXPECT_EQ(m.state(), volume_state{});
    EXPECT_EQ(m.state().disk, disk_state::inconsistent);
    EXPECT_FALSE(m.needs_replay());
    EXPECT_EQ(m.bitmap().count_dirty(), 0u);
    EXPECT_EQ(m.bitmap().bits(), 1024u);
    EXPECT_EQ(m.al().extents(), 16u);
    id = m.identity();

    m.state().role = role::primary;
    m.state().disk = disk_state::up_to_date;
    m.state().flags = flag_resync_in_progress;
    m.state().peer_node_id = 7;
    m.state().gen = {11, 12, {13, 14}};
    ASSERT_EQ(m.commit(), 0);
    EXPECT_EQ(m.seq(), 2u);
    EXPECT_EQ(m.active_slot(), 1);
  }
  EXPECT_EQ(::access(path_.c_str(), F_OK), 0);
  auto m = metadata_store::open(path_);
  EXPECT_EQ(m.identity(), id);
  EXPECT_EQ(m.seq(), 2u);
  EXPECT_EQ(m.active_slot(), 1);
  EXPECT_EQ(m.state().role, role::primary);
  EXPECT_EQ(m.state().disk, disk_state::up_to_date);
  EXPECT_EQ(m.state().flags, flag_resync_in_progress);
  EXPECT_EQ(m.state().peer_node_id, 7u);
  EXPECT_EQ(m.state().gen, (generation_ids{11, 12, {13, 14}}));
  EXPECT_EQ(m.name(), path_);
}

TEST_F(metadata_test, two_volumes_get_different_uuids) {
  auto a = metadata_store::create(path_, small_volume, small_params());
  auto b = metadata_store::create(dir_.file("other"), small_volume, small_params());
  EXPECT_NE(a.identity().uuid, b.identity().uuid);
}

TEST_F(metadata_test, commit_alternates_slots_and_seq_grows) {
  auto m = metadata_store::create(path_, small_volume, small_params());
  for (uint64_t i = 0; i < 6; ++i) {
    m.state().peer_node_id = static_cast<uint32_t>(100 + i);
    ASSERT_EQ(m.commit(), 0);
    const uint64_t seq = 2 + i;
    EXPECT_EQ(m.seq(), seq);
    EXPECT_EQ(m.active_slot(), static_cast<int>(seq % 2 == 0 ? 1 : 0));
    const auto image = test::read_bytes(path_);
    EXPECT_EQ(slot_seq(image, m.active_slot()), seq);
    EXPECT_EQ(slot_seq(image, 1 - m.active_slot()), seq - 1);  // the previous copy survives
  }
}

TEST_F(metadata_test, torn_newest_slot_falls_back_to_the_older_one) {
  {
    auto m = metadata_store::create(path_, small_volume, small_params());
    m.state().peer_node_id = 1;
    ASSERT_EQ(m.commit(), 0);  // seq 2, slot 1
    m.state().peer_node_id = 2;
    ASSERT_EQ(m.commit(), 0);  // seq 3, slot 0
    ASSERT_EQ(m.active_slot(), 0);
  }
  // The write of seq 3 tore: its second half never reached the disk (old bytes of seq 1 there,
  // here garbage).
  test::patch_bytes(path_, 2048, std::vector<uint8_t>(2048, 0xAA));
  {
    auto m = metadata_store::open(path_);
    EXPECT_EQ(m.seq(), 2u);
    EXPECT_EQ(m.active_slot(), 1);
    EXPECT_EQ(m.state().peer_node_id, 1u);
    // The next commit goes to the torn slot, not over the good one.
    m.state().peer_node_id = 3;
    ASSERT_EQ(m.commit(), 0);
    EXPECT_EQ(m.active_slot(), 0);
    EXPECT_EQ(m.seq(), 3u);
  }
  auto m = metadata_store::open(path_);
  EXPECT_EQ(m.seq(), 3u);
  EXPECT_EQ(m.state().peer_node_id, 3u);
}

TEST_F(metadata_test, corrupt_newest_slot_crc_falls_back) {
  {
    auto m = metadata_store::create(path_, small_volume, small_params());
    m.state().disk = disk_state::up_to_date;
    ASSERT_EQ(m.commit(), 0);  // seq 2 in slot 1
  }
  test::flip_byte(path_, 4096 + 100);  // a byte of slot 1
  auto m = metadata_store::open(path_);
  EXPECT_EQ(m.seq(), 1u);
  EXPECT_EQ(m.state().disk, disk_state::inconsistent);
}

TEST_F(metadata_test, both_slots_corrupt_fails_clearly_and_changes_nothing) {
  {
    auto m = metadata_store::create(path_, small_volume, small_params());
    ASSERT_EQ(m.commit(), 0);
  }
  test::flip_byte(path_, 30);  // the uuid: random, so flip rather than overwrite
  test::flip_byte(path_, 4096 + 30);
  const auto before = test::read_bytes(path_);
  const std::string msg = error_of([&] { (void)metadata_store::open(path_); });
  EXPECT_THAT(msg, HasSubstr(path_));
  EXPECT_THAT(msg, HasSubstr("no valid superblock"));
  EXPECT_THAT(msg, HasSubstr("slot 0 (byte 0): CRC mismatch"));
  EXPECT_THAT(msg, HasSubstr("slot 1 (byte 4096): CRC mismatch"));
  EXPECT_THAT(msg, HasSubstr("not reinitialised"));
  EXPECT_EQ(test::read_bytes(path_), before);
  // create without force refuses nothing here (no valid superblock), but open never repairs.
  EXPECT_THROW((void)metadata_store::open(path_), std::runtime_error);
  EXPECT_EQ(test::read_bytes(path_), before);
}

TEST_F(metadata_test, not_metadata_and_never_created) {
  test::write_bytes(path_, std::vector<uint8_t>(64 << 10, 0));
  EXPECT_THAT(error_of([&] { (void)metadata_store::open(path_); }), HasSubstr("never initialised"));
  std::vector<uint8_t> text(64 << 10, 'x');
  test::write_bytes(path_, text);
  const std::string msg = error_of([&] { (void)metadata_store::open(path_); });
  EXPECT_THAT(msg, HasSubstr("bad magic"));
  EXPECT_THAT(msg, HasSubstr("not tandem metadata"));
  test::write_bytes(path_, std::vector<uint8_t>(100, 0));
  EXPECT_THAT(error_of([&] { (void)metadata_store::open(path_); }), HasSubstr("too small"));
  EXPECT_THAT(error_of([&] { (void)metadata_store::open(dir_.file("missing")); }),
              HasSubstr("cannot open metadata"));
}

TEST_F(metadata_test, newer_format_version_is_refused_not_skipped) {
  {
    auto m = metadata_store::create(path_, small_volume, small_params());
    ASSERT_EQ(m.commit(), 0);  // seq 2 in slot 1: the newest
  }
  auto image = test::read_bytes(path_);
  image[4096 + 8] = 2;
  reseal_slot(image, 4096);
  test::write_bytes(path_, image);
  const std::string msg = error_of([&] { (void)metadata_store::open(path_); });
  EXPECT_THAT(msg, HasSubstr("format version 2"));
  EXPECT_THAT(msg, HasSubstr("reads version 1"));
  EXPECT_EQ(test::read_bytes(path_), image);
}

TEST_F(metadata_test, invalid_field_in_newest_slot_is_reported) {
  {
    auto m = metadata_store::create(path_, small_volume, small_params());
    ASSERT_EQ(m.commit(), 0);
  }
  auto image = test::read_bytes(path_);
  image[4096 + 81] = 9;  // disk state
  reseal_slot(image, 4096);
  test::write_bytes(path_, image);
  const std::string msg = error_of([&] { (void)metadata_store::open(path_); });
  EXPECT_THAT(msg, HasSubstr("slot 1 (seq 2) is invalid: invalid disk state"));
}

TEST_F(metadata_test, truncated_file_is_too_small_for_the_bitmap) {
  { auto m = metadata_store::create(path_, small_volume, small_params()); }
  std::filesystem::resize_file(path_, required_size(small_volume, small_params()) - 4096);
  const std::string msg = error_of([&] { (void)metadata_store::open(path_); });
  EXPECT_THAT(msg, HasSubstr("needs 28672 bytes"));
  EXPECT_THAT(msg, HasSubstr("truncated"));
}

TEST_F(metadata_test, stray_bitmap_bits_past_the_volume_are_corruption) {
  { auto m = metadata_store::create(path_, small_volume, small_params()); }
  test::patch_bytes(path_, 8192 + 128, {0x01});  // bit 1024: the volume has 1024 bits
  const std::string msg = error_of([&] { (void)metadata_store::open(path_); });
  EXPECT_THAT(msg, HasSubstr("past the end of the volume (bit 1024"));
}

TEST_F(metadata_test, create_refuses_existing_metadata_unless_forced) {
  std::array<uint8_t, 16> first{};
  {
    auto m = metadata_store::create(path_, small_volume, small_params());
    m.bitmap().set_range(0, 1 * mib);
    ASSERT_EQ(m.bitmap().flush(), 0);
    first = m.identity().uuid;
  }
  const auto before = test::read_bytes(path_);
  const std::string msg =
      error_of([&] { (void)metadata_store::create(path_, 2 * small_volume, small_params()); });
  EXPECT_THAT(msg, HasSubstr("already holds tandem metadata"));
  EXPECT_THAT(msg, HasSubstr("force"));
  EXPECT_EQ(test::read_bytes(path_), before);

  create_options force;
  force.force = true;
  auto m = metadata_store::create(path_, 2 * small_volume, small_params(), force);
  EXPECT_NE(m.identity().uuid, first);
  EXPECT_EQ(m.identity().volume_size, 2 * small_volume);
  EXPECT_EQ(m.bitmap().count_dirty(), 0u);  // the old bitmap was zeroed
  EXPECT_EQ(m.seq(), 1u);
}

TEST_F(metadata_test, create_on_a_bigger_existing_file_keeps_its_size) {
  test::write_bytes(path_, std::vector<uint8_t>(1 << 20, 0x77));  // not metadata: no refusal
  auto m = metadata_store::create(path_, small_volume, small_params());
  EXPECT_EQ(std::filesystem::file_size(path_), 1u << 20);
  EXPECT_EQ(m.bitmap().count_dirty(), 0u);
  const auto image = test::read_bytes(path_);
  EXPECT_EQ(image[8192 + 10], 0);  // bitmap zeroed
}

TEST_F(metadata_test, invalid_create_leaves_no_file) {
  format_params p = small_params();
  p.al_slots = 0;
  EXPECT_THAT(error_of([&] { (void)metadata_store::create(path_, small_volume, p); }),
              HasSubstr("activity-log slots"));
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(metadata_test, second_opener_is_refused) {
  auto m = metadata_store::create(path_, small_volume, small_params());
  EXPECT_THAT(error_of([&] { (void)metadata_store::open(path_); }), HasSubstr("in use"));
  m.close_clean();
  EXPECT_NO_THROW((void)metadata_store::open(path_));
}

TEST_F(metadata_test, fixed_uuid_and_moved_store) {
  create_options opt;
  opt.fixed_uuid = true;
  opt.uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  auto a = metadata_store::create(path_, small_volume, small_params(), opt);
  metadata_store b = std::move(a);
  EXPECT_EQ(b.identity().uuid, opt.uuid);
  EXPECT_EQ(b.commit(), 0);
  EXPECT_EQ(b.seq(), 2u);
}

// ---- Fuzz seeds ----------------------------------------------------------------------------

// The seeds of tests/fuzz/corpus/volume_meta, rebuilt from scratch (deterministic: fixed uuid
// and generation ids). To regenerate after a format change:
//   TANDEM_WRITE_VOLUME_META_CORPUS=tests/fuzz/corpus/volume_meta
//     build/dev/tests/unit/volume/volume_meta_test --gtest_filter='fuzz_seeds.*'
std::map<std::string, std::vector<uint8_t>> generate_seeds() {
  test::temp_dir dir;
  std::map<std::string, std::vector<uint8_t>> seeds;
  create_options opt;
  opt.fixed_uuid = true;
  opt.uuid = {0x74, 0x61, 0x6e, 0x64, 0x65, 0x6d, 0x2d, 0x73,
              0x65, 0x65, 0x64, 0x2d, 0x75, 0x75, 0x69, 0x64};
  const auto image = [](const std::string& p) { return test::compact_image(test::read_bytes(p)); };

  const std::string fresh = dir.file("fresh");
  { auto m = metadata_store::create(fresh, small_volume, small_params(), opt); }
  seeds["valid_fresh"] = image(fresh);

  // A primary that crashed with hot extents 1, 5, 9, 12 (two transactions) and bitmap bits.
  const std::string crashed = dir.file("crashed");
  {
    auto m = metadata_store::create(crashed, small_volume, small_params(), opt);
    m.state().role = role::primary;
    m.state().disk = disk_state::up_to_date;
    m.state().flags = flag_primary_active;
    m.state().peer_node_id = 2;
    m.state().gen = {0x1111, 0x2222, {0x3333, 0}};
    (void)m.commit();
    m.bitmap().set_range(3 * mib, 200 << 10);
    m.bitmap().set_range(40 * mib, 1);
    (void)m.bitmap().flush();
    for (const uint64_t e : {1, 5, 9})
      (void)m.al().note_write(e * 4 * mib + 4096, 4096);
    (void)m.commit_activity_log();
    (void)m.al().note_write(12 * 4 * mib, 8192);
    (void)m.commit_activity_log();
  }
  seeds["valid_crashed_primary"] = image(crashed);

  // The same with the next transaction torn half-way.
  auto torn = test::read_bytes(crashed);
  const size_t next = 8192 + 4096 + 3 * 4096;  // seq 3 goes to record 3
  std::memcpy(torn.data() + next, "TANDEMAL", 8);
  for (size_t i = 8; i < 300; ++i)
    torn[next + i] = static_cast<uint8_t>(i * 37);
  seeds["valid_torn_al_record"] = test::compact_image(torn);

  // The newest transaction names an extent past the volume, with a valid CRC: replay must
  // mark the whole volume.
  auto invalid = test::read_bytes(crashed);
  const size_t newest = 8192 + 4096 + 2 * 4096;  // seq 2 at record 2
  invalid[newest + 48] = 0xC8;                   // first extent 1 -> 200
  std::memset(invalid.data() + newest + 8, 0, 4);
  const uint32_t crc = crc32c({invalid.data() + newest, meta_block_size});
  for (int i = 0; i < 4; ++i)
    invalid[newest + 8 + static_cast<size_t>(i)] = static_cast<uint8_t>(crc >> (8 * i));
  seeds["valid_al_newest_invalid"] = test::compact_image(invalid);

  // A secondary, disconnected, resyncing, closed cleanly.
  const std::string clean = dir.file("clean");
  {
    auto m = metadata_store::create(clean, small_volume, small_params(), opt);
    m.state().disk = disk_state::inconsistent;
    m.state().flags = flag_resync_in_progress | flag_crashed_primary;
    m.state().gen = {0x5555, 0, {0x4444, 0x3333}};
    m.bitmap().set_all();
    m.bitmap().clear_range(0, 16 * mib);
    m.close_clean();
  }
  seeds["valid_clean_resync"] = image(clean);

  // Both superblocks corrupt.
  auto bad = test::read_bytes(fresh);
  bad[40] ^= 0xFF;
  bad[4096 + 40] ^= 0xFF;
  seeds["bad_both_slots"] = test::compact_image(bad);
  return seeds;
}

TEST(fuzz_seeds, committed_seeds_are_current_and_decode_as_named) {
  const auto seeds = generate_seeds();
  if (const char* out = std::getenv("TANDEM_WRITE_VOLUME_META_CORPUS")) {
    std::filesystem::create_directories(out);
    for (const auto& [name, bytes] : seeds)
      test::write_bytes((std::filesystem::path(out) / name).string(), bytes);
  }
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(TANDEM_VOLUME_META_CORPUS)) {
    const std::string name = entry.path().filename().string();
    const auto committed = test::read_bytes(entry.path().string());
    ASSERT_TRUE(seeds.contains(name)) << name << " is not made by generate_seeds()";
    EXPECT_EQ(committed, seeds.at(name)) << name << " is stale: regenerate the seeds";
    ++seen;

    test::temp_dir dir;
    const std::string path = dir.file("image");
    test::write_bytes(path, test::expand_image(committed));
    if (name.starts_with("valid_")) {
      auto m = metadata_store::open(path);
      EXPECT_EQ(m.identity().volume_size, small_volume) << name;
      if (m.needs_replay()) {
        const replay_result r = m.replay();
        if (r.whole_volume) {
          EXPECT_EQ(m.bitmap().count_dirty(), m.bitmap().bits()) << name;
        } else {
          EXPECT_EQ(r.extents, 4u) << name;
        }
      }
    } else {
      EXPECT_THROW((void)metadata_store::open(path), std::runtime_error) << name;
    }
  }
  EXPECT_EQ(seen, seeds.size());
}

}  // namespace
}  // namespace tandem::dp::volume
