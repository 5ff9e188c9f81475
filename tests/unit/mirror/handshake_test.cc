// SPDX-License-Identifier: Apache-2.0
// The handshake decision: identity refusals, each generation-id outcome, crash flags, roles,
// operator wishes, and symmetry (both sides always agree on who sends).
#include "dataplane/mirror/handshake.h"

#include <tuple>
#include <utility>

#include <gtest/gtest.h>

namespace tandem::dp::mirror {
namespace {

using volume::disk_state;
using volume::role;

hello_msg node(uint32_t id, uint64_t current = 0x10, uint64_t bitmap = 0) {
  hello_msg h;
  h.node_id = id;
  h.uuid.fill(0xab);
  h.volume_size = 1 << 30;
  h.block_size = 4096;
  h.bitmap_granularity = 65536;
  h.disk = disk_state::up_to_date;
  h.flags = hf_auto_resync;
  h.gen.current = current;
  h.gen.bitmap = bitmap;
  h.recv_slots = 256;
  h.recv_pages = 1024;
  h.page_size = 16384;
  h.max_io = 1 << 20;
  return h;
}

sync_action mirror_of(sync_action a) {
  switch (a) {
    case sync_action::source:
      return sync_action::target;
    case sync_action::target:
      return sync_action::source;
    case sync_action::full_source:
      return sync_action::full_target;
    case sync_action::full_target:
      return sync_action::full_source;
    default:
      return a;
  }
}

// decide(a, b), checking that decide(b, a) is its mirror image.
handshake_result both(const hello_msg& a, const hello_msg& b) {
  const handshake_result x = decide(a, b);
  const handshake_result y = decide(b, a);
  EXPECT_EQ(y.action, mirror_of(x.action)) << to_string(x.action) << " / " << to_string(y.action);
  EXPECT_EQ(x.start_now, y.start_now);
  return x;
}

TEST(mirror_handshake, identity_mismatches_are_refused_with_a_reason) {
  hello_msg a = node(1), b = node(2);
  b.uuid[3] = 0;
  auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::refuse);
  EXPECT_NE(r.reason.find("another volume"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("node 2"), std::string::npos) << r.reason;

  b = node(2);
  b.volume_size += 4096;
  r = both(a, b);
  EXPECT_EQ(r.action, sync_action::refuse);
  EXPECT_NE(r.reason.find("volume size differs"), std::string::npos) << r.reason;

  b = node(2);
  b.block_size = 512;
  EXPECT_EQ(both(a, b).action, sync_action::refuse);
  b = node(2);
  b.bitmap_granularity = 4096;
  EXPECT_EQ(both(a, b).action, sync_action::refuse);
  EXPECT_EQ(both(a, node(1)).action, sync_action::refuse);  // same node id
}

TEST(mirror_handshake, equal_ids_are_in_sync) {
  const auto r = both(node(1), node(2));
  EXPECT_EQ(r.action, sync_action::none);
  EXPECT_EQ(r.generations, volume::resync_decision::no_resync);
  // Two new disks are "in sync" too (nothing to copy yet).
  hello_msg a = node(1, 0), b = node(2, 0);
  a.disk = b.disk = disk_state::inconsistent;
  EXPECT_EQ(both(a, b).action, sync_action::none);
}

TEST(mirror_handshake, bitmap_resync_follows_the_generation_ids) {
  // a wrote without b: a's bitmap id is b's current.
  const hello_msg a = node(1, 0x20, 0x10), b = node(2, 0x10);
  const auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::source);
  EXPECT_TRUE(r.start_now);
  EXPECT_EQ(decide(b, a).action, sync_action::target);
}

TEST(mirror_handshake, a_new_peer_gets_a_full_resync) {
  hello_msg b = node(2, 0);
  b.disk = disk_state::inconsistent;
  EXPECT_EQ(both(node(1), b).action, sync_action::full_source);
}

TEST(mirror_handshake, split_brain_is_reported_not_resolved) {
  const hello_msg a = node(1, 0x20, 0x10), b = node(2, 0x30, 0x10);
  const auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::split_brain);
  EXPECT_NE(r.reason.find("split brain"), std::string::npos);
}

