// SPDX-License-Identifier: Apache-2.0
// A mirrored volume's on-disk metadata: superblocks, generation ids, and the metadata store.
//
// The metadata lives on its own small device or file (the seeds' "cluster partition"), laid out
// as (docs/volume-metadata.md has every field):
//
//   0       4 KiB   superblock slot 0
//   4 KiB   4 KiB   superblock slot 1
//   8 KiB   B       dirty bitmap, 1 bit per `bitmap_granularity` bytes, in 4 KiB pages
//   8K + B  R*4 KiB activity-log ring: R transaction records of 4 KiB
//
// A superblock commit writes the slot NOT holding the newest copy with seq + 1 and fdatasyncs,
// so a torn write always leaves the other slot valid; open takes the valid slot with the highest
// seq. All integers are little-endian. Plain blocking pread / pwrite / fdatasync: the metadata
// is off the data path except for activity-log transactions, which are batched (activity_log.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dataplane/volume/activity_log.h"
#include "dataplane/volume/bitmap.h"

namespace tandem::dp::volume {

inline constexpr size_t meta_block_size = 4096;  // superblock slot, bitmap page, AL record
inline constexpr uint32_t format_version = 1;
inline constexpr uint64_t superblock_slot_offset[2] = {0, meta_block_size};
inline constexpr uint64_t superblock_area_size = 2 * meta_block_size;
inline constexpr char superblock_magic[8] = {'T', 'A', 'N', 'D', 'E', 'M', 'M', 'D'};

enum class role : uint8_t { secondary = 0, primary = 1 };
enum class disk_state : uint8_t { diskless = 0, inconsistent = 1, outdated = 2, up_to_date = 3 };
[[nodiscard]] const char* to_string(role r) noexcept;
[[nodiscard]] const char* to_string(disk_state d) noexcept;

// Superblock flags.
// Set (and committed) before the first write as primary, cleared by a clean close, a demotion
// or a replay: found set at open, the node crashed while primary and the activity log must be
// replayed into the bitmap before the volume is used.
inline constexpr uint32_t flag_primary_active = 1u << 0;
// A resync is running; this node is its target when disk_state is inconsistent.
inline constexpr uint32_t flag_resync_in_progress = 1u << 1;
// Set by replay(): this node crashed as primary, so the regions its activity log named are dirty
// in its bitmap; with equal current ids the peer must take them from this node. The engine
// clears it when that resync is done.
inline constexpr uint32_t flag_crashed_primary = 1u << 2;
inline constexpr uint32_t flags_known =
    flag_primary_active | flag_resync_in_progress | flag_crashed_primary;

// ---- Generation identifiers ------------------------------------------------------------------

// DRBD-style data generations. `current` names the data as it is now (0: never written, a new
// disk). When a primary starts writing without its peer, `bitmap` keeps the current id of that
// moment (the bitmap records every change since) and `current` gets a fresh id. `history` keeps
// the two ids before those, newest first.
struct generation_ids {
  uint64_t current = 0;
  uint64_t bitmap = 0;
  std::array<uint64_t, 2> history{};
  bool operator==(const generation_ids&) const = default;
};

enum class resync_decision : uint8_t {
  no_resync,         // same data (current ids equal, or both disks new)
  source,            // I am ahead of the peer; my bitmap covers the difference
  target,            // the peer is ahead; its bitmap covers the difference
  full_sync_source,  // I must send the whole volume (the peer is new, or older than my bitmap)
  full_sync_target,  // I must receive the whole volume
  split_brain,       // both sides changed the data independently since a common ancestor
  unrelated,         // no common history: different data sets, never resynced automatically
};
[[nodiscard]] const char* to_string(resync_decision d) noexcept;

// The resync decision when `mine` meets `peer` (the rules, in order, are the table in
// docs/volume-metadata.md). Pure and symmetric: compare(a, b) is the mirror image of
// compare(b, a) (source <-> target).
[[nodiscard]] resync_decision compare_generations(const generation_ids& mine,
                                                  const generation_ids& peer) noexcept;

// A fresh random non-zero generation id (getrandom). Throws std::system_error if the kernel's
// random source fails.
[[nodiscard]] uint64_t new_generation_id();

// A primary starts writing without its peer (or is promoted without it): `bitmap` takes the
// current id if it was 0 (otherwise the bitmap already covers everything since an older id and
// the current id goes to the history), and `current` becomes `fresh`.
void start_new_current(generation_ids& g, uint64_t fresh) noexcept;
// The resync source finished: the bitmap id moves into the history and `bitmap` becomes 0.
void finish_resync_as_source(generation_ids& g) noexcept;
// The resync target finished: it takes the source's ids, with no bitmap id.
void finish_resync_as_target(generation_ids& g, const generation_ids& source) noexcept;

// ---- Parameters, identity, state, layout ---------------------------------------------------

struct format_params {
  uint32_t block_size = 4096;               // logical block size: 512 or 4096
  uint32_t bitmap_granularity = 64u << 10;  // volume bytes per bitmap bit, power of two
  uint32_t al_extent_size = 4u << 20;       // activity-log extent, power of two, >= granularity
  uint32_t al_slots = al_default_slots;     // hot extents, 1 .. al_max_slots
  uint32_t al_ring_records = 16;            // AL ring length in 4 KiB records, 2 .. 1024
  bool operator==(const format_params&) const = default;
};

// Fixed at create.
struct volume_identity {
  std::array<uint8_t, 16> uuid{};
  uint64_t volume_size = 0;  // bytes, a multiple of block_size
  format_params params;
  bool operator==(const volume_identity&) const = default;
};

// Changes over the volume's life; edit through metadata_store::state() and commit().
struct volume_state {
  enum role role = role::secondary;
  enum disk_state disk = disk_state::inconsistent;
  uint32_t flags = 0;
  uint32_t peer_node_id = 0;  // the peer last connected (0: none yet)
  generation_ids gen;
  // When this node last became primary (CLOCK_REALTIME, ns; 0: never, or metadata from before
  // the field): the split-brain policy discard-younger-primary compares it.
  uint64_t primary_since = 0;
  bool operator==(const volume_state&) const = default;
};

struct superblock {
  uint64_t seq = 0;
  volume_identity id;
  volume_state state;
  bool operator==(const superblock&) const = default;
};

// Where everything is, in bytes from the start of the metadata device.
struct metadata_layout {
  uint64_t bitmap_offset = 0;
  uint64_t bitmap_bytes = 0;  // whole 4 KiB pages
  uint64_t bitmap_bits = 0;
  uint64_t al_offset = 0;
  uint64_t al_bytes = 0;
  uint32_t al_extents = 0;  // activity-log extents covering the volume
  uint64_t total_size = 0;  // the metadata device must be at least this large
};

// Why `volume_size` with `p` is not a valid volume (a static string), or nullptr when it is.
[[nodiscard]] const char* check_params(uint64_t volume_size, const format_params& p) noexcept;
// The layout; throws std::invalid_argument with check_params' reason when invalid.
[[nodiscard]] metadata_layout compute_layout(uint64_t volume_size, const format_params& p = {});
// Bytes the metadata device needs for a volume of `volume_size` bytes (for tools sizing it).
[[nodiscard]] uint64_t required_size(uint64_t volume_size, const format_params& p = {});

// ---- Superblock codec (pure, no I/O; the fuzz target drives it) ----------------------------

enum class sb_status : uint8_t {
  ok,
  empty,        // all zero: never written
  bad_magic,    // not tandem metadata
  bad_crc,      // torn or corrupt
  bad_version,  // CRC-valid but a format version this build does not read
  bad_field,    // CRC-valid but a field is invalid (reserved bytes, enum, parameters, layout)
};
[[nodiscard]] const char* to_string(sb_status s) noexcept;

// Encodes `sb` into a 4 KiB slot image (reserved bytes zero, CRC filled in).
void encode_superblock(const superblock& sb, std::span<uint8_t, meta_block_size> slot) noexcept;
// Decodes one 4 KiB slot image. Checks, in this order: all-zero, magic, CRC, version, fields.
// `out.seq` is filled for bad_version and bad_field too (the slot is CRC-valid). When `why` is
// given it receives a static description of what is wrong (for messages).
[[nodiscard]] sb_status decode_superblock(std::span<const uint8_t, meta_block_size> slot,
                                          superblock& out, const char** why = nullptr) noexcept;

// ---- The store ---------------------------------------------------------------------------

struct create_options {
  bool force = false;       // overwrite a target that already holds valid tandem metadata
  bool fixed_uuid = false;  // use `uuid` (tests, reproducible images) instead of a random one
  std::array<uint8_t, 16> uuid{};
};

// What replay() did.
struct replay_result {
  bool replayed = false;      // the node had crashed while primary (flag_primary_active)
  uint32_t extents = 0;       // hot extents marked dirty in the bitmap
  bool whole_volume = false;  // the newest AL record is CRC-valid but invalid: all marked dirty
  uint64_t al_seq = 0;        // the transaction replayed (0: none)
  std::string problem;  // why whole_volume is set, else corrupt older records or a torn record
};

// One volume's metadata device, owned by one thread (no locks). Create / open / replay /
// close_clean are setup code and throw; commit(), bitmap().flush() and the activity log return
// negative errno, so the volume's lcore may call them.
//
// Destroying the store without close_clean() leaves the metadata as after a crash (the
// clean-shutdown flag stays as it was committed); that is how the tests simulate a crash.
class metadata_store {
 public:
  // Initialises new metadata for a volume of `volume_size` bytes at `path` (a regular file,
  // created with mode 0600 and extended to required_size() if needed, or a block device at
  // least that large). Refuses (std::runtime_error naming the path) a target that already holds
  // a CRC-valid tandem superblock in either slot unless `opt.force`. The new volume is
  // secondary, inconsistent, generation ids zero. The superblock is written last, so a crash
  // part-way leaves no valid metadata behind.
  static metadata_store create(const std::string& path, uint64_t volume_size,
                               const format_params& params = {}, const create_options& opt = {});
  // The same on an open descriptor (which is dup'ed; the caller keeps its own); `name` is used
  // in messages.
  static metadata_store create_fd(int fd, const std::string& name, uint64_t volume_size,
                                  const format_params& params = {}, const create_options& opt = {});

