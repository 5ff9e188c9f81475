// SPDX-License-Identifier: Apache-2.0
// Majority quorum over the membership view, with the optional lowest-id tie-breaker.
#include "control/quorum/majority.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace tandem::ctl::quorum {

std::string_view to_string(tie_breaker t) noexcept {
  switch (t) {
    case tie_breaker::none:
      return "none";
    case tie_breaker::lowest_id:
      return "lowest_id";
  }
  return "?";
}

majority_quorum::majority_quorum(cluster_ref cluster, majority_config cfg, time_point now,
                                 event_sink sink, partition_config partition)
    : quorum(std::move(cluster), std::move(partition), cfg.stop_timeout, std::move(sink)),
      cfg_(cfg) {
  evaluate(now);
}

uint8_t majority_quorum::lowest_id() const {
  return std::min_element(cluster_.nodes.begin(), cluster_.nodes.end(),
                          [](const node_ref& x, const node_ref& y) { return x.id < y.id; })
      ->id;
}

bool majority_quorum::mode_holds(time_point /*now*/) const {
  if (up_count() >= needed()) return true;
  return tie() && cfg_.tie == tie_breaker::lowest_id && is_up(lowest_id());
}

std::string majority_quorum::counts() const {
  return std::to_string(up_count()) + " of " + std::to_string(cluster_.nodes.size()) +
         " nodes up (" + std::to_string(needed()) + " needed";
}

void majority_quorum::membership_changed(time_point now) {
  const bool kept_by_breaker = tie() && cfg_.tie == tie_breaker::lowest_id && is_up(lowest_id());
  if (kept_by_breaker && !tie_reported_) {
    emit(quorum_events::tie_broken, severity::warning,
         "exactly half of the nodes are up (" + counts() + "; nodes " + names_down() +
             " down): this half keeps quorum because it has the lowest node id (" +
             std::to_string(lowest_id()) + ", " + name_of(lowest_id()) + ")",
         now);
  }
  tie_reported_ = kept_by_breaker;
}

std::string majority_quorum::loss_reason(time_point /*now*/) const {
  std::string r = counts() + "; down: " + names_down() + ")";
  if (tie()) {
    if (cfg_.tie == tie_breaker::none) {
      r += ", exactly half and no tie-breaker configured";
    } else {
      r += ", exactly half and the other half has the lowest node id (" +
           std::to_string(lowest_id()) + ", " + name_of(lowest_id()) + ")";
    }
  }
  return r;
}

std::string majority_quorum::held_detail(time_point /*now*/) const {
  if (up_count() >= needed()) return counts() + ")";
  return counts() + "), exactly half with the lowest node id (tie-breaker)";
}

status majority_quorum::state(time_point now) const {
  status s = quorum::state(now);
  s.needed = needed();
  s.detail = mode_holds(now) ? held_detail(now) : loss_reason(now);
  return s;
}

}  // namespace tandem::ctl::quorum
