// SPDX-License-Identifier: Apache-2.0
// The dirty bitmap: one bit per `granularity` bytes of the volume, persisted page by page.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tandem::dp::volume {

namespace detail {
// Positional I/O that finishes partial transfers and retries EINTR (shared by the metadata
// files). pwrite_all: 0 or negative errno. pread_all: bytes read (short only at end of file) or
// negative errno.
[[nodiscard]] int pwrite_all(int fd, const void* buf, size_t len, uint64_t offset) noexcept;
[[nodiscard]] ssize_t pread_all(int fd, void* buf, size_t len, uint64_t offset) noexcept;
}  // namespace detail

inline constexpr size_t bitmap_page_size = 4096;  // bytes per on-disk page
inline constexpr uint64_t bitmap_page_bits = bitmap_page_size * 8;

// Bit i covers volume bytes [i * granularity, (i + 1) * granularity), the last chunk clipped at
// the volume's end. On disk (and in memory, on the little-endian hosts tandem builds for) bit i
// is bit (i % 8) of byte (i / 8), in whole 4 KiB pages; bits past the volume's end are zero.
//
// Marking, testing, counting and iterating never allocate and never fail (the volume's lcore
// marks bits while the peer is away). flush() writes back only the pages changed since the last
// successful flush. One owner thread, no locks.
class dirty_bitmap {
 public:
  // A clean bitmap for a volume of `volume_size` bytes (> 0); `granularity` is a power of two.
  // Allocates (setup). Not attached: flush() and load() need attach().
  dirty_bitmap(uint64_t volume_size, uint32_t granularity);

  // Where the bitmap lives: descriptor (not owned) and byte offset of page 0.
  void attach(int fd, uint64_t disk_offset) noexcept;

  // Marks dirty every chunk that [offset, offset + len) touches (rounded outward); the range is
  // clipped to the volume. Returns how many bits were newly set.
  uint64_t set_range(uint64_t offset, uint64_t len) noexcept;
  // Marks clean every chunk lying entirely inside [offset, offset + len) (rounded inward; the
  // volume's last, partial chunk counts as inside when the range reaches the volume's end).
  // Returns how many bits were newly cleared.
  uint64_t clear_range(uint64_t offset, uint64_t len) noexcept;
  void set_all() noexcept;
  void clear_all() noexcept;

  [[nodiscard]] bool test(uint64_t offset) const noexcept;  // chunk holding `offset` dirty?
  [[nodiscard]] bool test_bit(uint64_t bit) const noexcept;
  [[nodiscard]] bool any_in(uint64_t offset, uint64_t len) const noexcept;
  [[nodiscard]] uint64_t count_dirty() const noexcept { return dirty_bits_; }  // O(1)
  // Volume bytes covered by dirty chunks (the last chunk counted up to the volume's end).
  [[nodiscard]] uint64_t dirty_bytes() const noexcept;

  // A run of dirty chunks, in volume bytes (clipped at the volume's end).
  struct run {
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  // The first maximal run of dirty chunks starting in the chunk holding `from` or later, cut to
  // at most `max_len` bytes (but at least one chunk). False when there is none. Resync loops:
  //   for (run r; bm.next_dirty_run(pos, r); pos = r.offset + r.length) ...
  [[nodiscard]] bool next_dirty_run(uint64_t from, run& out,
                                    uint64_t max_len = UINT64_MAX) const noexcept;

  // Pages changed since the last successful flush.
  [[nodiscard]] size_t dirty_pages() const noexcept { return dirty_pages_; }
  // Writes the changed pages (contiguous ones in one pwrite) and fdatasyncs; a no-op when none
  // changed. 0, or negative errno (the pages then stay marked for the next attempt).
  [[nodiscard]] int flush() noexcept;
  // Reads every page from disk, replacing the in-memory bits; no page is then dirty. Throws
  // std::system_error on I/O errors and std::runtime_error (naming `name` and the byte) when bits
  // past the volume's end are set, which only corruption produces.
  void load(const std::string& name);

  [[nodiscard]] uint64_t volume_size() const noexcept { return volume_size_; }
  [[nodiscard]] uint32_t granularity() const noexcept { return granularity_; }
  [[nodiscard]] uint64_t bits() const noexcept { return bits_; }
  [[nodiscard]] size_t pages() const noexcept { return pages_; }
  // The on-disk image of page `i` (for tests and asynchronous writers).
  [[nodiscard]] std::span<const uint8_t> page_bytes(size_t i) const noexcept;

  // Flushes issued that wrote something, and pages written, since construction.
  [[nodiscard]] uint64_t flushes() const noexcept { return flushes_; }
  [[nodiscard]] uint64_t pages_written() const noexcept { return pages_written_; }

 private:
  void mark_page(uint64_t word) noexcept;
  uint64_t set_bits(uint64_t first, uint64_t last) noexcept;        // inclusive
  uint64_t clear_bits(uint64_t first, uint64_t last) noexcept;      // inclusive
  [[nodiscard]] uint64_t find_set(uint64_t from) const noexcept;    // bits_ if none
  [[nodiscard]] uint64_t find_clear(uint64_t from) const noexcept;  // bits_ if none

  uint64_t volume_size_;
  uint32_t granularity_;
  uint32_t shift_;  // log2(granularity_)
  uint64_t bits_;
  size_t pages_;
  std::vector<uint64_t> words_;       // pages_ * 512 words
  std::vector<uint64_t> page_dirty_;  // one bit per page
  size_t dirty_pages_ = 0;
  uint64_t dirty_bits_ = 0;
  int fd_ = -1;
  uint64_t disk_offset_ = 0;
  uint64_t flushes_ = 0;
  uint64_t pages_written_ = 0;
};

}  // namespace tandem::dp::volume
