// SPDX-License-Identifier: Apache-2.0
// The activity log: slot table, extent hash, idle LRU, transaction records and the ring scan.
#include "dataplane/volume/activity_log.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "dataplane/crypto/crc32c.h"
#include "dataplane/volume/bitmap.h"

namespace tandem::dp::volume {
namespace {

// Record layout (docs/volume-metadata.md): little-endian.
constexpr size_t off_magic = 0;
constexpr size_t off_crc = 8;
constexpr size_t off_count = 12;
constexpr size_t off_seq = 16;
constexpr size_t off_uuid = 24;
constexpr size_t off_extent_size = 40;
constexpr size_t off_reserved = 44;
constexpr size_t off_extents = al_record_header;
static_assert(off_reserved + 4 == off_extents);
static_assert(off_extents + 4 * size_t{al_max_slots} <= al_record_size);

void put32(uint8_t* p, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get32(const uint8_t* p) noexcept {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t{p[i]} << (8 * i);
  return v;
}
uint64_t get64(const uint8_t* p) noexcept {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t{p[i]} << (8 * i);
  return v;
}

uint32_t record_crc(std::span<const uint8_t, al_record_size> r) noexcept {
  static constexpr uint8_t zero[4] = {};
  uint32_t crc = crc32c(r.first(off_crc));
  crc = crc32c(zero, crc);
  return crc32c(r.subspan(off_crc + 4), crc);
}

bool all_zero(std::span<const uint8_t> b) noexcept {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

uint64_t extent_count(uint64_t volume_size, uint32_t extent_size) noexcept {
  return volume_size / extent_size + (volume_size % extent_size != 0 ? 1 : 0);
}

}  // namespace

const char* to_string(al_record_status s) noexcept {
  switch (s) {
    case al_record_status::ok:
      return "valid";
    case al_record_status::empty:
      return "empty";
    case al_record_status::bad_magic:
      return "bad magic";
    case al_record_status::bad_crc:
      return "CRC mismatch";
    case al_record_status::bad_field:
      return "invalid field";
  }
  return "?";
}

void encode_al_record(const al_record& r, std::span<uint8_t, al_record_size> out) noexcept {
  std::fill(out.begin(), out.end(), 0);
  uint8_t* p = out.data();
  std::memcpy(p + off_magic, al_magic, sizeof al_magic);
  const uint32_t count = std::min(r.count, al_max_slots);
  put32(p + off_count, count);
  put64(p + off_seq, r.seq);
  std::memcpy(p + off_uuid, r.uuid.data(), r.uuid.size());
  put32(p + off_extent_size, r.extent_size);
  for (uint32_t i = 0; i < count; ++i)
    put32(p + off_extents + 4 * size_t{i}, r.extents[i]);
  put32(p + off_crc, record_crc(out));
}

al_record_status decode_al_record(std::span<const uint8_t, al_record_size> in, const al_config& cfg,
                                  al_record& out) noexcept {
  const uint8_t* p = in.data();
  if (all_zero(in)) return al_record_status::empty;
  if (std::memcmp(p + off_magic, al_magic, sizeof al_magic) != 0)
    return al_record_status::bad_magic;
  if (get32(p + off_crc) != record_crc(in)) return al_record_status::bad_crc;
  out.seq = get64(p + off_seq);
  std::memcpy(out.uuid.data(), p + off_uuid, out.uuid.size());
  out.extent_size = get32(p + off_extent_size);
  out.count = get32(p + off_count);
  if (out.seq == 0 || out.uuid != cfg.uuid || out.extent_size != cfg.extent_size ||
      get32(p + off_reserved) != 0 || out.count > cfg.slots || out.count > al_max_slots) {
    return al_record_status::bad_field;
  }
  const uint64_t limit = extent_count(cfg.volume_size, cfg.extent_size);
  for (uint32_t i = 0; i < out.count; ++i) {
    const uint32_t e = get32(p + off_extents + 4 * size_t{i});
    if (e >= limit || (i > 0 && e <= out.extents[i - 1])) return al_record_status::bad_field;
    out.extents[i] = e;
  }
  if (!all_zero(in.subspan(off_extents + 4 * size_t{out.count}))) {
    return al_record_status::bad_field;
  }
  return al_record_status::ok;
}

// ---- activity_log --------------------------------------------------------------------------

activity_log::activity_log(const al_config& cfg, int fd) : cfg_(cfg), fd_(fd) {
  if (cfg.volume_size == 0 || cfg.extent_size < 4096 || !std::has_single_bit(cfg.extent_size)) {
    throw std::invalid_argument(
        "activity log: volume size must be > 0 and the extent size a "
        "power of two of at least 4096");
  }
  if (cfg.slots == 0 || cfg.slots > al_max_slots) {
    throw std::invalid_argument("activity log: slots must be 1.." + std::to_string(al_max_slots));
  }
  if (cfg.ring_records < al_min_ring_records || cfg.ring_records > al_max_ring_records) {
    throw std::invalid_argument("activity log: the ring must hold 2..1024 records");
  }
  const uint64_t n = extent_count(cfg.volume_size, cfg.extent_size);
  if (n >= UINT32_MAX) throw std::invalid_argument("activity log: too many extents");
  extents_ = static_cast<uint32_t>(n);
  extent_shift_ = static_cast<uint32_t>(std::countr_zero(cfg.extent_size));
  slots_.resize(cfg.slots);
  free_.reserve(cfg.slots);
  for (uint32_t s = cfg.slots; s-- > 0;)
    free_.push_back(s);
  const size_t hash_size = std::bit_ceil(size_t{cfg.slots} * 2);
  hash_.assign(hash_size, 0);
  hash_mask_ = hash_size - 1;
  record_buf_.assign(al_record_size, 0);
}

bool activity_log::extent_range(uint64_t offset, uint64_t len, uint32_t& first,
                                uint32_t& last) const noexcept {
  if (offset >= cfg_.volume_size || len > cfg_.volume_size - offset) return false;
  first = static_cast<uint32_t>(offset >> extent_shift_);
  last = static_cast<uint32_t>((offset + len - 1) >> extent_shift_);
  return true;
}

size_t activity_log::hash_home(uint32_t extent) const noexcept {
  return static_cast<size_t>((uint64_t{extent} * 0x9E3779B97F4A7C15ULL) >> 32) & hash_mask_;
}

uint32_t activity_log::lookup(uint32_t extent) const noexcept {
  for (size_t i = hash_home(extent);; i = (i + 1) & hash_mask_) {
    const uint32_t h = hash_[i];
    if (h == 0) return npos;
    if (slots_[h - 1].extent == extent) return h - 1;
  }
}

void activity_log::hash_insert(uint32_t extent, uint32_t s) noexcept {
  size_t i = hash_home(extent);
  while (hash_[i] != 0)
    i = (i + 1) & hash_mask_;
  hash_[i] = s + 1;
}

// Linear probing with backward-shift deletion: no tombstones, lookups stay short.
void activity_log::hash_erase(uint32_t extent) noexcept {
  size_t i = hash_home(extent);
  while (hash_[i] != 0 && slots_[hash_[i] - 1].extent != extent)
    i = (i + 1) & hash_mask_;
  if (hash_[i] == 0) return;
  size_t hole = i;
  for (size_t j = (i + 1) & hash_mask_; hash_[j] != 0; j = (j + 1) & hash_mask_) {
    const size_t home = hash_home(slots_[hash_[j] - 1].extent);
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      hash_[hole] = hash_[j];
      hole = j;
    }
  }
  hash_[hole] = 0;
}

void activity_log::idle_push(uint32_t s) noexcept {
  slot& sl = slots_[s];
  sl.prev = idle_tail_;
  sl.next = npos;
  if (idle_tail_ != npos) {
    slots_[idle_tail_].next = s;
  } else {
    idle_head_ = s;
  }
  idle_tail_ = s;
  ++idle_count_;
}

void activity_log::idle_remove(uint32_t s) noexcept {
  slot& sl = slots_[s];
  if (sl.prev != npos) {
    slots_[sl.prev].next = sl.next;
  } else {
    idle_head_ = sl.next;
  }
  if (sl.next != npos) {
    slots_[sl.next].prev = sl.prev;
  } else {
    idle_tail_ = sl.prev;
  }
  sl.prev = sl.next = npos;
  --idle_count_;
}

uint32_t activity_log::take_slot() noexcept {
  if (!free_.empty()) {
    const uint32_t s = free_.back();
    free_.pop_back();
    return s;
  }
  const uint32_t s = idle_head_;  // note_write checked there is one
  idle_remove(s);
  slot& sl = slots_[s];
  hash_erase(sl.extent);
  if (sl.state == slot_state::pending) {
    --pending_;  // never reached the disk: nothing to drop
  } else {
    ++drops_;
  }
  ++evictions_;
  --used_;
  sl.state = slot_state::free;
  return s;
}

int activity_log::note_write(uint64_t offset, uint64_t len) noexcept {
  if (len == 0) return 0;
  uint32_t first = 0;
  uint32_t last = 0;
  if (!extent_range(offset, len, first, last)) return -EINVAL;
  if (uint64_t{last} - first + 1 > cfg_.slots) return -E2BIG;

  // The common case: one extent, already hot. One lookup.
  if (first == last) {
    const uint32_t s = lookup(first);
    if (s != npos) {
      slot& sl = slots_[s];
      if (sl.refs++ == 0) idle_remove(s);
      ++in_flight_writes_;
      return sl.state == slot_state::on_disk ? 0 : 1;
    }
  }

  // Check first, so a refusal changes nothing.
  uint32_t need = 0;
  uint32_t idle_in_range = 0;
  for (uint32_t e = first; e <= last; ++e) {
    const uint32_t s = lookup(e);
    if (s == npos) {
      ++need;
    } else if (slots_[s].refs == 0) {
      ++idle_in_range;
    }
  }
  if (need > free_.size() + idle_count_ - idle_in_range) return -EBUSY;

  // Pin the extents already hot (so making room cannot evict them), then add the new ones.
  int not_on_disk = 0;
  for (uint32_t e = first; e <= last; ++e) {
    const uint32_t s = lookup(e);
    if (s == npos) continue;
    slot& sl = slots_[s];
    if (sl.refs++ == 0) idle_remove(s);
    if (sl.state != slot_state::on_disk) ++not_on_disk;
  }
  if (need > 0) {
    for (uint32_t e = first; e <= last; ++e) {
      if (lookup(e) != npos) continue;
      const uint32_t s = take_slot();
      slot& sl = slots_[s];
      sl.extent = e;
      sl.refs = 1;
      sl.state = slot_state::pending;
      hash_insert(e, s);
      ++pending_;
      ++used_;
      ++not_on_disk;
    }
  }
  ++in_flight_writes_;
  return not_on_disk;
}

void activity_log::complete_write(uint64_t offset, uint64_t len) noexcept {
  if (len == 0) return;
  uint32_t first = 0;
  uint32_t last = 0;
  if (!extent_range(offset, len, first, last)) return;
  for (uint32_t e = first; e <= last; ++e) {
    const uint32_t s = lookup(e);
    if (s == npos || slots_[s].refs == 0) continue;  // unbalanced call: ignore
    if (--slots_[s].refs == 0) idle_push(s);
  }
  if (in_flight_writes_ > 0) --in_flight_writes_;
}

bool activity_log::ready(uint64_t offset, uint64_t len) const noexcept {
  if (len == 0) return true;
  uint32_t first = 0;
  uint32_t last = 0;
  if (!extent_range(offset, len, first, last)) return false;
  for (uint32_t e = first; e <= last; ++e) {
    const uint32_t s = lookup(e);
    if (s == npos || slots_[s].state != slot_state::on_disk) return false;
  }
  return true;
}

bool activity_log::is_hot(uint32_t extent) const noexcept {
  return lookup(extent) != npos;
}

uint32_t activity_log::refs(uint32_t extent) const noexcept {
  const uint32_t s = lookup(extent);
  return s == npos ? 0 : slots_[s].refs;
}

int activity_log::prepare_commit(std::span<uint8_t, al_record_size> record,
                                 uint64_t& disk_offset) noexcept {
  if (prepared_) return -EBUSY;
  if (replay_required_) return -ESTALE;
  if (!needs_commit()) return 0;
  uint32_t n = 0;
  for (slot& sl : slots_) {
    if (sl.state == slot_state::free) continue;
    scratch_.extents[n++] = sl.extent;
    if (sl.state == slot_state::pending) sl.state = slot_state::in_txn;
  }
  std::sort(scratch_.extents.begin(), scratch_.extents.begin() + n);
  scratch_.count = n;
  scratch_.seq = next_seq_;
  scratch_.uuid = cfg_.uuid;
  scratch_.extent_size = cfg_.extent_size;
  encode_al_record(scratch_, record);
  disk_offset = cfg_.ring_offset + (next_seq_ % cfg_.ring_records) * al_record_size;
  pending_ = 0;
  drops_ = 0;
  changed_ = false;
  prepared_ = true;
  return 1;
}

void activity_log::commit_done(bool ok) noexcept {
  if (!prepared_) return;
  prepared_ = false;
  for (slot& sl : slots_) {
    if (sl.state != slot_state::in_txn) continue;
    if (ok) {
      sl.state = slot_state::on_disk;
    } else {
      sl.state = slot_state::pending;
      ++pending_;
    }
  }
  if (ok) {
    ++next_seq_;
    ++transactions_;
    last_written_count_ = scratch_.count;
  } else {
    changed_ = true;  // whatever the record dropped must still be written
  }
}

int activity_log::commit() noexcept {
  if (fd_ < 0) return -EBADF;
  uint64_t off = 0;
  const int prepared = prepare_commit(std::span<uint8_t, al_record_size>(record_buf_), off);
  if (prepared <= 0) return prepared;
  int rc = detail::pwrite_all(fd_, record_buf_.data(), al_record_size, off);
  if (rc == 0 && ::fdatasync(fd_) != 0) rc = -errno;
  commit_done(rc == 0);
  return rc < 0 ? rc : 1;
}

int activity_log::clear() noexcept {
  if (prepared_ || in_flight_writes_ > 0) return -EBUSY;
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    slot& sl = slots_[s];
    if (sl.state == slot_state::free) continue;
    if (sl.refs > 0) return -EBUSY;  // unbalanced note_write: keep everything
  }
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    slot& sl = slots_[s];
    if (sl.state == slot_state::free) continue;
    idle_remove(s);
    hash_erase(sl.extent);
    sl.state = slot_state::free;
    free_.push_back(s);
  }
  used_ = 0;
  pending_ = 0;
  changed_ = last_written_count_ > 0;
  return 0;
}