TEST(mirror_handshake, two_primaries_that_diverged_are_a_split_brain) {
  hello_msg a = node(1, 0x20, 0x10), b = node(2, 0x30, 0x10);
  a.role = b.role = role::primary;
  EXPECT_EQ(both(a, b).action, sync_action::split_brain);
}

// Two secondaries that diverged (both were promoted and wrote while apart, then demoted), with
// `a_bytes` / `b_bytes` changed since the split and promoted at `a_since` / `b_since`.
std::pair<hello_msg, hello_msg> diverged(split_brain_policy p, uint64_t a_bytes, uint64_t b_bytes,
                                         uint64_t a_since = 100, uint64_t b_since = 200) {
  hello_msg a = node(1, 0x20, 0x10), b = node(2, 0x30, 0x10);
  a.policy = b.policy = p;
  a.dirty_bytes = a_bytes;
  b.dirty_bytes = b_bytes;
  a.primary_since = a_since;
  b.primary_since = b_since;
  return {a, b};
}

TEST(mirror_handshake, split_brain_policy_disconnect_discards_nothing) {
  auto [a, b] = diverged(split_brain_policy::disconnect, 0, 65536);
  const auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::split_brain);
  EXPECT_TRUE(r.split_brain);
  EXPECT_NE(r.reason.find("policy disconnect: nothing is discarded"), std::string::npos)
      << r.reason;
}

TEST(mirror_handshake, split_brain_policy_discard_zero_changes) {
  auto [a, b] = diverged(split_brain_policy::discard_zero_changes, 0, 65536);
  auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::target);  // a changed nothing: it takes b's data
  EXPECT_TRUE(r.start_now);
  EXPECT_NE(r.reason.find("resolved: policy discard-zero-changes: this node has no changes"),
            std::string::npos)
      << r.reason;
  std::tie(a, b) = diverged(split_brain_policy::discard_zero_changes, 4096, 65536);
  r = both(a, b);
  EXPECT_EQ(r.action, sync_action::split_brain);  // both changed: undecided
  EXPECT_NE(r.reason.find("both sides changed data"), std::string::npos) << r.reason;
}

TEST(mirror_handshake, split_brain_policy_discard_younger_primary) {
  auto [a, b] = diverged(split_brain_policy::discard_younger_primary, 4096, 65536, 100, 200);
  auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::source);  // b became primary last: its changes go
  EXPECT_NE(r.reason.find("node 2 became primary last"), std::string::npos) << r.reason;
  std::tie(a, b) = diverged(split_brain_policy::discard_younger_primary, 4096, 65536, 300, 200);
  EXPECT_EQ(both(a, b).action, sync_action::target);
  // No promotion time on one side (metadata from before the field): undecided.
  std::tie(a, b) = diverged(split_brain_policy::discard_younger_primary, 4096, 65536, 0, 200);
  r = both(a, b);
  EXPECT_EQ(r.action, sync_action::split_brain);
  EXPECT_NE(r.reason.find("cannot tell which primary is younger"), std::string::npos) << r.reason;
}

TEST(mirror_handshake, split_brain_policy_discard_least_changes) {
  auto [a, b] = diverged(split_brain_policy::discard_least_changes, 4096, 65536);
  EXPECT_EQ(both(a, b).action, sync_action::target);  // a changed less
  std::tie(a, b) = diverged(split_brain_policy::discard_least_changes, 1 << 20, 65536);
  EXPECT_EQ(both(a, b).action, sync_action::source);
  // A tie falls back to the younger primary.
  std::tie(a, b) = diverged(split_brain_policy::discard_least_changes, 65536, 65536, 500, 200);
  const auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::target);
  EXPECT_NE(r.reason.find("equal changes"), std::string::npos) << r.reason;
}

