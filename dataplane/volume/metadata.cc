// SPDX-License-Identifier: Apache-2.0
// Superblock codec, layout, generation-id rules and the metadata store (create, open, replay).
#include "dataplane/volume/metadata.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "dataplane/base/fd_guard.h"
#include "dataplane/crypto/crc32c.h"

namespace tandem::dp::volume {
namespace {

// ---- On-disk superblock (docs/volume-metadata.md) -----------------------------------------

// Every field is little-endian; the struct is the exact slot image on a little-endian host and
// is converted field by field with le() otherwise. Offsets 0 (magic), 8 (version), 12 (crc) and
// 16 (seq) are the same in every format version.
struct sb_raw {
  char magic[8];
  uint32_t version;
  uint32_t crc;  // crc32c of the 4 KiB slot with this field taken as zero
  uint64_t seq;
  uint8_t uuid[16];
  uint64_t volume_size;
  uint64_t meta_size;
  uint32_t block_size;
  uint32_t bitmap_granularity;
  uint32_t al_extent_size;
  uint32_t al_slots;
  uint32_t al_ring_records;
  uint32_t flags;
  uint8_t role;
  uint8_t disk_state;
  uint16_t reserved0;
  uint32_t peer_node_id;
  uint64_t gen_current;
  uint64_t gen_bitmap;
  uint64_t gen_history[2];
  uint64_t bitmap_offset;
  uint64_t bitmap_bytes;
  uint64_t al_offset;
  uint64_t primary_since;  // 0 in metadata written before the field existed
  uint8_t reserved[meta_block_size - 152];
};
static_assert(sizeof(sb_raw) == meta_block_size);
static_assert(offsetof(sb_raw, version) == 8);
static_assert(offsetof(sb_raw, crc) == 12);
static_assert(offsetof(sb_raw, seq) == 16);
static_assert(offsetof(sb_raw, uuid) == 24);
static_assert(offsetof(sb_raw, volume_size) == 40);
static_assert(offsetof(sb_raw, meta_size) == 48);
static_assert(offsetof(sb_raw, block_size) == 56);
static_assert(offsetof(sb_raw, bitmap_granularity) == 60);
static_assert(offsetof(sb_raw, al_extent_size) == 64);
static_assert(offsetof(sb_raw, al_slots) == 68);
static_assert(offsetof(sb_raw, al_ring_records) == 72);
static_assert(offsetof(sb_raw, flags) == 76);
static_assert(offsetof(sb_raw, role) == 80);
static_assert(offsetof(sb_raw, disk_state) == 81);
static_assert(offsetof(sb_raw, reserved0) == 82);
static_assert(offsetof(sb_raw, peer_node_id) == 84);
static_assert(offsetof(sb_raw, gen_current) == 88);
static_assert(offsetof(sb_raw, gen_bitmap) == 96);
static_assert(offsetof(sb_raw, gen_history) == 104);
static_assert(offsetof(sb_raw, bitmap_offset) == 120);
static_assert(offsetof(sb_raw, bitmap_bytes) == 128);
static_assert(offsetof(sb_raw, al_offset) == 136);
static_assert(offsetof(sb_raw, primary_since) == 144);
static_assert(offsetof(sb_raw, reserved) == 152);

template <typename T>
constexpr T le(T v) noexcept {
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
    T out{};
    for (size_t i = 0; i < sizeof(T); ++i)
      out = static_cast<T>((out << 8) | ((v >> (8 * i)) & 0xff));
    return out;
  }
  return v;
}

uint32_t slot_crc(std::span<const uint8_t, meta_block_size> slot) noexcept {
  static constexpr uint8_t zero[4] = {};
  constexpr size_t at = offsetof(sb_raw, crc);
  uint32_t crc = crc32c(slot.first(at));
  crc = crc32c(zero, crc);
  return crc32c(slot.subspan(at + 4), crc);
}

bool all_zero(std::span<const uint8_t> b) noexcept {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

constexpr uint64_t max_volume_size = uint64_t{1} << 60;   // 1 EiB
constexpr uint64_t max_bitmap_bytes = uint64_t{1} << 30;  // 1 GiB of memory and disk
constexpr uint32_t max_chunk = uint32_t{1} << 30;

uint64_t div_ceil(uint64_t a, uint64_t b) noexcept {
  return a / b + (a % b != 0 ? 1 : 0);
}

// The layout of valid parameters (check_params passed).
metadata_layout layout_of(uint64_t volume_size, const format_params& p) noexcept {
  metadata_layout l;
  l.bitmap_offset = superblock_area_size;
  l.bitmap_bits = div_ceil(volume_size, p.bitmap_granularity);
  l.bitmap_bytes = div_ceil(div_ceil(l.bitmap_bits, 8), bitmap_page_size) * bitmap_page_size;
  l.al_offset = l.bitmap_offset + l.bitmap_bytes;
  l.al_bytes = uint64_t{p.al_ring_records} * al_record_size;
  l.al_extents = static_cast<uint32_t>(div_ceil(volume_size, p.al_extent_size));
  l.total_size = l.al_offset + l.al_bytes;
  return l;
}

std::string uuid_text(const std::array<uint8_t, 16>& u) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += digits[u[i] >> 4];
    s += digits[u[i] & 15];
  }
  return s;
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

void fill_random(void* buf, size_t len) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    const ssize_t n = ::getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "getrandom");
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
}