  // Validates and loads existing metadata (read-write, locked with flock against a second
  // opener). Never writes. Throws std::runtime_error naming the path and what is wrong: no valid
  // superblock (each slot's problem: bad magic, CRC mismatch, ...), an unsupported version, an
  // invalid field, a device smaller than the layout needs, a corrupt bitmap; std::system_error
  // for I/O errors. Corrupt metadata is never reinitialised.
  static metadata_store open(const std::string& path);
  static metadata_store open_fd(int fd, const std::string& name);

  metadata_store(metadata_store&&) noexcept;
  metadata_store& operator=(metadata_store&&) noexcept;
  ~metadata_store();

  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] const volume_identity& identity() const noexcept;
  [[nodiscard]] const metadata_layout& layout() const noexcept;
  [[nodiscard]] uint64_t seq() const noexcept;     // of the newest committed superblock
  [[nodiscard]] int active_slot() const noexcept;  // the slot holding it (0 or 1)
  [[nodiscard]] const volume_state& state() const noexcept;
  [[nodiscard]] volume_state& state() noexcept;  // edit, then commit()

  // Writes the state as a new superblock (seq + 1) into the other slot and fdatasyncs.
  // 0, or negative errno (the committed state on disk is then still the previous one).
  [[nodiscard]] int commit() noexcept;