TEST(mirror_handshake, split_brain_policies_must_match_and_the_operator_overrides) {
  auto [a, b] = diverged(split_brain_policy::discard_least_changes, 4096, 65536);
  b.policy = split_brain_policy::discard_zero_changes;
  auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::split_brain);
  EXPECT_NE(r.reason.find("policies differ"), std::string::npos) << r.reason;
  // The operator names the side whose changes go, under any policy.
  b.flags |= hf_discard_my_data;
  r = both(a, b);
  EXPECT_EQ(r.action, sync_action::source);
  EXPECT_NE(r.reason.find("the operator discards node 2's changes"), std::string::npos) << r.reason;
  a.flags |= hf_discard_my_data;
  EXPECT_EQ(both(a, b).action, sync_action::split_brain);
}

TEST(mirror_handshake, a_policy_never_makes_a_primary_the_target) {
  auto [a, b] = diverged(split_brain_policy::discard_least_changes, 4096, 65536);
  a.role = role::primary;  // a would lose its changes, but it is primary
  auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::split_brain);
  EXPECT_NE(r.reason.find("node 1 is primary: demote it first"), std::string::npos) << r.reason;
  b.role = role::primary;
  r = both(a, b);
  EXPECT_EQ(r.action, sync_action::split_brain);
  EXPECT_NE(r.reason.find("both nodes are primary"), std::string::npos) << r.reason;
}

TEST(mirror_handshake, unrelated_data_is_refused) {
  const auto r = both(node(1, 0x20), node(2, 0x30));
  EXPECT_EQ(r.action, sync_action::refuse);
  EXPECT_NE(r.reason.find("no data history"), std::string::npos) << r.reason;
}

TEST(mirror_handshake, a_crashed_primary_is_the_source_with_equal_ids) {
  hello_msg a = node(1), b = node(2);
  a.flags |= hf_crashed_primary;
  EXPECT_EQ(both(a, b).action, sync_action::source);
  // Both crashed as primary: the one that is primary now, else the higher node id.
  b.flags |= hf_crashed_primary;
  EXPECT_EQ(both(a, b).action, sync_action::target);
  a.role = role::primary;
  EXPECT_EQ(both(a, b).action, sync_action::source);
}

TEST(mirror_handshake, equal_ids_with_one_side_not_up_to_date_resume_the_resync) {
  hello_msg a = node(1), b = node(2);
  b.disk = disk_state::inconsistent;
  EXPECT_EQ(both(a, b).action, sync_action::source);
  a.disk = disk_state::outdated;
  EXPECT_EQ(both(a, b).action, sync_action::refuse);
}

TEST(mirror_handshake, role_rules) {
  hello_msg a = node(1), b = node(2);
  a.role = b.role = role::primary;
  EXPECT_EQ(both(a, b).action, sync_action::refuse);
  // The primary would be the target: refused, it must be demoted first.
  a = node(1, 0x20, 0x10);
  b = node(2, 0x10);
  b.role = role::primary;
  const auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::refuse);
  EXPECT_NE(r.reason.find("would be the sync target"), std::string::npos) << r.reason;
  // A source that is not UpToDate cannot send.
  a = node(1, 0x20, 0x10);
  a.disk = disk_state::outdated;
  EXPECT_EQ(both(a, node(2, 0x10)).action, sync_action::refuse);
}

TEST(mirror_handshake, automatic_resync_needs_both_sides_or_an_operator) {
  hello_msg a = node(1, 0x20, 0x10), b = node(2, 0x10);
  b.flags &= ~hf_auto_resync;
  auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::source);
  EXPECT_FALSE(r.start_now);
  b.flags |= hf_want_resync;
  EXPECT_TRUE(both(a, b).start_now);
}

TEST(mirror_handshake, operator_full_resync) {
  hello_msg a = node(1), b = node(2);
  a.flags |= hf_want_full_source;
  auto r = both(a, b);
  EXPECT_EQ(r.action, sync_action::full_source);
  EXPECT_TRUE(r.start_now);
  b.flags |= hf_want_full_source;
  EXPECT_EQ(both(a, b).action, sync_action::refuse);
  b = node(2);
  a.disk = disk_state::inconsistent;
  EXPECT_EQ(both(a, b).action, sync_action::refuse);
}

}  // namespace
}  // namespace tandem::dp::mirror