// Size in bytes of a regular file or block device; throws for anything else.
uint64_t device_size(int fd, const std::string& name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(errno, "cannot stat metadata " + name);
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    uint64_t size = 0;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) {
      throw_errno(errno, "cannot get the size of metadata device " + name);
    }
    return size;
  }
  throw std::runtime_error("metadata " + name + " is neither a regular file nor a block device");
}

void lock_exclusive(int fd, const std::string& name) {
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      throw std::runtime_error("metadata " + name + " is in use by another process (locked)");
    }
    throw_errno(errno, "cannot lock metadata " + name);
  }
}

void write_or_throw(int fd, const void* buf, size_t len, uint64_t off, const std::string& what) {
  const int rc = detail::pwrite_all(fd, buf, len, off);
  if (rc < 0) throw_errno(-rc, what);
}

void sync_or_throw(int fd, const std::string& what) {
  if (::fdatasync(fd) != 0) throw_errno(errno, what);
}

std::string slot_description(int i, sb_status s, const char* why) {
  std::string d = "slot " + std::to_string(i) + " (byte " +
                  std::to_string(superblock_slot_offset[i]) + "): " + to_string(s);
  if (why != nullptr && s != sb_status::empty && s != sb_status::bad_magic &&
      s != sb_status::bad_crc) {
    d += std::string(" (") + why + ")";
  }
  return d;
}

}  // namespace

// ---- Names ---------------------------------------------------------------------------------

const char* to_string(role r) noexcept {
  switch (r) {
    case role::secondary:
      return "secondary";
    case role::primary:
      return "primary";
  }
  return "?";
}

const char* to_string(disk_state d) noexcept {
  switch (d) {
    case disk_state::diskless:
      return "diskless";
    case disk_state::inconsistent:
      return "inconsistent";
    case disk_state::outdated:
      return "outdated";
    case disk_state::up_to_date:
      return "up_to_date";
  }
  return "?";
}

const char* to_string(resync_decision d) noexcept {
  switch (d) {
    case resync_decision::no_resync:
      return "no_resync";
    case resync_decision::source:
      return "source";
    case resync_decision::target:
      return "target";
    case resync_decision::full_sync_source:
      return "full_sync_source";
    case resync_decision::full_sync_target:
      return "full_sync_target";
    case resync_decision::split_brain:
      return "split_brain";
    case resync_decision::unrelated:
      return "unrelated";
  }
  return "?";
}

const char* to_string(sb_status s) noexcept {
  switch (s) {
    case sb_status::ok:
      return "valid";
    case sb_status::empty:
      return "empty (all zero)";
    case sb_status::bad_magic:
      return "bad magic (not tandem metadata)";
    case sb_status::bad_crc:
      return "CRC mismatch";
    case sb_status::bad_version:
      return "unsupported format version";
    case sb_status::bad_field:
      return "invalid field";
  }
  return "?";
}

// ---- Generation identifiers ---------------------------------------------------------------

