// SPDX-License-Identifier: Apache-2.0
// replay_window (dataplane/crypto/replay_window.h): semantics, edges, and a set-based oracle.
#include "dataplane/crypto/replay_window.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>

#include <gtest/gtest.h>

namespace tandem::dp {
namespace {

using verdict = replay_window::verdict;
constexpr uint64_t window_size = replay_window::size;

static_assert(window_size >= 1024);

TEST(replay_window, empty_window_accepts_anything_including_zero) {
  replay_window w;
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.check(0), verdict::fresh);
  EXPECT_EQ(w.check(1), verdict::fresh);
  EXPECT_EQ(w.check(~uint64_t{0}), verdict::fresh);
  w.commit(0);
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(w.highest(), 0u);
  EXPECT_EQ(w.check(0), verdict::duplicate);
  EXPECT_EQ(w.check(1), verdict::fresh);
}

TEST(replay_window, check_does_not_move_the_window) {
  replay_window w;
  w.commit(5);
  // A forged frame with a far packet number is checked, fails authentication, never committed.
  EXPECT_EQ(w.check(1'000'000'000), verdict::fresh);
  EXPECT_EQ(w.check(4), verdict::fresh);
  EXPECT_EQ(w.check(5), verdict::duplicate);
  EXPECT_EQ(w.highest(), 5u);
}

TEST(replay_window, in_order_stream) {
  replay_window w;
  for (uint64_t pn = 0; pn < 10 * window_size; ++pn) {
    ASSERT_EQ(w.check(pn), verdict::fresh) << pn;
    w.commit(pn);
    ASSERT_EQ(w.check(pn), verdict::duplicate) << pn;
  }
  EXPECT_EQ(w.check(10 * window_size - window_size),
            verdict::duplicate);  // the oldest still tracked
  EXPECT_EQ(w.check(10 * window_size - window_size - 1), verdict::too_old);
}

TEST(replay_window, window_edges) {
  replay_window w;
  const uint64_t h = 100'000;
  w.commit(h);
  EXPECT_EQ(w.check(h - (window_size - 1)), verdict::fresh);  // oldest number inside
  EXPECT_EQ(w.check(h - window_size), verdict::too_old);  // shares h's slot: must not be "fresh"
  EXPECT_EQ(w.check(0), verdict::too_old);
  w.commit(h - (window_size - 1));
  EXPECT_EQ(w.check(h - (window_size - 1)), verdict::duplicate);
  w.commit(h - window_size);  // too old: ignored
  EXPECT_EQ(w.check(h), verdict::duplicate);
  EXPECT_EQ(w.highest(), h);
  // Late arrivals inside the window are accepted once.
  for (uint64_t pn = h - 10; pn < h; ++pn) {
    EXPECT_EQ(w.check(pn), verdict::fresh);
    w.commit(pn);
    EXPECT_EQ(w.check(pn), verdict::duplicate);
  }
}

TEST(replay_window, sliding_forgets_stale_slots) {
  replay_window w;
  for (uint64_t pn = 0; pn < window_size; ++pn)
    w.commit(pn);  // every slot set
  w.commit(window_size - 1 + 100);
  for (uint64_t pn = 0; pn < 100; ++pn)
    EXPECT_EQ(w.check(pn), verdict::too_old) << pn;
  for (uint64_t pn = 100; pn < window_size; ++pn)
    EXPECT_EQ(w.check(pn), verdict::duplicate) << pn;
  for (uint64_t pn = window_size; pn < window_size - 1 + 100; ++pn)
    EXPECT_EQ(w.check(pn), verdict::fresh) << pn;  // reuse slots of 0..98: cleared
  EXPECT_EQ(w.check(window_size - 1 + 100), verdict::duplicate);
}

TEST(replay_window, far_jumps) {
  for (const uint64_t jump :
       {window_size - 1, window_size, window_size + 1, 3 * window_size + 17, uint64_t{1} << 40}) {
    replay_window w;
    for (uint64_t pn = 0; pn < 2 * window_size; ++pn)
      w.commit(pn);
    const uint64_t top = 2 * window_size - 1 + jump;
    w.commit(top);
    EXPECT_EQ(w.highest(), top);
    EXPECT_EQ(w.check(top), verdict::duplicate);
    // Everything between the old top and the new one is fresh if still inside the window.
    for (uint64_t pn = top - (window_size - 1); pn < top; ++pn) {
      const verdict want = pn <= 2 * window_size - 1 ? verdict::duplicate : verdict::fresh;
      ASSERT_EQ(w.check(pn), want) << "jump " << jump << " pn " << pn;
    }
    EXPECT_EQ(w.check(top - window_size), verdict::too_old);
  }
}

TEST(replay_window, top_of_the_number_space) {
  replay_window w;
  const uint64_t max = ~uint64_t{0};
  w.commit(max - 1);
  EXPECT_EQ(w.check(max), verdict::fresh);
  w.commit(max);
  EXPECT_EQ(w.check(max), verdict::duplicate);
  EXPECT_EQ(w.check(max - 1), verdict::duplicate);
  EXPECT_EQ(w.check(max - 2), verdict::fresh);
  EXPECT_EQ(w.check(max - window_size), verdict::too_old);
  EXPECT_EQ(w.check(0), verdict::too_old);
}

TEST(replay_window, reset_forgets_everything) {
  replay_window w;
  w.commit(123456);
  w.reset();
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.check(0), verdict::fresh);
  EXPECT_EQ(w.check(123456), verdict::fresh);
}

// Random traffic (in order, reordered, duplicated, jumps, stale) against a set-based model.
TEST(replay_window, matches_a_set_oracle) {
  std::mt19937_64 rng(99);
  replay_window w;
  std::set<uint64_t> seen;
  uint64_t highest = 0;
  bool any = false;
  auto oracle = [&](uint64_t pn) {
    if (!any || pn > highest) return verdict::fresh;
    if (highest - pn >= window_size) return verdict::too_old;
    return seen.count(pn) != 0 ? verdict::duplicate : verdict::fresh;
  };
  uint64_t next = 0;
  for (int i = 0; i < 200'000; ++i) {
    uint64_t pn = 0;
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        pn = next++;
        break;
      case 4:
      case 5:
        pn = next > 0 ? next - 1 - rng() % std::min<uint64_t>(next, window_size + 64) : 0;
        break;
      case 6:
        pn = next + rng() % 64;
        break;
      case 7:
        pn = next > 0 ? next - 1 - rng() % std::min<uint64_t>(next, 8 * window_size) : 0;
        break;
      case 8:
        pn = next;
        if (rng() % 100 == 0) next += rng() % (4 * window_size);
        break;
      default:
        pn = rng() % (next + 1);
        break;
    }
    const verdict got = w.check(pn);
    ASSERT_EQ(got, oracle(pn)) << "step " << i << " pn " << pn;
    // Commit most fresh ones (some "fail authentication"), and occasionally a duplicate.
    if ((got == verdict::fresh && rng() % 8 != 0) || rng() % 50 == 0) {
      w.commit(pn);
      if (!any || pn > highest) {
        highest = pn;
        any = true;
      }
      if (highest - pn < window_size) seen.insert(pn);
      // Keep the model small.
      while (!seen.empty() && highest - *seen.begin() >= window_size)
        seen.erase(seen.begin());
    }
    if (pn >= next) next = pn + 1;
  }
}

}  // namespace
}  // namespace tandem::dp