activity_log::scan_result activity_log::scan(bool replay_required) {
  const uint32_t ring = cfg_.ring_records;
  std::vector<uint8_t> buf(size_t{ring} * al_record_size);
  const ssize_t n = detail::pread_all(fd_, buf.data(), buf.size(), cfg_.ring_offset);
  if (n < 0) {
    throw std::system_error(static_cast<int>(-n), std::generic_category(),
                            "cannot read the activity log");
  }
  std::fill(buf.begin() + n, buf.end(), 0);  // the caller checked the device size

  std::vector<al_record_status> status(ring);
  std::vector<uint64_t> seqs(ring, 0);  // of CRC-valid records
  scan_result res;
  al_record rec;
  replay_.clear();
  for (uint32_t i = 0; i < ring; ++i) {
    const auto in = std::span<const uint8_t, al_record_size>(
        buf.data() + size_t{i} * al_record_size, al_record_size);
    status[i] = decode_al_record(in, cfg_, rec);
    const bool crc_valid = status[i] == al_record_status::ok ||
                           (status[i] == al_record_status::bad_field && rec.seq != 0);
    if (!crc_valid) continue;
    seqs[i] = rec.seq;
    if (status[i] == al_record_status::ok) ++res.valid;
    if (rec.seq > res.newest_seq) {
      res.newest_seq = rec.seq;
      res.newest_index = i;
      res.newest_invalid = status[i] != al_record_status::ok;
      if (!res.newest_invalid) replay_.assign(rec.extents.begin(), rec.extents.begin() + rec.count);
    }
  }
  if (res.newest_invalid) {
    replay_.clear();
    res.problem = "activity-log record " + std::to_string(res.newest_index) + " (byte " +
                  std::to_string(cfg_.ring_offset + uint64_t{res.newest_index} * al_record_size) +
                  ") holds the newest transaction (" + std::to_string(res.newest_seq) +
                  ") but an invalid field (uuid, extent size, count or extent list)";
  }

  // Every other index holds the newest record of its residue class, or nothing (a new or reset
  // ring); the index after the newest may hold the torn record of a crash. Anything else is
  // reported; it does not change what is replayed.
  const uint64_t newest = res.newest_seq;
  const uint32_t next_index = static_cast<uint32_t>((newest + 1) % ring);
  for (uint32_t i = 0; i < ring; ++i) {
    if (i == res.newest_index && newest != 0) continue;
    // The largest s <= newest with s % ring == i (0: none, sequence numbers start at 1).
    const uint64_t expect = newest >= i ? newest - ((newest - i) % ring) : 0;
    if (status[i] == al_record_status::empty) continue;
    if (status[i] == al_record_status::ok && seqs[i] == expect) continue;
    if (i == next_index &&
        (status[i] == al_record_status::bad_crc || status[i] == al_record_status::bad_magic)) {
      ++res.torn;  // the transaction being written when the node stopped
      continue;
    }
    ++res.corrupt;
    if (res.problem.empty()) {
      res.problem = "activity-log record " + std::to_string(i) + " (byte " +
                    std::to_string(cfg_.ring_offset + uint64_t{i} * al_record_size) +
                    "): " + to_string(status[i]);
      if (seqs[i] != 0) res.problem += ", transaction " + std::to_string(seqs[i]);
      res.problem += expect == 0 ? std::string(" where none was written yet")
                                 : " where transaction " + std::to_string(expect) + " belongs";
      res.problem += " (newest: " + std::to_string(newest) + ")";
    }
  }
  next_seq_ = newest + 1;
  last_written_count_ = res.newest_invalid ? 1 : static_cast<uint32_t>(replay_.size());
  replay_required_ = replay_required;
  return res;
}

int activity_log::reset_ring() noexcept {
  if (fd_ < 0) return -EBADF;
  if (prepared_) return -EBUSY;
  std::fill(record_buf_.begin(), record_buf_.end(), 0);
  for (uint32_t i = 0; i < cfg_.ring_records; ++i) {
    const int rc = detail::pwrite_all(fd_, record_buf_.data(), al_record_size,
                                      cfg_.ring_offset + uint64_t{i} * al_record_size);
    if (rc < 0) return rc;
  }
  if (::fdatasync(fd_) != 0) return -errno;
  last_written_count_ = 0;
  changed_ = true;  // the next transaction is written even when empty
  return 0;
}

std::span<const uint32_t> activity_log::replay_extents() const noexcept {
  return replay_;
}

}  // namespace tandem::dp::volume