resync_decision compare_generations(const generation_ids& mine,
                                    const generation_ids& peer) noexcept {
  // 1. Both disks new: nothing to copy either way.
  if (mine.current == 0 && peer.current == 0) return resync_decision::no_resync;
  // 2. One disk new: it receives everything.
  if (peer.current == 0) return resync_decision::full_sync_source;
  if (mine.current == 0) return resync_decision::full_sync_target;
  // 3. Same data.
  if (mine.current == peer.current) return resync_decision::no_resync;
  // 4. One side moved on from where the other still is; its bitmap covers the difference.
  const bool i_am_ahead = mine.bitmap != 0 && mine.bitmap == peer.current;
  const bool peer_is_ahead = peer.bitmap != 0 && peer.bitmap == mine.current;
  if (i_am_ahead && peer_is_ahead) return resync_decision::split_brain;
  if (i_am_ahead) return resync_decision::source;
  if (peer_is_ahead) return resync_decision::target;
  // 5. One side is older than the other's bitmap: only a full copy is sure to cover it.
  const auto in_history = [](uint64_t id, const generation_ids& g) {
    return id != 0 && (g.history[0] == id || g.history[1] == id);
  };
  const bool peer_in_my_history = in_history(peer.current, mine);
  const bool me_in_peer_history = in_history(mine.current, peer);
  if (peer_in_my_history && !me_in_peer_history) return resync_decision::full_sync_source;
  if (me_in_peer_history && !peer_in_my_history) return resync_decision::full_sync_target;
  // 6. Both moved on from a common ancestor (each side's current is new to the other).
  const uint64_t mine_old[3] = {mine.bitmap, mine.history[0], mine.history[1]};
  const uint64_t peer_old[3] = {peer.bitmap, peer.history[0], peer.history[1]};
  for (const uint64_t a : mine_old) {
    for (const uint64_t b : peer_old) {
      if (a != 0 && a == b) return resync_decision::split_brain;
    }
  }
  if (peer_in_my_history && me_in_peer_history) return resync_decision::split_brain;
  // 7. Nothing in common.
  return resync_decision::unrelated;
}

uint64_t new_generation_id() {
  uint64_t id = 0;
  while (id == 0)
    fill_random(&id, sizeof id);
  return id;
}

void start_new_current(generation_ids& g, uint64_t fresh) noexcept {
  if (g.bitmap == 0) {
    g.bitmap = g.current;
  } else if (g.current != 0 && g.current != g.bitmap) {
    g.history[1] = g.history[0];
    g.history[0] = g.current;
  }
  g.current = fresh;
}

void finish_resync_as_source(generation_ids& g) noexcept {
  if (g.bitmap == 0) return;
  g.history[1] = g.history[0];
  g.history[0] = g.bitmap;
  g.bitmap = 0;
}

void finish_resync_as_target(generation_ids& g, const generation_ids& source) noexcept {
  g.current = source.current;
  g.bitmap = 0;
  g.history = source.history;
  if (source.bitmap != 0) {
    g.history[1] = g.history[0];
    g.history[0] = source.bitmap;
  }
}

// ---- Parameters and layout ------------------------------------------------------------------

const char* check_params(uint64_t volume_size, const format_params& p) noexcept {
  if (p.block_size != 512 && p.block_size != 4096) return "block size must be 512 or 4096";
  if (volume_size == 0) return "volume size is 0";
  if (volume_size % p.block_size != 0) return "volume size is not a multiple of the block size";
  if (volume_size > max_volume_size) return "volume size exceeds 1 EiB";
  if (!std::has_single_bit(p.bitmap_granularity) || p.bitmap_granularity < p.block_size ||
      p.bitmap_granularity > max_chunk) {
    return "bitmap granularity must be a power of two between the block size and 1 GiB";
  }
  if (!std::has_single_bit(p.al_extent_size) || p.al_extent_size < p.bitmap_granularity ||
      p.al_extent_size < 4096 || p.al_extent_size > max_chunk) {
    return "activity-log extent size must be a power of two between the bitmap granularity "
           "(and 4 KiB) and 1 GiB";
  }
  if (p.al_slots == 0 || p.al_slots > al_max_slots) return "activity-log slots must be 1..1012";
  if (p.al_ring_records < al_min_ring_records || p.al_ring_records > al_max_ring_records) {
    return "activity-log ring must hold 2..1024 records";
  }
  if (div_ceil(volume_size, p.al_extent_size) >= UINT32_MAX) {
    return "too many activity-log extents: use a larger extent size";
  }
  if (div_ceil(div_ceil(volume_size, p.bitmap_granularity), 8) > max_bitmap_bytes) {
    return "the bitmap would exceed 1 GiB: use a larger bitmap granularity";
  }
  return nullptr;
}

