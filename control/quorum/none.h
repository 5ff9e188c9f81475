// SPDX-License-Identifier: Apache-2.0
// No quorum: always held. Every partition (a configured node down) raises a split-brain risk
// event, since this node cannot tell a dead peer from one cut off that still runs its groups.
// With partition resolution configured, an isolated node still gives its groups up (the seeds'
// behaviour), which removes the risk only when the interconnects and the targets fail together.
#pragma once

#include <chrono>

#include "control/quorum/quorum.h"

namespace tandem::ctl::quorum {

class none_quorum final : public quorum {
 public:
  // stop_timeout: the stop deadline after a partition-resolution loss.
  none_quorum(cluster_ref cluster, time_point now, event_sink sink, partition_config partition = {},
              duration stop_timeout = std::chrono::seconds(5));

  [[nodiscard]] mode kind() const noexcept override { return mode::none; }
  [[nodiscard]] status state(time_point now) const override;
  [[nodiscard]] duration takeover_delay() const noexcept override { return duration::zero(); }

 protected:
  [[nodiscard]] bool mode_holds(time_point /*now*/) const override { return true; }
  void membership_changed(time_point now) override;
  [[nodiscard]] std::string loss_reason(time_point /*now*/) const override { return {}; }
  [[nodiscard]] std::string held_detail(time_point now) const override;

 private:
  std::string reported_down_;  // the down set last reported as a risk
};

}  // namespace tandem::ctl::quorum
