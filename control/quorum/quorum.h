// SPDX-License-Identifier: Apache-2.0
// Quorum: may this node run failover groups now? One interface, four modes chosen at startup.
//
// Pure decision logic with an injected clock (like control/cluster/membership.h): no sockets,
// no threads, no timers. The daemon feeds it what membership says and drives time:
//
//   on a membership change:   q.update_membership(ids of the nodes up, this one included, now)
//   on probe results:          q.update_reachability(results, now)   (partition resolution)
//   on a timer:                q.tick(now)                (arm it at q.next_deadline())
//   before starting a group:   q.holds(now)
//
// Modes (docs/quorum.md has the reasoning and the timelines):
// - majority:       more than half of the configured nodes are up; an exact half holds only with
//                   the lowest_id tie-breaker and only if it contains the lowest configured id.
// - witness_lease / etcd_lease (lease.h): only while this node holds an unexpired lease, counted
//                   on its own clock from the moment it SENT the request, minus a safety margin.
// - none:           always held; every partition (a configured node down) is reported as a
//                   split-brain risk.
// Network partition resolution (partition.h) can be added to any mode; it can only take quorum
// away (an isolated node gives it up), never grant it.
//
// State changes raise events (module "quorum") into the sink; a loss also calls the on_lost
// callback with the deadline by which the node's groups must be stopped (or the node fenced).
// Not thread-safe: one owner (the daemon's strand).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/cluster/event.h"
#include "control/quorum/partition.h"

namespace tandem::ctl::quorum {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = std::chrono::nanoseconds;
using cluster::event;
using cluster::event_sink;
using cluster::severity;

inline constexpr std::string_view quorum_module = "quorum";

// Event ids of the "quorum" module (docs/quorum.md has the messages).
namespace quorum_events {
inline constexpr uint32_t held = 1;              // info: quorum acquired
inline constexpr uint32_t lost = 2;              // error: quorum lost; groups must stop
inline constexpr uint32_t renew_failed = 3;      // warning: a lease renewal failed, still held
inline constexpr uint32_t renew_recovered = 4;   // info: renewals succeed again
inline constexpr uint32_t held_elsewhere = 5;    // info: the lease is held by another node
inline constexpr uint32_t split_brain_risk = 6;  // error: mode none and a node is unreachable
inline constexpr uint32_t tie_broken = 7;        // warning: exact half, kept by the tie-breaker
inline constexpr uint32_t lease_revoked = 8;     // error: the server says we no longer hold it
inline constexpr uint32_t unreachable = 9;       // warning: lease server unreachable (not held)
inline constexpr uint32_t isolated = 10;         // error: partition resolution: no target answers
inline constexpr uint32_t targets_unreachable = 11;  // warning / info: targets lost / back
inline constexpr uint32_t suspended = 12;      // error: the clock jumped (suspend), lease dropped
inline constexpr uint32_t released = 13;       // info: the lease was given back
inline constexpr uint32_t lease_anomaly = 14;  // warning: an answer that makes no sense
}  // namespace quorum_events

enum class mode : uint8_t { none, majority, witness_lease, etcd_lease };

[[nodiscard]] std::string_view to_string(mode m) noexcept;

// The cluster as quorum sees it: every configured node, this one included.
struct node_ref {
  uint8_t id = 0;  // as in the membership configuration (< 32)
  std::string name;
};
struct cluster_ref {
  uint8_t self = 0;
  std::vector<node_ref> nodes;
};

// A loss of quorum, handed to the on_lost callback.
struct loss {
  time_point at;       // the `now` of the call that noticed it
  time_point stop_by;  // the node's groups must be stopped (or the node fenced) by then
  std::string reason;
};
using loss_callback = std::function<void(const loss&)>;

// What the API and `tandemctl status` show.
struct status {
  mode kind = mode::none;
  bool holds = false;
  std::string detail;  // one line, e.g. "2 of 3 nodes up (2 needed)" or "lease epoch 7 ..."
  // Lease modes.
  std::string holder;                     // last known holder ("" unknown or none)
  uint64_t epoch = 0;                     // of this node's lease (0: none)
  std::optional<time_point> valid_until;  // quorum lapses then unless renewed
  std::optional<time_point> stop_by;      // groups stopped by then if it lapses
  // Membership-based modes.
  size_t up = 0;          // configured nodes up, this one included
  size_t configured = 0;  // configured nodes
  size_t needed = 0;      // majority: nodes needed (a tie counts as needed + 0 with a breaker)
  partition_verdict partition = partition_verdict::off;
};

class quorum {
 public:
  virtual ~quorum() = default;
  quorum(const quorum&) = delete;
  quorum& operator=(const quorum&) = delete;