metadata_layout compute_layout(uint64_t volume_size, const format_params& p) {
  if (const char* why = check_params(volume_size, p)) throw std::invalid_argument(why);
  return layout_of(volume_size, p);
}

uint64_t required_size(uint64_t volume_size, const format_params& p) {
  return compute_layout(volume_size, p).total_size;
}

// ---- Superblock codec -------------------------------------------------------------------------

void encode_superblock(const superblock& sb, std::span<uint8_t, meta_block_size> slot) noexcept {
  sb_raw r;
  std::memset(&r, 0, sizeof r);
  std::memcpy(r.magic, superblock_magic, sizeof r.magic);
  r.version = le(format_version);
  r.seq = le(sb.seq);
  std::memcpy(r.uuid, sb.id.uuid.data(), sizeof r.uuid);
  r.volume_size = le(sb.id.volume_size);
  const format_params& p = sb.id.params;
  r.block_size = le(p.block_size);
  r.bitmap_granularity = le(p.bitmap_granularity);
  r.al_extent_size = le(p.al_extent_size);
  r.al_slots = le(p.al_slots);
  r.al_ring_records = le(p.al_ring_records);
  r.flags = le(sb.state.flags);
  r.role = static_cast<uint8_t>(sb.state.role);
  r.disk_state = static_cast<uint8_t>(sb.state.disk);
  r.peer_node_id = le(sb.state.peer_node_id);
  r.primary_since = le(sb.state.primary_since);
  r.gen_current = le(sb.state.gen.current);
  r.gen_bitmap = le(sb.state.gen.bitmap);
  r.gen_history[0] = le(sb.state.gen.history[0]);
  r.gen_history[1] = le(sb.state.gen.history[1]);
  if (check_params(sb.id.volume_size, p) == nullptr) {
    const metadata_layout l = layout_of(sb.id.volume_size, p);
    r.meta_size = le(l.total_size);
    r.bitmap_offset = le(l.bitmap_offset);
    r.bitmap_bytes = le(l.bitmap_bytes);
    r.al_offset = le(l.al_offset);
  }
  std::memcpy(slot.data(), &r, sizeof r);
  r.crc = le(slot_crc(slot));
  std::memcpy(slot.data() + offsetof(sb_raw, crc), &r.crc, sizeof r.crc);
}

