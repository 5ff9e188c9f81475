// SPDX-License-Identifier: Apache-2.0
// Majority quorum: held while more than half of the configured nodes are up, this one included.
//
// An exact half (even node count) loses, unless the lowest_id tie-breaker is configured: then
// the half that contains the LOWEST CONFIGURED node id holds. Not "the lowest id among the nodes
// this half sees": a half cannot know whether the nodes it misses are dead or on the other side,
// and only "contains the globally lowest id" is true of at most one half.
//
// Safety rests on membership: both sides of a clean partition see the other side down after
// the heartbeat timeout, at about the same moment. The side that loses stops its groups within
// stop_timeout; the side that keeps quorum must wait takeover_delay() (= stop_timeout) after
// seeing a node down before starting that node's groups. docs/quorum.md discusses asymmetric
// partitions (where views differ), which only a lease mode rules out.
#pragma once

#include <chrono>
#include <cstdint>

#include "control/quorum/quorum.h"

namespace tandem::ctl::quorum {

enum class tie_breaker : uint8_t { none, lowest_id };

[[nodiscard]] std::string_view to_string(tie_breaker t) noexcept;

struct majority_config {
  tie_breaker tie = tie_breaker::none;
  // The time a node that lost quorum has to stop its groups; the winners wait as long before
  // taking them over. Cover the slowest group stop plus one heartbeat interval.
  duration stop_timeout = std::chrono::seconds(5);
};

class majority_quorum final : public quorum {
 public:
  // Starts with only this node up (a single-node cluster holds at once). Throws
  // std::invalid_argument for a bad cluster or partition configuration.
  majority_quorum(cluster_ref cluster, majority_config cfg, time_point now, event_sink sink,
                  partition_config partition = {});

  [[nodiscard]] mode kind() const noexcept override { return mode::majority; }
  [[nodiscard]] status state(time_point now) const override;
  [[nodiscard]] duration takeover_delay() const noexcept override { return cfg_.stop_timeout; }
  // Nodes needed for a strict majority (n / 2 + 1).
  [[nodiscard]] size_t needed() const noexcept { return cluster_.nodes.size() / 2 + 1; }

 protected:
  [[nodiscard]] bool mode_holds(time_point now) const override;
  void membership_changed(time_point now) override;
  [[nodiscard]] std::string loss_reason(time_point now) const override;
  [[nodiscard]] std::string held_detail(time_point now) const override;

 private:
  [[nodiscard]] bool tie() const { return 2 * up_count() == cluster_.nodes.size(); }
  [[nodiscard]] uint8_t lowest_id() const;
  [[nodiscard]] std::string counts() const;

  majority_config cfg_;
  bool tie_reported_ = false;
};

}  // namespace tandem::ctl::quorum
