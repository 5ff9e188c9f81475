// SPDX-License-Identifier: Apache-2.0
// The dirty bitmap: word-level marking with a running count, changed-page tracking, page I/O.
#include "dataplane/volume/bitmap.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace tandem::dp::volume {

// The in-memory words are the on-disk bytes (bit i = bit i % 8 of byte i / 8) only on a
// little-endian host; a big-endian port would byte-swap pages in flush() and load().
static_assert(std::endian::native == std::endian::little,
              "the bitmap assumes a little-endian host");

namespace detail {

int pwrite_all(int fd, const void* buf, size_t len, uint64_t offset) noexcept {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (len > 0) {
    const ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

ssize_t pread_all(int fd, void* buf, size_t len, uint64_t offset) noexcept {
  auto* p = static_cast<uint8_t*>(buf);
  size_t got = 0;
  while (got < len) {
    const ssize_t n = ::pread(fd, p + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

}  // namespace detail

namespace {

constexpr uint64_t words_per_page = bitmap_page_size / sizeof(uint64_t);

}  // namespace

dirty_bitmap::dirty_bitmap(uint64_t volume_size, uint32_t granularity)
    : volume_size_(volume_size), granularity_(granularity) {
  if (volume_size == 0 || granularity == 0 || !std::has_single_bit(granularity)) {
    throw std::invalid_argument(
        "dirty_bitmap: volume size must be > 0 and granularity a power "
        "of two");
  }
  shift_ = static_cast<uint32_t>(std::countr_zero(granularity));
  bits_ = (volume_size >> shift_) + ((volume_size & (granularity - 1)) != 0 ? 1 : 0);
  pages_ = static_cast<size_t>((bits_ + bitmap_page_bits - 1) / bitmap_page_bits);
  words_.assign(pages_ * words_per_page, 0);
  page_dirty_.assign((pages_ + 63) / 64, 0);
}

void dirty_bitmap::attach(int fd, uint64_t disk_offset) noexcept {
  fd_ = fd;
  disk_offset_ = disk_offset;
}

void dirty_bitmap::mark_page(uint64_t word) noexcept {
  const uint64_t page = word / words_per_page;
  uint64_t& w = page_dirty_[page >> 6];
  const uint64_t m = uint64_t{1} << (page & 63);
  if ((w & m) == 0) {
    w |= m;
    ++dirty_pages_;
  }
}

uint64_t dirty_bitmap::set_bits(uint64_t first, uint64_t last) noexcept {
  uint64_t n = 0;
  const uint64_t wf = first >> 6;
  const uint64_t wl = last >> 6;
  for (uint64_t w = wf; w <= wl; ++w) {
    uint64_t mask = ~uint64_t{0};
    if (w == wf) mask &= ~uint64_t{0} << (first & 63);
    if (w == wl) mask &= ~uint64_t{0} >> (63 - (last & 63));
    const uint64_t old = words_[w];
    const uint64_t now = old | mask;
    if (now != old) {
      words_[w] = now;
      n += static_cast<uint64_t>(std::popcount(now ^ old));
      mark_page(w);
    }
  }
  dirty_bits_ += n;
  return n;
}

uint64_t dirty_bitmap::clear_bits(uint64_t first, uint64_t last) noexcept {
  uint64_t n = 0;
  const uint64_t wf = first >> 6;
  const uint64_t wl = last >> 6;
  for (uint64_t w = wf; w <= wl; ++w) {
    uint64_t mask = ~uint64_t{0};
    if (w == wf) mask &= ~uint64_t{0} << (first & 63);
    if (w == wl) mask &= ~uint64_t{0} >> (63 - (last & 63));
    const uint64_t old = words_[w];
    const uint64_t now = old & ~mask;
    if (now != old) {
      words_[w] = now;
      n += static_cast<uint64_t>(std::popcount(now ^ old));
      mark_page(w);
    }
  }
  dirty_bits_ -= n;
  return n;
}

uint64_t dirty_bitmap::set_range(uint64_t offset, uint64_t len) noexcept {
  if (len == 0 || offset >= volume_size_) return 0;
  const uint64_t end = len > volume_size_ - offset ? volume_size_ : offset + len;
  return set_bits(offset >> shift_, (end - 1) >> shift_);
}

uint64_t dirty_bitmap::clear_range(uint64_t offset, uint64_t len) noexcept {
  if (len == 0 || offset >= volume_size_) return 0;
  const uint64_t end = len > volume_size_ - offset ? volume_size_ : offset + len;
  const uint64_t first = (offset + granularity_ - 1) >> shift_;
  const uint64_t stop = end == volume_size_ ? bits_ : end >> shift_;  // exclusive
  if (first >= stop) return 0;
  return clear_bits(first, stop - 1);
}

void dirty_bitmap::set_all() noexcept {
  (void)set_bits(0, bits_ - 1);
}

void dirty_bitmap::clear_all() noexcept {
  (void)clear_bits(0, bits_ - 1);
}

bool dirty_bitmap::test_bit(uint64_t bit) const noexcept {
  return bit < bits_ && ((words_[bit >> 6] >> (bit & 63)) & 1) != 0;
}

bool dirty_bitmap::test(uint64_t offset) const noexcept {
  return offset < volume_size_ && test_bit(offset >> shift_);
}

bool dirty_bitmap::any_in(uint64_t offset, uint64_t len) const noexcept {
  if (len == 0 || offset >= volume_size_) return false;
  const uint64_t end = len > volume_size_ - offset ? volume_size_ : offset + len;
  return find_set(offset >> shift_) <= ((end - 1) >> shift_);
}

uint64_t dirty_bitmap::dirty_bytes() const noexcept {
  uint64_t bytes = dirty_bits_ << shift_;
  if (test_bit(bits_ - 1)) bytes -= (bits_ << shift_) - volume_size_;
  return bytes;
}

uint64_t dirty_bitmap::find_set(uint64_t from) const noexcept {
  if (from >= bits_) return bits_;
  uint64_t w = from >> 6;
  uint64_t word = words_[w] & (~uint64_t{0} << (from & 63));
  const uint64_t nwords = words_.size();
  while (word == 0) {
    if (++w == nwords) return bits_;
    word = words_[w];
  }
  return std::min(bits_, (w << 6) + static_cast<uint64_t>(std::countr_zero(word)));
}

uint64_t dirty_bitmap::find_clear(uint64_t from) const noexcept {
  if (from >= bits_) return bits_;
  uint64_t w = from >> 6;
  uint64_t word = ~words_[w] & (~uint64_t{0} << (from & 63));
  const uint64_t nwords = words_.size();
  while (word == 0) {
    if (++w == nwords) return bits_;
    word = ~words_[w];
  }
  return std::min(bits_, (w << 6) + static_cast<uint64_t>(std::countr_zero(word)));
}

bool dirty_bitmap::next_dirty_run(uint64_t from, run& out, uint64_t max_len) const noexcept {
  if (from >= volume_size_) return false;
  const uint64_t start = find_set(from >> shift_);
  if (start >= bits_) return false;
  const uint64_t max_bits = std::max<uint64_t>(1, max_len >> shift_);
  uint64_t stop = find_clear(start);
  if (stop - start > max_bits) stop = start + max_bits;
  out.offset = start << shift_;
  out.length = std::min(stop << shift_, volume_size_) - out.offset;
  return true;
}

std::span<const uint8_t> dirty_bitmap::page_bytes(size_t i) const noexcept {
  if (i >= pages_) return {};
  return {reinterpret_cast<const uint8_t*>(words_.data() + i * words_per_page), bitmap_page_size};
}

int dirty_bitmap::flush() noexcept {
  if (dirty_pages_ == 0) return 0;
  if (fd_ < 0) return -EBADF;
  uint64_t written = 0;
  size_t page = 0;
  while (page < pages_) {
    if (((page_dirty_[page >> 6] >> (page & 63)) & 1) == 0) {
      ++page;
      continue;
    }
    size_t end = page + 1;
    while (end < pages_ && ((page_dirty_[end >> 6] >> (end & 63)) & 1) != 0)
      ++end;
    const int rc =
        detail::pwrite_all(fd_, words_.data() + page * words_per_page,
                           (end - page) * bitmap_page_size, disk_offset_ + page * bitmap_page_size);
    if (rc < 0) return rc;
    written += end - page;
    page = end;
  }
  if (::fdatasync(fd_) != 0) return -errno;
  std::fill(page_dirty_.begin(), page_dirty_.end(), 0);
  dirty_pages_ = 0;
  ++flushes_;
  pages_written_ += written;
  return 0;
}

void dirty_bitmap::load(const std::string& name) {
  const size_t bytes = pages_ * bitmap_page_size;
  const ssize_t n = detail::pread_all(fd_, words_.data(), bytes, disk_offset_);
  if (n < 0) {
    throw std::system_error(static_cast<int>(-n), std::generic_category(),
                            "metadata " + name + ": cannot read the dirty bitmap");
  }
  if (static_cast<size_t>(n) != bytes) {
    throw std::runtime_error("metadata " + name + ": the dirty bitmap is cut short (" +
                             std::to_string(n) + " of " + std::to_string(bytes) + " bytes)");
  }
  // Bits past the volume's end are never set by tandem.
  const uint64_t last_word = (bits_ - 1) >> 6;
  const uint64_t tail_bits = bits_ & 63;
  const uint64_t tail_mask = tail_bits == 0 ? 0 : ~uint64_t{0} << tail_bits;
  for (uint64_t w = last_word; w < words_.size(); ++w) {
    const uint64_t stray = w == last_word ? words_[w] & tail_mask : words_[w];
    if (stray != 0) {
      const uint64_t bit = (w << 6) + static_cast<uint64_t>(std::countr_zero(stray));
      throw std::runtime_error(
          "metadata " + name + ": the dirty bitmap has bits set past the end of the volume (bit " +
          std::to_string(bit) + ", byte " + std::to_string(disk_offset_ + bit / 8) +
          " of the device; the volume has " + std::to_string(bits_) + " bits): corrupt metadata");
    }
  }
  uint64_t count = 0;
  for (const uint64_t w : words_)
    count += static_cast<uint64_t>(std::popcount(w));
  dirty_bits_ = count;
  std::fill(page_dirty_.begin(), page_dirty_.end(), 0);
  dirty_pages_ = 0;
}

}  // namespace tandem::dp::volume
