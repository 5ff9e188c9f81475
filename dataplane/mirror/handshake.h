// SPDX-License-Identifier: Apache-2.0
// What two volume engines do when they meet: the decision taken from both hello messages.
//
// Pure and symmetric: decide(a, b) and decide(b, a) name the same sync source and agree on
// everything else, so both sides reach the same result without another round trip. The rules,
// in order, are the table in docs/mirror.md. Split-brain policies (Mirror engine II) plug in at
// the split_brain outcome.
#pragma once

#include <string>

#include "dataplane/mirror/protocol.h"
#include "dataplane/volume/metadata.h"

namespace tandem::dp::mirror {

enum class sync_action : uint8_t {
  none,         // same data: replicate
  source,       // bitmap-driven resync, this node sends
  target,       // bitmap-driven resync, this node receives
  full_source,  // whole-volume resync, this node sends
  full_target,  // whole-volume resync, this node receives
  split_brain,  // both changed the data independently: nothing is resynced
  refuse,       // identity mismatch, unrelated data, role conflict: nothing happens
};
[[nodiscard]] const char* to_string(sync_action a) noexcept;

struct handshake_result {
  sync_action action = sync_action::refuse;
  // compare_generations(mine, peer) (also for the outcomes it did not decide).
  volume::resync_decision generations = volume::resync_decision::unrelated;
  // A resync starts at once (both allow automatic resync, or an operator asked); otherwise it
  // waits (sync_pending) for request_resync().
  bool start_now = false;
  // Why: the refusal or split brain in words, naming the peer (empty for none/resync). A split
  // brain a policy or the operator resolved has split_brain set, a resync action, and the
  // decision here.
  std::string reason;
  bool split_brain = false;
};

[[nodiscard]] bool is_resync(sync_action a) noexcept;
[[nodiscard]] bool is_source(sync_action a) noexcept;
[[nodiscard]] bool is_full(sync_action a) noexcept;

// `mine` is this node's hello, `peer` the peer's (already checked for the protocol version).
[[nodiscard]] handshake_result decide(const hello_msg& mine, const hello_msg& peer);

// "current 5e1c.. bitmap 0 history 77a0.. 0": generation ids for logs and reasons (hex).
[[nodiscard]] std::string describe_gens(const volume::generation_ids& g);

}  // namespace tandem::dp::mirror
