// SPDX-License-Identifier: Apache-2.0
// replay_guard (control/cluster/replay_guard.h): per-link windows, incarnations, reordering.
#include "control/cluster/replay_guard.h"

#include <cstdint>

#include <gtest/gtest.h>

namespace tandem::ctl::cluster {
namespace {

using verdict = replay_guard::verdict;

// check() then commit() when accepted, as the receive path does.
verdict offer(replay_guard& g, uint64_t inc, uint64_t seq, uint8_t link) {
  const verdict v = g.check(inc, seq, link);
  if (v == verdict::fresh || v == verdict::new_incarnation) g.commit(inc, seq, link);
  return v;
}

TEST(replay_guard, first_packet_is_fresh) {
  replay_guard g;
  EXPECT_TRUE(g.empty());
  EXPECT_EQ(offer(g, 100, 5, 0), verdict::fresh);
  EXPECT_FALSE(g.empty());
  EXPECT_EQ(g.incarnation(), 100u);
}

TEST(replay_guard, same_seq_same_link_is_a_replay) {
  replay_guard g;
  EXPECT_EQ(offer(g, 100, 5, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 100, 5, 0), verdict::duplicate);
  EXPECT_EQ(offer(g, 100, 6, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 100, 6, 0), verdict::duplicate);
  EXPECT_EQ(offer(g, 100, 5, 0), verdict::duplicate);
}

TEST(replay_guard, same_seq_on_another_link_is_fresh) {
  replay_guard g;
  EXPECT_EQ(offer(g, 100, 5, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 100, 5, 1), verdict::fresh);
  EXPECT_EQ(offer(g, 100, 5, 15), verdict::fresh);
  EXPECT_EQ(offer(g, 100, 5, 1), verdict::duplicate);
  // A link that lags far behind another is judged on its own window.
  for (uint64_t s = 6; s < 500; ++s)
    EXPECT_EQ(offer(g, 100, s, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 100, 6, 1), verdict::fresh);
}

TEST(replay_guard, reordering_within_the_window_is_accepted_once) {
  replay_guard g;
  EXPECT_EQ(offer(g, 7, 100, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 7, 98, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 7, 99, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 7, 98, 0), verdict::duplicate);
  EXPECT_EQ(offer(g, 7, 100 - replay_guard::window + 1, 0), verdict::fresh);  // oldest kept
  EXPECT_EQ(offer(g, 7, 100 - replay_guard::window, 0), verdict::too_old);
  EXPECT_EQ(offer(g, 7, 0, 0), verdict::too_old);
}

TEST(replay_guard, sliding_forgets_only_what_falls_out) {
  replay_guard g;
  EXPECT_EQ(offer(g, 1, 10, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 1, 12, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 1, 10 + 63, 0), verdict::fresh);  // 10 is now the oldest slot
  EXPECT_EQ(offer(g, 1, 10, 0), verdict::duplicate);
  EXPECT_EQ(offer(g, 1, 11, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 1, 12, 0), verdict::duplicate);
  EXPECT_EQ(offer(g, 1, 10'000, 0), verdict::fresh);  // a jump past the window clears it
  EXPECT_EQ(offer(g, 1, 9'999, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 1, 10'000, 0), verdict::duplicate);
}

TEST(replay_guard, new_incarnation_is_accepted_and_old_one_refused_for_good) {
  replay_guard g;
  EXPECT_EQ(offer(g, 100, 50, 0), verdict::fresh);
  EXPECT_EQ(offer(g, 100, 50, 1), verdict::fresh);
  // The sender restarted: seqs start again from 1.
  EXPECT_EQ(offer(g, 200, 1, 0), verdict::new_incarnation);
  EXPECT_EQ(g.incarnation(), 200u);
  EXPECT_EQ(offer(g, 200, 1, 1), verdict::fresh);
  EXPECT_EQ(offer(g, 200, 1, 0), verdict::duplicate);
  // Captures of the earlier run, even with seqs never seen, are refused.
  EXPECT_EQ(offer(g, 100, 51, 0), verdict::old_incarnation);
  EXPECT_EQ(offer(g, 100, 5000, 2), verdict::old_incarnation);
  EXPECT_EQ(offer(g, 99, 1, 0), verdict::old_incarnation);
  EXPECT_EQ(offer(g, 200, 2, 0), verdict::fresh);
}

TEST(replay_guard, check_changes_nothing) {
  replay_guard g;
  EXPECT_EQ(g.check(5, 1, 0), verdict::fresh);
  EXPECT_TRUE(g.empty());
  g.commit(5, 10, 0);
  EXPECT_EQ(g.check(9, 1, 0), verdict::new_incarnation);
  EXPECT_EQ(g.incarnation(), 5u);
  EXPECT_EQ(g.check(5, 10, 0), verdict::duplicate);
  EXPECT_EQ(g.check(5, 1000, 0), verdict::fresh);
  EXPECT_EQ(g.check(5, 9, 0), verdict::fresh);
  // Committing a refused packet changes nothing either.
  g.commit(4, 11, 0);
  EXPECT_EQ(g.incarnation(), 5u);
  EXPECT_EQ(g.check(5, 11, 0), verdict::fresh);
}

TEST(replay_guard, link_out_of_range_is_refused) {
  replay_guard g;
  g.commit(1, 1, 0);
  EXPECT_EQ(g.check(1, 2, max_links), verdict::too_old);
  g.commit(1, 2, max_links);  // ignored
  EXPECT_EQ(g.check(1, 2, 0), verdict::fresh);
}

}  // namespace
}  // namespace tandem::ctl::cluster
