// SPDX-License-Identifier: Apache-2.0
// Network partition resolution: combines the daemon's probe results into a verdict.
#include "control/quorum/partition.h"

#include <stdexcept>
#include <utility>

namespace tandem::ctl::quorum {

std::string_view to_string(probe_kind k) noexcept {
  switch (k) {
    case probe_kind::ping:
      return "ping";
    case probe_kind::http:
      return "http";
  }
  return "?";
}

std::string_view to_string(partition_verdict v) noexcept {
  switch (v) {
    case partition_verdict::off:
      return "off";
    case partition_verdict::not_needed:
      return "not needed";
    case partition_verdict::reachable:
      return "reachable";
    case partition_verdict::isolated:
      return "isolated";
  }
  return "?";
}

partition_resolver::partition_resolver(partition_config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.max_age < std::chrono::nanoseconds::zero())
    throw std::invalid_argument("partition resolution: max_age must not be negative");
  if (cfg_.max_age == std::chrono::nanoseconds::zero()) cfg_.max_age = std::chrono::seconds(3);
  for (size_t i = 0; i < cfg_.targets.size(); ++i) {
    if (cfg_.targets[i].address.empty()) {
      throw std::invalid_argument("partition resolution: target " + std::to_string(i) +
                                  " has no address");
    }
  }
  latest_.resize(cfg_.targets.size());
}

void partition_resolver::record(const probe_result& r) {
  if (r.target >= latest_.size()) {
    throw std::invalid_argument("partition resolution: result for target " +
                                std::to_string(r.target) + ", only " +
                                std::to_string(latest_.size()) + " configured");
  }
  auto& slot = latest_[r.target];
  if (slot && r.at < slot->at) return;  // a slow probe finishing after a newer one
  slot = r;
}

bool partition_resolver::reachable(size_t target, time_point now) const {
  if (target >= latest_.size() || !latest_[target]) return false;
  const auto& r = *latest_[target];
  return r.reachable && now - r.at <= cfg_.max_age;
}

size_t partition_resolver::reachable_count(time_point now) const {
  size_t n = 0;
  for (size_t i = 0; i < latest_.size(); ++i)
    n += reachable(i, now) ? 1 : 0;
  return n;
}

size_t partition_resolver::failing_count(time_point now) const {
  size_t n = 0;
  for (size_t i = 0; i < latest_.size(); ++i)
    n += latest_[i] && !reachable(i, now) ? 1 : 0;
  return n;
}

void partition_resolver::adopt_results(const partition_resolver& old) {
  for (size_t i = 0; i < cfg_.targets.size(); ++i) {
    for (size_t j = 0; j < old.cfg_.targets.size(); ++j) {
      const probe_target& a = cfg_.targets[i];
      const probe_target& b = old.cfg_.targets[j];
      if (a.kind != b.kind || a.address != b.address || !old.latest_[j]) continue;
      latest_[i] = old.latest_[j];
      latest_[i]->target = i;
    }
  }
}

partition_verdict partition_resolver::decide(bool peers_lost, time_point now) const {
  if (!enabled()) return partition_verdict::off;
  if (!peers_lost) return partition_verdict::not_needed;
  return reachable_count(now) > 0 ? partition_verdict::reachable : partition_verdict::isolated;
}

std::string partition_resolver::describe_unreachable(time_point now) const {
  std::string out;
  for (size_t i = 0; i < latest_.size(); ++i) {
    if (reachable(i, now)) continue;
    if (!out.empty()) out += ", ";
    out += cfg_.targets[i].address + " (" + std::string(to_string(cfg_.targets[i].kind)) + ": ";
    const auto& r = latest_[i];
    if (!r) {
      out += "no result yet";
    } else if (r->reachable) {
      out += "last answer " +
             std::to_string(
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - r->at).count()) +
             " ms ago";
    } else {
      out += r->detail.empty() ? "no answer" : r->detail;
    }
    out += ")";
  }
  return out;
}

std::optional<partition_resolver::time_point> partition_resolver::next_deadline(
    time_point after) const {
  std::optional<time_point> next;
  for (const auto& r : latest_) {
    if (!r || !r->reachable) continue;
    // reachable() holds while now - at <= max_age: it changes just after at + max_age.
    const time_point t = r->at + cfg_.max_age + std::chrono::nanoseconds(1);
    if (t <= after) continue;
    if (!next || t < *next) next = t;
  }
  return next;
}

}  // namespace tandem::ctl::quorum
