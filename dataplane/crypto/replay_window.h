// SPDX-License-Identifier: Apache-2.0
// Anti-replay sliding window over 64-bit packet numbers (a bitmap, as in RFC 6479), per direction.
//
// Receive path, per frame:
//
//   if (win.check(pn) != replay_window::verdict::fresh) drop;   // cheap, before decrypting
//   if (rx->open(...) != 0) drop;                               // forged or corrupted
//   win.commit(pn);                                             // only authenticated frames
//
// check() never changes the window, so a forged frame with a huge packet number cannot move it
// forward and make genuine frames look too old. The window remembers the highest committed
// packet number and the `size` numbers below it (that one included); anything older is
// too_old. Hot path: no allocation, no locks, no exceptions. One owner (the session's lcore).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tandem::dp {

class replay_window {
 public:
  static constexpr uint64_t size = 2048;  // packet numbers tracked below the highest

  enum class verdict : uint8_t {
    fresh,      // never committed and inside (or above) the window: accept if it authenticates
    duplicate,  // already committed: drop
    too_old,    // below the window: cannot tell, drop
  };

  // Whether `pn` may be accepted. Does not change the window.
  [[nodiscard]] constexpr verdict check(uint64_t pn) const noexcept {
    if (!any_ || pn > highest_) return verdict::fresh;
    if (highest_ - pn >= size) return verdict::too_old;
    return test(pn) ? verdict::duplicate : verdict::fresh;
  }

  // Records `pn` as received; call after the frame authenticated. Moving past the highest slides
  // the window and forgets what falls out of it. Committing a too_old or duplicate number
  // changes nothing.
  constexpr void commit(uint64_t pn) noexcept {
    if (!any_) {
      bits_ = {};
      any_ = true;
      highest_ = pn;
    } else if (pn > highest_) {
      clear_range(highest_ + 1, pn);
      highest_ = pn;
    } else if (highest_ - pn >= size) {
      return;
    }
    bits_[slot(pn) / 64] |= uint64_t{1} << (slot(pn) % 64);
  }

  // Forgets everything (a new session).
  constexpr void reset() noexcept {
    bits_ = {};
    highest_ = 0;
    any_ = false;
  }

  // The highest committed packet number; meaningful once empty() is false.
  [[nodiscard]] constexpr uint64_t highest() const noexcept { return highest_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return !any_; }

 private:
  static constexpr size_t words = size / 64;
  static_assert(size % 64 == 0 && (size & (size - 1)) == 0, "size must be a power of two >= 64");

  static constexpr size_t slot(uint64_t pn) noexcept { return static_cast<size_t>(pn % size); }

  [[nodiscard]] constexpr bool test(uint64_t pn) const noexcept {
    return ((bits_[slot(pn) / 64] >> (slot(pn) % 64)) & 1) != 0;
  }

  // Clears the slots of packet numbers first..last (first <= last), at most one pass over the
  // bitmap: whole words at a time except at the two ends.
  constexpr void clear_range(uint64_t first, uint64_t last) noexcept {
    if (last - first >= size - 1) {
      bits_ = {};
      return;
    }
    uint64_t pn = first;
    for (;;) {
      const size_t bit = slot(pn) % 64;
      const uint64_t room = 64 - bit;  // slots left in this word
      const uint64_t left = last - pn + 1;
      const uint64_t n = left < room ? left : room;
      const uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << bit;
      bits_[slot(pn) / 64] &= ~mask;
      if (n == left) return;
      pn += n;
    }
  }

  std::array<uint64_t, words> bits_{};  // bit (pn % size) set: pn committed
  uint64_t highest_ = 0;
  bool any_ = false;
};

}  // namespace tandem::dp
