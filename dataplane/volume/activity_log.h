// SPDX-License-Identifier: Apache-2.0
// The activity log: the hot extents a primary may be writing, recorded in batched transactions.
//
// The volume is cut into extents (default 4 MiB). At most `slots` of them are hot. A write may
// only be issued once every extent it touches is hot ON DISK, so after a primary crash the
// extents of the newest transaction bound what can differ from the peer: replaying them into
// the bitmap makes the resync cover them, and nothing else needs resyncing.
//
// Batching: note_write() only updates memory. Writes to extents already hot on disk go ahead at
// once (0); writes that touch a new extent get a positive answer and wait. One commit() then
// writes a single 4 KiB transaction (a snapshot of the whole hot set) covering every extent
// queued meanwhile, however many writes asked, and the caller releases all of them. The common
// case (a write to a hot extent) costs a hash lookup and a reference count.
//
// Eviction: a new extent takes a free slot or evicts the least recently idle hot extent; an
// extent with writes in flight (note_write without complete_write) is never evicted.
//
// One owner thread, no locks. Everything after construction is allocation-free and returns
// counts or negative errno.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tandem::dp::volume {

inline constexpr size_t al_record_size = 4096;
inline constexpr size_t al_record_header = 48;
inline constexpr uint32_t al_max_slots = (al_record_size - al_record_header) / 4;  // 1012
inline constexpr uint32_t al_default_slots = 1000;
inline constexpr uint32_t al_min_ring_records = 2;
inline constexpr uint32_t al_max_ring_records = 1024;
inline constexpr char al_magic[8] = {'T', 'A', 'N', 'D', 'E', 'M', 'A', 'L'};

struct al_config {
  uint64_t volume_size = 0;
  uint32_t extent_size = 4u << 20;  // power of two
  uint32_t slots = al_default_slots;
  uint32_t ring_records = 16;
  uint64_t ring_offset = 0;        // byte offset of record 0 on the metadata device
  std::array<uint8_t, 16> uuid{};  // the volume's; every record carries it
};

// One decoded transaction record.
struct al_record {
  uint64_t seq = 0;
  std::array<uint8_t, 16> uuid{};
  uint32_t extent_size = 0;
  uint32_t count = 0;
  std::array<uint32_t, al_max_slots> extents{};  // strictly increasing, count of them
};

enum class al_record_status : uint8_t {
  ok,
  empty,      // all zero: never written
  bad_magic,  // not an AL record (or garbage)
  bad_crc,    // torn or corrupt
  bad_field,  // CRC-valid but invalid: count, order, range, reserved bytes, uuid, extent size
};
[[nodiscard]] const char* to_string(al_record_status s) noexcept;

// Encodes a record (extents must be strictly increasing, count <= al_max_slots).
void encode_al_record(const al_record& r, std::span<uint8_t, al_record_size> out) noexcept;
// Decodes and validates one record against the volume (`cfg` gives uuid, extent size, extent
// count and slot count). Pure, no I/O.
[[nodiscard]] al_record_status decode_al_record(std::span<const uint8_t, al_record_size> in,
                                                const al_config& cfg, al_record& out) noexcept;

class activity_log {
 public:
  // Allocates everything (setup). Throws std::invalid_argument on a bad configuration. `fd`
  // (not owned) is the metadata device; -1 leaves only the in-memory part usable (tests).
  explicit activity_log(const al_config& cfg, int fd = -1);
  // Changes the metadata descriptor (-1: none; commit() then returns -EBADF).
  void attach(int fd) noexcept { fd_ = fd; }

  // ---- The write path -----------------------------------------------------------------
  // A write of [offset, offset + len) is about to be issued. Takes a reference on every extent
  // it touches and queues the ones not yet hot. Returns 0 when all of them are hot on disk (issue
  // the write now), a positive count of extents not yet on disk (wait for a commit; then
  // ready() is true), -EBUSY when there are not enough free or idle slots (nothing changed:
  // complete writes, commit, retry), -E2BIG when the range needs more extents than there are
  // slots, -EINVAL when it lies outside the volume. len 0 touches nothing and returns 0.
  [[nodiscard]] int note_write(uint64_t offset, uint64_t len) noexcept;
  // The write noted with the same range completed (or was abandoned): drops its references.
  void complete_write(uint64_t offset, uint64_t len) noexcept;
  // Every extent of the range is hot on disk (a queued write may be issued).
  [[nodiscard]] bool ready(uint64_t offset, uint64_t len) const noexcept;

  // ---- Transactions -------------------------------------------------------------------
  // Extents queued for the next transaction.
  [[nodiscard]] uint32_t pending() const noexcept { return pending_; }
  // A transaction would write something (pending extents, or the hot set changed otherwise).
  [[nodiscard]] bool needs_commit() const noexcept { return pending_ > 0 || changed_; }
  // Hot extents evicted since the last transaction was prepared: that transaction drops them,
  // so the bitmap pages covering them must be durable first (metadata_store does it).
  [[nodiscard]] uint32_t drops_pending() const noexcept { return drops_; }

  // Blocking: prepares, writes the record with pwrite and fdatasyncs, then marks the queued
  // extents hot on disk. Returns 1 when a transaction was written, 0 when there was nothing to
  // write, or negative errno (-ESTALE before a required replay; the extents stay queued).
  [[nodiscard]] int commit() noexcept;