  [[nodiscard]] virtual mode kind() const noexcept = 0;

  // The nodes membership says are up now, this node included (ids; unknown ids are ignored).
  void update_membership(std::span<const uint8_t> up, time_point now);
  // Latest partition-resolution probe results (partition.h); ignored without targets.
  void update_reachability(std::span<const probe_result> results, time_point now);
  // Time passed: lease lapses, result ageing. Arm a timer at next_deadline().
  void tick(time_point now);
  // A reloaded configuration's partition-resolution targets. Targets kept from the old list
  // keep their latest result; new ones count as unreachable until probed, as at start-up.
  // Throws std::invalid_argument like the constructor and keeps the old targets then.
  void set_partition(partition_config partition, time_point now);

  [[nodiscard]] bool holds(time_point now) const;
  // The partition-resolution targets in use.
  [[nodiscard]] const std::vector<probe_target>& partition_targets() const noexcept {
    return resolver_.config().targets;
  }
  // The earliest time at which tick() (or, for leases, next_request()) has something to do.
  [[nodiscard]] virtual std::optional<time_point> next_deadline() const;
  [[nodiscard]] virtual status state(time_point now) const;
  // How long after seeing a peer down this node must wait before starting that peer's groups:
  // the time the peer has to stop them once it notices its own loss. 0 for leases (the new
  // holder can only get the lease once the old one has expired, after its stop deadline).
  [[nodiscard]] virtual duration takeover_delay() const noexcept = 0;

  // Called (after the `lost` event) each time quorum goes from held to not held.
  void on_lost(loss_callback cb) { on_lost_ = std::move(cb); }

 protected:
  // Validates `cluster` (self configured, unique ids < 32, names) and `partition`; throws
  // std::invalid_argument naming the problem. stop_timeout: the stop deadline after a loss that
  // has no lease to bound it (majority, none, partition resolution).
  quorum(cluster_ref cluster, partition_config partition, duration stop_timeout, event_sink sink);

  // The mode's own rule, without partition resolution.
  [[nodiscard]] virtual bool mode_holds(time_point now) const = 0;
  virtual void membership_changed(time_point /*now*/) {}
  virtual void time_passed(time_point /*now*/) {}
  // Why the mode's own rule no longer holds, and the stop deadline for a loss noticed at `now`.
  [[nodiscard]] virtual std::string loss_reason(time_point now) const = 0;
  [[nodiscard]] virtual time_point stop_deadline(time_point now) const;
  // A line for the `held` event.
  [[nodiscard]] virtual std::string held_detail(time_point now) const = 0;

  // Re-evaluates holds(now) and raises held / lost on a change. Every input ends with it.
  void evaluate(time_point now);
  void emit(uint32_t id, severity level, std::string message, time_point now,
            std::optional<uint8_t> node = std::nullopt) const;

  [[nodiscard]] bool is_up(uint8_t id) const;
  [[nodiscard]] size_t up_count() const;
  [[nodiscard]] const std::string& name_of(uint8_t id) const;
  [[nodiscard]] std::string names_down() const;  // "node-b, node-c"
  [[nodiscard]] bool peers_lost() const { return up_count() < cluster_.nodes.size(); }
  [[nodiscard]] partition_verdict partition_state(time_point now) const {
    return resolver_.decide(peers_lost(), now);
  }

  cluster_ref cluster_;
  std::vector<uint8_t> up_;  // configured ids up, sorted (self always)
  partition_resolver resolver_;
  duration stop_timeout_;
  event_sink sink_;
  time_point last_now_{};  // of the last input: deadlines at or before it are past

 private:
  void note_partition(time_point now);

  bool reported_ = false;  // last holds() raised as an event
  partition_verdict last_verdict_ = partition_verdict::off;
  bool started_ = false;  // the first evaluate() only records the verdict
  bool targets_warned_ = false;
  loss_callback on_lost_;
};

}  // namespace tandem::ctl::quorum