sb_status decode_superblock(std::span<const uint8_t, meta_block_size> slot, superblock& out,
                            const char** why) noexcept {
  const char* unused = nullptr;
  const char*& reason = why != nullptr ? *why : unused;
  reason = nullptr;
  if (all_zero(slot)) {
    reason = "all zero";
    return sb_status::empty;
  }
  sb_raw r;
  std::memcpy(&r, slot.data(), sizeof r);
  if (std::memcmp(r.magic, superblock_magic, sizeof r.magic) != 0) {
    reason = "bad magic";
    return sb_status::bad_magic;
  }
  if (le(r.crc) != slot_crc(slot)) {
    reason = "CRC mismatch";
    return sb_status::bad_crc;
  }
  out.seq = le(r.seq);
  if (le(r.version) != format_version) {
    reason = "unsupported format version";
    return sb_status::bad_version;
  }
  superblock sb;
  sb.seq = out.seq;
  std::memcpy(sb.id.uuid.data(), r.uuid, sizeof r.uuid);
  sb.id.volume_size = le(r.volume_size);
  format_params& p = sb.id.params;
  p.block_size = le(r.block_size);
  p.bitmap_granularity = le(r.bitmap_granularity);
  p.al_extent_size = le(r.al_extent_size);
  p.al_slots = le(r.al_slots);
  p.al_ring_records = le(r.al_ring_records);
  sb.state.flags = le(r.flags);
  sb.state.peer_node_id = le(r.peer_node_id);
  sb.state.primary_since = le(r.primary_since);
  sb.state.gen.current = le(r.gen_current);
  sb.state.gen.bitmap = le(r.gen_bitmap);
  sb.state.gen.history = {le(r.gen_history[0]), le(r.gen_history[1])};
  if (sb.seq == 0) {
    reason = "sequence number 0";
    return sb_status::bad_field;
  }
  if (r.reserved0 != 0 || !all_zero(r.reserved)) {
    reason = "reserved bytes are not zero";
    return sb_status::bad_field;
  }
  if (r.role > static_cast<uint8_t>(role::primary)) {
    reason = "invalid role";
    return sb_status::bad_field;
  }
  if (r.disk_state > static_cast<uint8_t>(disk_state::up_to_date)) {
    reason = "invalid disk state";
    return sb_status::bad_field;
  }
  sb.state.role = static_cast<role>(r.role);
  sb.state.disk = static_cast<disk_state>(r.disk_state);
  if ((sb.state.flags & ~flags_known) != 0) {
    reason = "unknown flags";
    return sb_status::bad_field;
  }
  if (const char* bad = check_params(sb.id.volume_size, p)) {
    reason = bad;
    return sb_status::bad_field;
  }
  const metadata_layout l = layout_of(sb.id.volume_size, p);
  if (le(r.meta_size) != l.total_size || le(r.bitmap_offset) != l.bitmap_offset ||
      le(r.bitmap_bytes) != l.bitmap_bytes || le(r.al_offset) != l.al_offset) {
    reason = "layout fields disagree with the volume parameters";
    return sb_status::bad_field;
  }
  out = sb;
  return sb_status::ok;
}

// ---- The store ----------------------------------------------------------------------------

struct metadata_store::impl {
  std::string name;
  int fd = -1;
  superblock sb;  // seq and id as committed; state is the working copy
  int slot = 0;
  metadata_layout layout;
  std::optional<dirty_bitmap> bitmap;
  std::optional<activity_log> al;
  activity_log::scan_result scan;
  bool needs_replay = false;
  std::vector<uint8_t> slot_buf = std::vector<uint8_t>(meta_block_size);

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    if (fd >= 0) ::close(fd);
  }

  // Validates and loads the metadata on `fd` (owned, locked).
  void load();
};

