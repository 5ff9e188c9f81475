// SPDX-License-Identifier: Apache-2.0
// Network partition resolution as in the seeds: is this node the isolated side of a partition?
//
// When heartbeats from some node stop, a node cannot tell whether that node died or whether it
// is itself cut off. The seeds answer with "acknowledgement devices": targets that are always
// up (a router, a NAT instance, a regional HTTPS endpoint). The daemon probes each target
// every interval (ICMP echo for `ping`, any HTTP answer for `http`) and hands the results in;
// this class only combines them:
//
// - resolution is needed only while a configured node is down (peers_lost); otherwise the
//   verdict is not_needed, whatever the probes say (an unreachable target is still reported);
// - a target counts as reachable while its LATEST result says so and is at most max_age old;
// - with peers lost, the node is `reachable` if at least one target is (the seeds: the
//   acknowledgement device answered), `isolated` if none is, including before any result.
//
// Pure logic, one owner, no clock of its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::ctl::quorum {

enum class probe_kind : uint8_t { ping, http };

[[nodiscard]] std::string_view to_string(probe_kind k) noexcept;

struct probe_target {
  probe_kind kind = probe_kind::ping;
  std::string address;  // ping: an IP address; http: a URL (for messages; the daemon probes)
};

struct partition_config {
  std::vector<probe_target> targets;  // empty: resolution off
  // A result older than this counts as unreachable: the daemon probes every interval, so a
  // result this old means the prober itself is stuck. 0: 3 s.
  std::chrono::nanoseconds max_age{0};
};

// One probe's outcome, as measured by the daemon.
struct probe_result {
  size_t target = 0;  // index into partition_config::targets
  bool reachable = false;
  std::chrono::steady_clock::time_point at;  // when the probe finished
  std::string detail;                        // e.g. "timeout after 1000 ms", "HTTP 200"
};

enum class partition_verdict : uint8_t {
  off,         // no targets configured
  not_needed,  // every configured node is up
  reachable,   // peers lost, but a target answers: the peers are gone, not us
  isolated,    // peers lost and no target answers: this node is the isolated side
};

[[nodiscard]] std::string_view to_string(partition_verdict v) noexcept;

class partition_resolver {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // Throws std::invalid_argument for an empty target address or a negative max_age.
  explicit partition_resolver(partition_config cfg);

  // Records a result; an older one than the target's latest is ignored. Throws
  // std::invalid_argument for a target index out of range.
  void record(const probe_result& r);

  // Takes over the latest results of `old` for the targets both have (same kind and address):
  // a reload that keeps a target does not forget that it answers.
  void adopt_results(const partition_resolver& old);

  [[nodiscard]] partition_verdict decide(bool peers_lost, time_point now) const;
  [[nodiscard]] bool enabled() const noexcept { return !cfg_.targets.empty(); }
  [[nodiscard]] bool reachable(size_t target, time_point now) const;
  [[nodiscard]] size_t reachable_count(time_point now) const;
  // Targets that have a result which is a failure or too old (not those never probed yet).
  [[nodiscard]] size_t failing_count(time_point now) const;
  // "10.0.0.1 (ping: timeout), https://x (http: no result yet)"
  [[nodiscard]] std::string describe_unreachable(time_point now) const;
  // The first instant after `after` at which a reachable result ages out (the verdict may
  // change then without new input).
  [[nodiscard]] std::optional<time_point> next_deadline(time_point after) const;
  [[nodiscard]] const partition_config& config() const noexcept { return cfg_; }

 private:
  partition_config cfg_;
  std::vector<std::optional<probe_result>> latest_;
};

}  // namespace tandem::ctl::quorum
