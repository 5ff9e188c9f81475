// SPDX-License-Identifier: Apache-2.0
// Replay protection for one sender's heartbeats: (incarnation, seq, link) is accepted once.
//
// A sender numbers its rounds 1, 2, 3... within one incarnation (one run of its daemon) and sends
// the same seq on every interconnect, so the window is kept per link: seq 7 on link 0 and seq 7
// on link 1 are both fresh (each proves that link alive), seq 7 twice on link 0 is a replay. The
// receiver must also check that the packet's (authenticated) link field is the interconnect it
// arrived on, or a packet captured on one link could be replayed on another.
//
//   same incarnation:   seq above the link's highest, or within `window` below it and not yet
//                       seen -> fresh (reordering); seen -> duplicate; further below -> too_old
//   greater incarnation: fresh (the sender restarted); committing it forgets the old windows
//   smaller incarnation: old_incarnation, refused for good (a capture of an earlier run)
//
// check() never changes anything; commit() only after the packet authenticated, so a forged
// packet cannot move the window. No allocation, no exceptions; one owner.
#pragma once

#include <array>
#include <cstdint>

#include "control/cluster/heartbeat_packet.h"

namespace tandem::ctl::cluster {

class replay_guard {
 public:
  static constexpr uint64_t window = 64;  // seqs remembered below the highest, per link

  enum class verdict : uint8_t {
    fresh,            // accept (same incarnation, or the first packet ever)
    new_incarnation,  // accept: a greater incarnation than the one tracked
    duplicate,        // this (incarnation, seq, link) was already committed
    too_old,          // below the link's window: cannot tell, refuse
    old_incarnation,  // an incarnation below the tracked one: refuse
  };

  [[nodiscard]] constexpr verdict check(uint64_t incarnation, uint64_t seq,
                                        uint8_t link) const noexcept {
    if (!any_) return verdict::fresh;
    if (incarnation > incarnation_) return verdict::new_incarnation;
    if (incarnation < incarnation_) return verdict::old_incarnation;
    if (link >= max_links) return verdict::too_old;
    const link_window& w = links_[link];
    if (!w.any || seq > w.highest) return verdict::fresh;
    const uint64_t back = w.highest - seq;
    if (back >= window) return verdict::too_old;
    return (w.bits >> back & 1) != 0 ? verdict::duplicate : verdict::fresh;
  }

  // Records an authenticated packet. Committing something check() refuses changes nothing.
  constexpr void commit(uint64_t incarnation, uint64_t seq, uint8_t link) noexcept {
    if (link >= max_links) return;
    if (!any_ || incarnation > incarnation_) {
      links_ = {};
      incarnation_ = incarnation;
      any_ = true;
    } else if (incarnation < incarnation_) {
      return;
    }
    link_window& w = links_[link];
    if (!w.any) {
      w = {seq, 1, true};
    } else if (seq > w.highest) {
      const uint64_t shift = seq - w.highest;
      w.bits = (shift >= window ? 0 : w.bits << shift) | 1;
      w.highest = seq;
    } else if (w.highest - seq < window) {
      w.bits |= uint64_t{1} << (w.highest - seq);
    }
  }

  // The tracked (highest) incarnation; meaningful once empty() is false.
  [[nodiscard]] constexpr uint64_t incarnation() const noexcept { return incarnation_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return !any_; }

 private:
  static_assert(window == 64, "the window is one 64-bit word");

  struct link_window {
    uint64_t highest = 0;
    uint64_t bits = 0;  // bit i: seq (highest - i) committed
    bool any = false;
  };

  std::array<link_window, max_links> links_{};
  uint64_t incarnation_ = 0;
  bool any_ = false;
};

}  // namespace tandem::ctl::cluster