void metadata_store::impl::load() {
  const uint64_t size = device_size(fd, name);
  if (size < superblock_area_size) {
    throw std::runtime_error("metadata " + name + " has only " + std::to_string(size) +
                             " bytes: too small for the two superblocks (" +
                             std::to_string(superblock_area_size) + "); not tandem metadata");
  }
  uint8_t raw[2][meta_block_size];
  superblock dec[2];
  sb_status st[2];
  const char* why[2] = {};
  for (int i = 0; i < 2; ++i) {
    const ssize_t n = detail::pread_all(fd, raw[i], meta_block_size, superblock_slot_offset[i]);
    if (n < 0) throw_errno(static_cast<int>(-n), "cannot read metadata " + name);
    if (static_cast<size_t>(n) != meta_block_size) {
      throw std::runtime_error("metadata " + name + ": short read of superblock slot " +
                               std::to_string(i));
    }
    st[i] = decode_superblock(std::span<const uint8_t, meta_block_size>(raw[i]), dec[i], &why[i]);
  }
  // The newest CRC-valid slot decides, even when it is a version or field this build refuses:
  // falling back to an older copy would silently undo a committed change.
  const auto crc_valid = [](sb_status s) {
    return s == sb_status::ok || s == sb_status::bad_version || s == sb_status::bad_field;
  };
  int best = -1;
  for (int i = 0; i < 2; ++i) {
    if (crc_valid(st[i]) && (best < 0 || dec[i].seq > dec[best].seq)) best = i;
  }
  if (best < 0) {
    std::string msg = "metadata " + name +
                      " holds no valid superblock: " + slot_description(0, st[0], why[0]) + "; " +
                      slot_description(1, st[1], why[1]);
    if (st[0] == sb_status::empty && st[1] == sb_status::empty) {
      msg += " (never initialised: create it first)";
    } else if (st[0] == sb_status::bad_magic && st[1] == sb_status::bad_magic) {
      msg += " (not tandem metadata)";
    } else {
      msg += " (corrupt; it is not reinitialised automatically)";
    }
    throw std::runtime_error(msg);
  }
  if (st[best] == sb_status::bad_version) {
    uint32_t version = 0;
    std::memcpy(&version, raw[best] + offsetof(sb_raw, version), sizeof version);
    throw std::runtime_error("metadata " + name + ": superblock slot " + std::to_string(best) +
                             " (seq " + std::to_string(dec[best].seq) + ") has format version " +
                             std::to_string(le(version)) + "; this build reads version " +
                             std::to_string(format_version));
  }
  if (st[best] == sb_status::bad_field) {
    throw std::runtime_error("metadata " + name + ": superblock slot " + std::to_string(best) +
                             " (seq " + std::to_string(dec[best].seq) + ") is invalid: " +
                             why[best] + "; corrupt metadata is not reinitialised automatically");
  }
  sb = dec[best];
  slot = best;
  layout = layout_of(sb.id.volume_size, sb.id.params);
  if (size < layout.total_size) {
    throw std::runtime_error(
        "metadata " + name + " has " + std::to_string(size) +
        " bytes, but the superblock describes a volume of " + std::to_string(sb.id.volume_size) +
        " bytes whose metadata (bitmap " + std::to_string(layout.bitmap_bytes) +
        " bytes, activity log " + std::to_string(layout.al_bytes) + " bytes) needs " +
        std::to_string(layout.total_size) + " bytes: truncated, or the wrong device");
  }
  bitmap.emplace(sb.id.volume_size, sb.id.params.bitmap_granularity);
  bitmap->attach(fd, layout.bitmap_offset);
  bitmap->load(name);
  al_config cfg;
  cfg.volume_size = sb.id.volume_size;
  cfg.extent_size = sb.id.params.al_extent_size;
  cfg.slots = sb.id.params.al_slots;
  cfg.ring_records = sb.id.params.al_ring_records;
  cfg.ring_offset = layout.al_offset;
  cfg.uuid = sb.id.uuid;
  al.emplace(cfg, fd);
  needs_replay = (sb.state.flags & flag_primary_active) != 0;
  try {
    scan = al->scan(needs_replay);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "metadata " + name + ": " + e.what());
  }
}

metadata_store::metadata_store(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}
metadata_store::metadata_store(metadata_store&&) noexcept = default;
metadata_store& metadata_store::operator=(metadata_store&&) noexcept = default;
metadata_store::~metadata_store() = default;

metadata_store metadata_store::open_fd(int fd, const std::string& name) {
  const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) throw_errno(errno, "cannot duplicate the descriptor of metadata " + name);
  auto p = std::make_unique<impl>();
  p->fd = own;
  p->name = name;
  lock_exclusive(p->fd, name);
  p->load();
  return metadata_store(std::move(p));
}

metadata_store metadata_store::open(const std::string& path) {
  const fd_guard fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) throw_errno(errno, "cannot open metadata " + path);
  return open_fd(fd.get(), path);
}

