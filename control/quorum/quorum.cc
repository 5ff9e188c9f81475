// SPDX-License-Identifier: Apache-2.0
// The quorum base: membership and partition-resolution inputs, held / lost transitions, events.
#include "control/quorum/quorum.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <utility>

namespace tandem::ctl::quorum {
namespace {

constexpr size_t max_node_id = 32;  // membership's ids are 0..31

std::string ms(duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

std::string_view to_string(mode m) noexcept {
  switch (m) {
    case mode::none:
      return "none";
    case mode::majority:
      return "majority";
    case mode::witness_lease:
      return "witness";
    case mode::etcd_lease:
      return "etcd";
  }
  return "?";
}

quorum::quorum(cluster_ref cluster, partition_config partition, duration stop_timeout,
               event_sink sink)
    : cluster_(std::move(cluster)),
      resolver_(std::move(partition)),
      stop_timeout_(stop_timeout),
      sink_(std::move(sink)) {
  std::set<uint8_t> ids;
  std::set<std::string> names;
  bool self_found = false;
  for (const auto& n : cluster_.nodes) {
    if (n.id >= max_node_id)
      throw std::invalid_argument("quorum: node id " + std::to_string(n.id) + " out of range");
    if (!ids.insert(n.id).second)
      throw std::invalid_argument("quorum: node id " + std::to_string(n.id) + " appears twice");
    if (n.name.empty())
      throw std::invalid_argument("quorum: node id " + std::to_string(n.id) + " has no name");
    if (!names.insert(n.name).second)
      throw std::invalid_argument("quorum: node name '" + n.name + "' appears twice");
    self_found = self_found || n.id == cluster_.self;
  }
  if (!self_found) {
    throw std::invalid_argument("quorum: this node (id " + std::to_string(cluster_.self) +
                                ") is not among the configured nodes");
  }
  if (stop_timeout_ < duration::zero())
    throw std::invalid_argument("quorum: stop timeout must not be negative");
  up_ = {cluster_.self};
}

void quorum::update_membership(std::span<const uint8_t> up, time_point now) {
  std::vector<uint8_t> next{cluster_.self};
  for (uint8_t id : up) {
    const bool configured = std::any_of(cluster_.nodes.begin(), cluster_.nodes.end(),
                                        [&](const node_ref& n) { return n.id == id; });
    if (configured) next.push_back(id);
  }
  std::sort(next.begin(), next.end());
  next.erase(std::unique(next.begin(), next.end()), next.end());
  const bool changed = next != up_;
  up_ = std::move(next);
  if (changed) membership_changed(now);
  evaluate(now);
}

void quorum::update_reachability(std::span<const probe_result> results, time_point now) {
  for (const auto& r : results)
    resolver_.record(r);
  evaluate(now);
}

void quorum::set_partition(partition_config partition, time_point now) {
  partition_resolver next(std::move(partition));
  next.adopt_results(resolver_);
  const bool was_enabled = resolver_.enabled();
  resolver_ = std::move(next);
  // Resolution switched on (or off) is a change of verdict from `off`: an isolated node is then
  // reported as such. The target warning carries over, so a reload that drops the failing target
  // says "answers again" and one that keeps it does not warn twice.
  started_ = true;
  if (!was_enabled || !resolver_.enabled()) last_verdict_ = partition_verdict::off;
  if (!resolver_.enabled()) targets_warned_ = false;
  evaluate(now);
}

void quorum::tick(time_point now) {
  time_passed(now);
  evaluate(now);
}

bool quorum::holds(time_point now) const {
  return mode_holds(now) && partition_state(now) != partition_verdict::isolated;
}

std::optional<time_point> quorum::next_deadline() const {
  return resolver_.next_deadline(last_now_);
}

status quorum::state(time_point now) const {
  status s;
  s.kind = kind();
  s.holds = holds(now);
  s.up = up_count();
  s.configured = cluster_.nodes.size();
  s.partition = partition_state(now);
  return s;
}

time_point quorum::stop_deadline(time_point now) const {
  return now + stop_timeout_;
}

void quorum::evaluate(time_point now) {
  last_now_ = now;
  note_partition(now);
  const bool h = holds(now);
  if (h == reported_) return;
  reported_ = h;
  if (h) {
    emit(quorum_events::held, severity::info, "quorum held: " + held_detail(now), now);
    return;
  }
  loss l;
  l.at = now;
  l.stop_by = stop_deadline(now);
  if (mode_holds(now)) {
    l.reason = "network partition resolution: nodes " + names_down() +
               " are down and no target answers (" + resolver_.describe_unreachable(now) +
               "): this node is the isolated side";
  } else {
    l.reason = loss_reason(now);
  }
  const duration left = l.stop_by - now;
  emit(quorum_events::lost, severity::error,
       "quorum lost: " + l.reason + "; groups must be stopped within " +
           ms(std::max(left, duration::zero())),
       now);
  if (on_lost_) on_lost_(l);
}

void quorum::note_partition(time_point now) {
  if (!resolver_.enabled()) return;
  const partition_verdict v = partition_state(now);
  if (!started_) {  // construction: no membership or probe has spoken yet, nothing to report
    started_ = true;
    last_verdict_ = v;
    return;
  }
  if (v != last_verdict_) {
    if (v == partition_verdict::isolated) {
      emit(quorum_events::isolated, severity::error,
           "network partition: nodes " + names_down() + " are down and no partition-resolution " +
               "target answers (" + resolver_.describe_unreachable(now) +
               "): this node is the isolated side",
           now);
    }
    last_verdict_ = v;
  }
  // Targets failing while they are not needed are worth a warning: resolution would fail.
  const size_t failing = resolver_.failing_count(now);
  if (failing > 0 && !targets_warned_) {
    targets_warned_ = true;
    emit(quorum_events::targets_unreachable, severity::warning,
         "partition-resolution targets not answering: " + resolver_.describe_unreachable(now), now);
  } else if (failing == 0 && targets_warned_) {
    targets_warned_ = false;
    emit(quorum_events::targets_unreachable, severity::info,
         "every partition-resolution target answers again", now);
  }
}

void quorum::emit(uint32_t id, severity level, std::string message, time_point now,
                  std::optional<uint8_t> node) const {
  if (!sink_) return;
  event e;
  e.id = id;
  e.level = level;
  e.module = quorum_module;
  e.message = std::move(message);
  e.time = now;
  e.node = node;
  sink_(e);
}

bool quorum::is_up(uint8_t id) const {
  return std::binary_search(up_.begin(), up_.end(), id);
}

size_t quorum::up_count() const {
  return up_.size();
}

const std::string& quorum::name_of(uint8_t id) const {
  for (const auto& n : cluster_.nodes)
    if (n.id == id) return n.name;
  static const std::string unknown = "?";
  return unknown;
}

std::string quorum::names_down() const {
  std::string out;
  for (const auto& n : cluster_.nodes) {
    if (is_up(n.id)) continue;
    if (!out.empty()) out += ", ";
    out += n.name;
  }
  return out;
}

}  // namespace tandem::ctl::quorum