  [[nodiscard]] dirty_bitmap& bitmap() noexcept;
  [[nodiscard]] activity_log& al() noexcept;

  // Persists an activity-log transaction the right way round: when it drops extents from the
  // hot set, the bitmap's changed pages are made durable first (bits set for an extent are
  // only safe once the extent is hot or the bits are on disk). Returns al().commit()'s value.
  [[nodiscard]] int commit_activity_log() noexcept;

  // What open found in the activity-log ring (torn or corrupt records are reported here).
  [[nodiscard]] const activity_log::scan_result& al_scan() const noexcept;

  // True after open when the node crashed while primary: replay() must run before the
  // activity log can commit (it refuses with -ESTALE until then).
  [[nodiscard]] bool needs_replay() const noexcept;
  // Marks every extent of the newest valid activity-log transaction dirty (the whole volume,
  // and the ring is zeroed, when the newest record is CRC-valid but invalid), flushes the
  // bitmap, writes an empty AL transaction and commits the superblock with flag_primary_active
  // cleared and flag_crashed_primary set. Does nothing (replayed == false) when not needed.
  // Call it before noting writes. Throws std::system_error on I/O errors.
  replay_result replay();

  // The clean state, e.g. for a demotion: needs no write in flight (throws std::runtime_error
  // otherwise). Replays first if needed, flushes the bitmap, empties the activity log on disk,
  // clears flag_primary_active and commits. Throws std::system_error on I/O errors.
  void mark_clean();
  // Clean shutdown: mark_clean(), then closes the device. The store is unusable afterwards
  // except for destruction (commit() returns -EBADF).
  void close_clean();

 private:
  struct impl;
  explicit metadata_store(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

}  // namespace tandem::dp::volume