metadata_store metadata_store::create_fd(int fd, const std::string& name, uint64_t volume_size,
                                         const format_params& params, const create_options& opt) {
  if (const char* why = check_params(volume_size, params)) {
    throw std::runtime_error("cannot create metadata " + name + " for a volume of " +
                             std::to_string(volume_size) + " bytes: " + why);
  }
  const metadata_layout l = layout_of(volume_size, params);
  const fd_guard own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (own.get() < 0) throw_errno(errno, "cannot duplicate the descriptor of metadata " + name);
  lock_exclusive(own.get(), name);

  uint64_t size = device_size(own.get(), name);
  struct stat st {};
  if (::fstat(own.get(), &st) != 0) throw_errno(errno, "cannot stat metadata " + name);

  // Never overwrite valid metadata unless told to.
  if (!opt.force) {
    for (int i = 0; i < 2; ++i) {
      uint8_t raw[meta_block_size] = {};
      const ssize_t n = detail::pread_all(own.get(), raw, sizeof raw, superblock_slot_offset[i]);
      if (n < 0) throw_errno(static_cast<int>(-n), "cannot read metadata " + name);
      if (static_cast<size_t>(n) != sizeof raw) continue;
      superblock old;
      const sb_status s = decode_superblock(std::span<const uint8_t, meta_block_size>(raw), old);
      if (s == sb_status::ok || s == sb_status::bad_version || s == sb_status::bad_field) {
        std::string what = s == sb_status::ok ? "volume " + uuid_text(old.id.uuid) + ", " +
                                                    std::to_string(old.id.volume_size) + " bytes"
                                              : std::string(to_string(s));
        throw std::runtime_error(
            "refusing to create metadata on " + name + ": it already holds tandem metadata (" +
            what + ", superblock slot " + std::to_string(i) + "); pass force to overwrite it");
      }
    }
  }
  if (size < l.total_size) {
    if (!S_ISREG(st.st_mode)) {
      throw std::runtime_error("metadata device " + name + " has " + std::to_string(size) +
                               " bytes; a volume of " + std::to_string(volume_size) +
                               " bytes needs " + std::to_string(l.total_size));
    }
    if (::ftruncate(own.get(), static_cast<off_t>(l.total_size)) != 0) {
      throw_errno(errno, "cannot extend metadata " + name);
    }
    size = l.total_size;
  }

  // Invalidate any old superblock first, then zero the bitmap and the activity log, and write
  // the new superblock last: a crash part-way leaves no valid superblock, never a valid one
  // over a half-initialised body.
  const std::vector<uint8_t> zeros(1u << 20, 0);
  write_or_throw(own.get(), zeros.data(), superblock_area_size, 0, "cannot write metadata " + name);
  sync_or_throw(own.get(), "cannot sync metadata " + name);
  for (uint64_t off = l.bitmap_offset; off < l.total_size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), l.total_size - off));
    write_or_throw(own.get(), zeros.data(), n, off, "cannot write metadata " + name);
    off += n;
  }
  sync_or_throw(own.get(), "cannot sync metadata " + name);

  superblock sb;
  sb.seq = 1;
  if (opt.fixed_uuid) {
    sb.id.uuid = opt.uuid;
  } else {
    fill_random(sb.id.uuid.data(), sb.id.uuid.size());
  }
  sb.id.volume_size = volume_size;
  sb.id.params = params;
  std::vector<uint8_t> slot(meta_block_size);
  encode_superblock(sb, std::span<uint8_t, meta_block_size>(slot));
  write_or_throw(own.get(), slot.data(), slot.size(), superblock_slot_offset[0],
                 "cannot write the superblock of metadata " + name);
  sync_or_throw(own.get(), "cannot sync metadata " + name);

  auto p = std::make_unique<impl>();
  p->name = name;
  p->fd = ::fcntl(own.get(), F_DUPFD_CLOEXEC, 0);  // shares the open file and its lock
  if (p->fd < 0) throw_errno(errno, "cannot duplicate the descriptor of metadata " + name);
  p->load();
  return metadata_store(std::move(p));
}

metadata_store metadata_store::create(const std::string& path, uint64_t volume_size,
                                      const format_params& params, const create_options& opt) {
  bool created = false;
  int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (raw < 0 && errno == ENOENT) {
    raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | O_CREAT | O_EXCL, 0600);
    created = raw >= 0;
  }
  if (raw < 0) throw_errno(errno, "cannot open metadata " + path);
  const fd_guard fd(raw);
  try {
    return create_fd(fd.get(), path, volume_size, params, opt);
  } catch (...) {
    if (created) ::unlink(path.c_str());
    throw;
  }
}

const std::string& metadata_store::name() const noexcept {
  return p_->name;
}
const volume_identity& metadata_store::identity() const noexcept {
  return p_->sb.id;
}
const metadata_layout& metadata_store::layout() const noexcept {
  return p_->layout;
}
uint64_t metadata_store::seq() const noexcept {
  return p_->sb.seq;
}
int metadata_store::active_slot() const noexcept {
  return p_->slot;
}
const volume_state& metadata_store::state() const noexcept {
  return p_->sb.state;
}
volume_state& metadata_store::state() noexcept {
  return p_->sb.state;
}
dirty_bitmap& metadata_store::bitmap() noexcept {
  return *p_->bitmap;
}
activity_log& metadata_store::al() noexcept {
  return *p_->al;
}
const activity_log::scan_result& metadata_store::al_scan() const noexcept {
  return p_->scan;
}
bool metadata_store::needs_replay() const noexcept {
  return p_->needs_replay;
}

