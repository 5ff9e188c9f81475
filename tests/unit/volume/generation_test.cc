// SPDX-License-Identifier: Apache-2.0
// Generation ids (dataplane/volume/metadata.h): every row of the decision table in
// docs/volume-metadata.md, its symmetry, and the id life cycle across disconnects and resyncs.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/volume/metadata.h"

namespace tandem::dp::volume {
namespace {

using rd = resync_decision;

rd mirror(rd d) {
  switch (d) {
    case rd::source:
      return rd::target;
    case rd::target:
      return rd::source;
    case rd::full_sync_source:
      return rd::full_sync_target;
    case rd::full_sync_target:
      return rd::full_sync_source;
    default:
      return d;
  }
}

struct row {
  std::string rule;
  generation_ids mine;
  generation_ids peer;
  rd expect;
};

// One case per row of the table (and a few per row where a row has several shapes).
const std::vector<row>& table() {
  static const std::vector<row> rows = {
      {"1 both new", {0, 0, {0, 0}}, {0, 0, {0, 0}}, rd::no_resync},
      {"2a peer new", {0xA, 0, {0, 0}}, {0, 0, {0, 0}}, rd::full_sync_source},
      {"2a peer new, I have a bitmap", {0xB, 0xA, {0, 0}}, {0, 0, {0, 0}}, rd::full_sync_source},
      {"2b I am new", {0, 0, {0, 0}}, {0xA, 0, {0, 0}}, rd::full_sync_target},
      {"3 same current", {0xA, 0, {0, 0}}, {0xA, 0, {0, 0}}, rd::no_resync},
      {"3 same current, other bitmaps", {0xA, 0x9, {0x8, 0}}, {0xA, 0, {0x9, 0}}, rd::no_resync},
      {"4a each ahead of the other", {0xB, 0xC, {0, 0}}, {0xC, 0xB, {0, 0}}, rd::split_brain},
      {"4b my bitmap is the peer's current", {0xB, 0xA, {0, 0}}, {0xA, 0, {0, 0}}, rd::source},
      {"4b with history", {0xC, 0xB, {0xA, 0}}, {0xB, 0, {0xA, 0}}, rd::source},
      {"4c the peer's bitmap is my current", {0xA, 0, {0, 0}}, {0xB, 0xA, {0, 0}}, rd::target},
      {"5a the peer is in my history", {0xC, 0, {0xA, 0}}, {0xA, 0, {0, 0}}, rd::full_sync_source},
      {"5a older history slot", {0xC, 0xB, {0x9, 0xA}}, {0xA, 0, {0, 0}}, rd::full_sync_source},
      {"5b I am in the peer's history", {0xA, 0, {0, 0}}, {0xC, 0, {0xA, 0}}, rd::full_sync_target},
      {"6 same bitmap id, different currents",
       {0xB, 0xA, {0, 0}},
       {0xC, 0xA, {0, 0}},
       rd::split_brain},
      {"6 my bitmap in the peer's history",
       {0xB, 0xA, {0, 0}},
       {0xD, 0xC, {0xA, 0}},
       rd::split_brain},
      {"6 common history only", {0xB, 0, {0xA, 0}}, {0xC, 0, {0, 0xA}}, rd::split_brain},
      {"6 each in the other's history", {0xB, 0, {0xC, 0}}, {0xC, 0, {0xB, 0}}, rd::split_brain},
      {"7 unrelated", {0xA, 0, {0, 0}}, {0xB, 0, {0, 0}}, rd::unrelated},
      {"7 unrelated with histories", {0xA, 0x1, {0x2, 0x3}}, {0xB, 0x4, {0x5, 0x6}}, rd::unrelated},
  };
  return rows;
}

TEST(generation_ids, every_row_of_the_decision_table) {
  for (const row& r : table()) {
    EXPECT_EQ(compare_generations(r.mine, r.peer), r.expect)
        << r.rule << ": got " << to_string(compare_generations(r.mine, r.peer));
  }
}

TEST(generation_ids, the_peer_sees_the_mirror_image) {
  for (const row& r : table()) {
    EXPECT_EQ(compare_generations(r.peer, r.mine), mirror(r.expect)) << r.rule;
  }
}

TEST(generation_ids, decision_names) {
  std::set<std::string> names;
  for (const rd d : {rd::no_resync, rd::source, rd::target, rd::full_sync_source,
                     rd::full_sync_target, rd::split_brain, rd::unrelated})
    names.insert(to_string(d));
  EXPECT_EQ(names.size(), 7u);
  EXPECT_STREQ(to_string(rd::split_brain), "split_brain");
}

TEST(generation_ids, fresh_ids_are_random_and_non_zero) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 64; ++i) {
    const uint64_t id = new_generation_id();
    EXPECT_NE(id, 0u);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 64u);
}

// The life cycle the engine drives: connected, disconnect, write, reconnect, resync.
TEST(generation_ids, disconnect_write_resync) {
  generation_ids p{0xA, 0, {0, 0}};  // primary
  generation_ids s = p;              // secondary, in sync
  EXPECT_EQ(compare_generations(p, s), rd::no_resync);

  start_new_current(p, 0xB);  // the peer went away and the primary writes
  EXPECT_EQ(p, (generation_ids{0xB, 0xA, {0, 0}}));
  EXPECT_EQ(compare_generations(p, s), rd::source);
  EXPECT_EQ(compare_generations(s, p), rd::target);

  // A second promotion while still alone keeps the bitmap id (it covers everything since 0xA).
  start_new_current(p, 0xC);
  EXPECT_EQ(p, (generation_ids{0xC, 0xA, {0xB, 0}}));
  EXPECT_EQ(compare_generations(p, s), rd::source);

  const generation_ids source_before = p;
  finish_resync_as_source(p);
  finish_resync_as_target(s, source_before);
  EXPECT_EQ(p, (generation_ids{0xC, 0, {0xA, 0xB}}));
  EXPECT_EQ(s, p);
  EXPECT_EQ(compare_generations(p, s), rd::no_resync);

  // A disk that slept through all of it is older than any bitmap: full copy.
  const generation_ids sleeper{0xA, 0, {0, 0}};
  EXPECT_EQ(compare_generations(p, sleeper), rd::full_sync_source);
  EXPECT_EQ(compare_generations(sleeper, p), rd::full_sync_target);
}

TEST(generation_ids, both_sides_promoted_apart_is_split_brain) {
  generation_ids a{0xA, 0, {0, 0}};
  generation_ids b = a;
  start_new_current(a, 0xB);
  start_new_current(b, 0xC);
  EXPECT_EQ(compare_generations(a, b), rd::split_brain);
  EXPECT_EQ(compare_generations(b, a), rd::split_brain);
}

TEST(generation_ids, a_new_disk_promoted_gets_no_bitmap_id) {
  generation_ids g;
  start_new_current(g, 0x77);
  EXPECT_EQ(g, (generation_ids{0x77, 0, {0, 0}}));
  EXPECT_EQ(compare_generations(g, generation_ids{}), rd::full_sync_source);
  finish_resync_as_source(g);  // nothing to move
  EXPECT_EQ(g, (generation_ids{0x77, 0, {0, 0}}));
}

}  // namespace
}  // namespace tandem::dp::volume