  // The same in two halves, for a caller that writes the record itself (io_uring): encodes the
  // next transaction into `record` and gives its device offset. 1 = prepared, 0 = nothing to do,
  // -EBUSY when one is already prepared, -ESTALE before a required replay. The caller writes it
  // durably (write + flush / FUA) and calls commit_done with the result.
  [[nodiscard]] int prepare_commit(std::span<uint8_t, al_record_size> record,
                                   uint64_t& disk_offset) noexcept;
  void commit_done(bool ok) noexcept;

  // Drops every idle hot extent, so the next transaction records an empty (or smaller) set.
  // -EBUSY if any write is in flight or a transaction is prepared.
  [[nodiscard]] int clear() noexcept;

  // ---- Recovery (setup; called by metadata_store at open) -------------------------------
  struct scan_result {
    uint64_t newest_seq = 0;  // 0: no valid record
    uint32_t newest_index = 0;
    uint32_t valid = 0;    // CRC-valid records in the ring
    uint32_t torn = 0;     // the invalid record a crash may leave (after the newest)
    uint32_t corrupt = 0;  // other records that are not what the ring should hold
    // The newest CRC-valid record has an invalid field: the hot set is unknown, so a replay
    // must mark the whole volume.
    bool newest_invalid = false;
    std::string problem;  // describes newest_invalid, else the first corrupt record
  };
  // Reads the ring, finds the newest valid transaction and sets the next sequence number after
  // it. Its extents are kept for replay_extents(). With `replay_required` set, commits are
  // refused (-ESTALE) until replay_done(). Throws std::system_error on read errors.
  scan_result scan(bool replay_required);
  // Extents of the newest transaction found by scan().
  [[nodiscard]] std::span<const uint32_t> replay_extents() const noexcept;
  void replay_done() noexcept { replay_required_ = false; }
  // Zeroes every record of the ring (after a replay that could not trust it) and fdatasyncs;
  // sequence numbers continue. 0 or negative errno.
  [[nodiscard]] int reset_ring() noexcept;

  // ---- Introspection ------------------------------------------------------------------
  [[nodiscard]] const al_config& config() const noexcept { return cfg_; }
  [[nodiscard]] uint32_t extents() const noexcept { return extents_; }  // covering the volume
  [[nodiscard]] uint32_t hot() const noexcept { return used_; }         // slots in use
  [[nodiscard]] bool is_hot(uint32_t extent) const noexcept;
  [[nodiscard]] uint32_t refs(uint32_t extent) const noexcept;
  [[nodiscard]] uint64_t next_seq() const noexcept { return next_seq_; }
  [[nodiscard]] uint64_t transactions() const noexcept { return transactions_; }
  [[nodiscard]] uint64_t evictions() const noexcept { return evictions_; }
  [[nodiscard]] uint64_t writes_in_flight() const noexcept { return in_flight_writes_; }

 private:
  enum class slot_state : uint8_t { free, pending, in_txn, on_disk };
  struct slot {
    uint32_t extent = 0;
    uint32_t refs = 0;
    uint32_t prev = 0;  // idle list links (slot indices; npos = none)
    uint32_t next = 0;
    slot_state state = slot_state::free;
  };
  static constexpr uint32_t npos = UINT32_MAX;

  [[nodiscard]] bool extent_range(uint64_t offset, uint64_t len, uint32_t& first,
                                  uint32_t& last) const noexcept;
  [[nodiscard]] uint32_t lookup(uint32_t extent) const noexcept;  // slot index or npos
  void hash_insert(uint32_t extent, uint32_t s) noexcept;
  void hash_erase(uint32_t extent) noexcept;
  [[nodiscard]] size_t hash_home(uint32_t extent) const noexcept;
  void idle_push(uint32_t s) noexcept;  // at the most recent end
  void idle_remove(uint32_t s) noexcept;
  [[nodiscard]] uint32_t take_slot() noexcept;  // a free slot, else evicts the LRU idle one

  al_config cfg_;
  int fd_;
  uint32_t extents_ = 0;
  uint32_t extent_shift_ = 0;
  std::vector<slot> slots_;
  std::vector<uint32_t> hash_;  // slot index + 1; 0 = empty (linear probing)
  size_t hash_mask_ = 0;
  std::vector<uint32_t> free_;  // stack of free slot indices
  uint32_t idle_head_ = npos;   // least recently idle
  uint32_t idle_tail_ = npos;
  uint32_t idle_count_ = 0;
  uint32_t used_ = 0;
  uint32_t pending_ = 0;
  uint32_t drops_ = 0;
  bool changed_ = false;   // the hot set shrank without a pending extent (clear())
  bool prepared_ = false;  // a transaction is prepared and not yet done
  bool replay_required_ = false;
  uint64_t next_seq_ = 1;
  uint32_t last_written_count_ = 0;  // extents in the newest record on disk
  uint64_t transactions_ = 0;
  uint64_t evictions_ = 0;
  uint64_t in_flight_writes_ = 0;
  al_record scratch_;                // the record being prepared
  std::vector<uint8_t> record_buf_;  // commit()'s 4 KiB image
  std::vector<uint32_t> replay_;     // the newest transaction's extents
};

}  // namespace tandem::dp::volume
