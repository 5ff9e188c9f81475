// SPDX-License-Identifier: Apache-2.0
// Monitors: one interface (a blocking check with a timeout) with an implementation per monitor
// type. The group manager schedules the checks (interval, retries, `when`) and runs recovery;
// a monitor only answers "healthy or not, and why".
//
// Threading: check() runs on a monitor worker thread, never on tandemd's io thread, and never
// concurrently with itself (one monitor, one check at a time).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "control/config/cluster_config.h"
#include "control/groups/resource.h"

namespace tandem::ctl::groups {

struct check_result {
  bool ok = false;
  std::string message;  // failure: why, one line ("pid 4711 of resource web exited"); ok: ""
  // The check could not be made (a cloud API that did not answer, still throttled): neither
  // healthy nor failed. The manager warns once and starts no recovery, because moving the group
  // cannot fix the provider's API and the service itself may be fine (the seeds' "disable
  // recovery action, display a warning" for an API without response). ok must be false.
  bool inconclusive = false;
};

class monitor {
 public:
  virtual ~monitor() = default;
  monitor(const monitor&) = delete;
  monitor& operator=(const monitor&) = delete;

  [[nodiscard]] virtual config::monitor_type type() const noexcept = 0;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  // One check, blocking for at most about `timeout`; a check that cannot finish in time is a
  // failure whose message says it timed out.
  virtual check_result check(std::chrono::milliseconds timeout) = 0;

  // Event-driven monitors (nic_link) call `wake` from any thread when what they watch changes;
  // the group manager then checks at once instead of at the next interval. Called once, before
  // the first check; `wake` stays valid for the monitor's lifetime. Default: no events.
  virtual void set_wake(std::function<void()> /*wake*/) {}

 protected:
  explicit monitor(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

struct monitor_env {
  const config::cluster_config* cfg = nullptr;  // this node's effective configuration
  std::string node;                             // this node's name
  // A resource of the monitor's group by name (pid monitors watch an exec resource's
  // main_pid()); nullptr when there is none.
  std::function<resource*(std::string_view)> find;
  // The network namespace (/run/netns/<name>) that network monitors look at; empty: tandemd's
  // own.
  std::string netns;
};

// The monitor for `mc` (its parameters as seen from env.node). Throws std::runtime_error naming
// the monitor when its type cannot run here.
[[nodiscard]] std::unique_ptr<monitor> make_monitor(const config::monitor_config& mc,
                                                    const monitor_env& env);

}  // namespace tandem::ctl::groups