int metadata_store::commit() noexcept {
  impl& m = *p_;
  if (m.fd < 0) return -EBADF;
  superblock next = m.sb;
  next.seq = m.sb.seq + 1;
  encode_superblock(next, std::span<uint8_t, meta_block_size>(m.slot_buf));
  const int target = 1 - m.slot;
  int rc =
      detail::pwrite_all(m.fd, m.slot_buf.data(), meta_block_size, superblock_slot_offset[target]);
  if (rc == 0 && ::fdatasync(m.fd) != 0) rc = -errno;
  if (rc < 0) return rc;
  m.sb.seq = next.seq;
  m.slot = target;
  return 0;
}

int metadata_store::commit_activity_log() noexcept {
  impl& m = *p_;
  if (m.al->drops_pending() > 0 && m.al->needs_commit()) {
    const int rc = m.bitmap->flush();
    if (rc < 0) return rc;
  }
  return m.al->commit();
}

replay_result metadata_store::replay() {
  impl& m = *p_;
  replay_result r;
  if (!m.needs_replay) return r;
  r.replayed = true;
  r.al_seq = m.scan.newest_seq;
  if (m.scan.newest_invalid) {
    r.whole_volume = true;
    r.problem = m.scan.problem +
                ": the hot extents are unknown, so the whole volume is marked "
                "for resync";
    m.bitmap->set_all();
  } else {
    const uint64_t ext = m.sb.id.params.al_extent_size;
    for (const uint32_t e : m.al->replay_extents())
      (void)m.bitmap->set_range(uint64_t{e} * ext, ext);
    r.extents = static_cast<uint32_t>(m.al->replay_extents().size());
    if (m.scan.corrupt > 0) {
      r.problem = m.scan.problem;
    } else if (m.scan.torn > 0) {
      r.problem = "ignored the torn record of the transaction being written at the crash";
    }
  }
  int rc = m.bitmap->flush();
  if (rc < 0) throw_errno(-rc, "metadata " + m.name + ": cannot write the bitmap during replay");
  m.al->replay_done();
  if (r.whole_volume) {
    rc = m.al->reset_ring();
    if (rc < 0) throw_errno(-rc, "metadata " + m.name + ": cannot reset the activity log");
  }
  rc = m.al->clear();
  if (rc == 0) rc = m.al->commit();
  if (rc < 0) throw_errno(-rc, "metadata " + m.name + ": cannot write the activity log");
  m.sb.state.flags = (m.sb.state.flags & ~flag_primary_active) | flag_crashed_primary;
  rc = commit();
  if (rc < 0) throw_errno(-rc, "metadata " + m.name + ": cannot commit the superblock");
  m.needs_replay = false;
  return r;
}

void metadata_store::mark_clean() {
  impl& m = *p_;
  if (m.fd < 0) throw std::runtime_error("metadata " + m.name + " is closed");
  if (m.needs_replay) replay();
  if (m.al->writes_in_flight() > 0) {
    throw std::runtime_error("metadata " + m.name + ": cannot mark the metadata clean with " +
                             std::to_string(m.al->writes_in_flight()) + " writes in flight");
  }
  int rc = m.bitmap->flush();
  if (rc < 0) throw_errno(-rc, "metadata " + m.name + ": cannot write the bitmap");
  rc = m.al->clear();
  if (rc == 0) rc = m.al->commit();
  if (rc < 0) throw_errno(-rc, "metadata " + m.name + ": cannot write the activity log");
  m.sb.state.flags &= ~flag_primary_active;
  rc = commit();
  if (rc < 0) throw_errno(-rc, "metadata " + m.name + ": cannot commit the superblock");
}

void metadata_store::close_clean() {
  impl& m = *p_;
  if (m.fd < 0) return;
  mark_clean();
  ::close(m.fd);
  m.fd = -1;
  m.bitmap->attach(-1, m.layout.bitmap_offset);
  m.al->attach(-1);
}

}  // namespace tandem::dp::volume
