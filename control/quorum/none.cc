// SPDX-License-Identifier: Apache-2.0
// No quorum: always held, every partition reported as a split-brain risk.
#include "control/quorum/none.h"

#include <utility>

namespace tandem::ctl::quorum {

none_quorum::none_quorum(cluster_ref cluster, time_point now, event_sink sink,
                         partition_config partition, duration stop_timeout)
    : quorum(std::move(cluster), std::move(partition), stop_timeout, std::move(sink)) {
  evaluate(now);
}

void none_quorum::membership_changed(time_point now) {
  const std::string down = names_down();
  if (down.empty() || down == reported_down_) {
    reported_down_ = down;
    return;
  }
  reported_down_ = down;
  std::string msg = "nodes " + down +
                    " are down or unreachable and no quorum is configured (mode none): if they "
                    "still run on the other side of a network partition, both sides may run the "
                    "same groups (split brain)";
  if (resolver_.enabled()) {
    msg += partition_state(now) == partition_verdict::isolated
               ? "; partition resolution: no target answers, this node gives its groups up"
               : "; partition resolution: a target answers, this node keeps its groups";
  }
  emit(quorum_events::split_brain_risk, severity::error, std::move(msg), now);
}

std::string none_quorum::held_detail(time_point /*now*/) const {
  return "mode none (no split-brain protection)";
}

status none_quorum::state(time_point now) const {
  status s = quorum::state(now);
  s.detail = peers_lost() ? "mode none, nodes down: " + names_down() + " (split-brain risk)"
                          : "mode none (no split-brain protection)";
  return s;
}

}  // namespace tandem::ctl::quorum
