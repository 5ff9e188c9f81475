// SPDX-License-Identifier: Apache-2.0
// Group resources: one interface (start / stop, blocking, on the group's worker thread) with an
// implementation per resource type, chosen from the configuration at group set-up.
//
// Threading: the group manager calls start() and stop() of one group's resources one at a
// time, on that group's worker thread, never on tandemd's io thread. The `probe` accessors
// (device(), main_pid(), describe()) may be called from other threads (monitors, the API) at
// any time and must be safe for that (atomics or an internal mutex).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/cluster_config.h"

namespace tandem::ctl::groups {

// Who acts and why. exec resources export these as TANDEM_CLUSTER, TANDEM_NODE, TANDEM_GROUP,
// TANDEM_RESOURCE and TANDEM_EVENT (the seeds' exec-resource environment).
struct action_context {
  std::string cluster;
  std::string node;
  std::string group;
  std::string resource;
  // Why the group acts: "start" (cluster start, group start), "failover" (taken over from a
  // failed or lost node), "move" (operator move), "failback", "restart" (monitor recovery),
  // "stop" (operator stop, cluster stop), "quorum" (quorum lost).
  std::string event;
  std::chrono::milliseconds timeout{60'000};  // the policy's activation / deactivation timeout
};

struct action_result {
  bool ok = false;
  std::string message;  // failure: why, for the event (one line); success: a short detail or ""
};

class resource {
 public:
  virtual ~resource() = default;
  resource(const resource&) = delete;
  resource& operator=(const resource&) = delete;

  [[nodiscard]] virtual config::resource_type type() const noexcept = 0;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  // Bring the resource up on this node. Blocking; returns within about ctx.timeout: whatever it
  // started and still runs then is stopped and the result is a failure that says so.
  // Starting an already active resource succeeds (idempotent). An exception from do_start()
  // is a failure whose message is "start: <what>".
  action_result start(const action_context& ctx);
  // Take it down. Blocking, within about ctx.timeout. Stopping an inactive resource succeeds.
  action_result stop(const action_context& ctx);
  // The group's activation begins and this resource will be started after the ones before it:
  // begin whatever slow check changes nothing and may run in the background meanwhile (a
  // floating IP's duplicate-address probe), so start() finds it done. Called on the group's
  // worker thread just before the first resource starts; never throws; the default does
  // nothing. start() must not depend on it (it may come long after, or not at all).
  virtual void prepare(const action_context& /*ctx*/) noexcept {}
  // The group stays active here after another node may have claimed what this resource holds (a
  // peer came back after a partition, or stopped the group after running it at the same time):
  // assert it again (a floating IP announces itself again). Called on the group's worker
  // thread, only while the resource is active; never throws; the default does nothing.
  virtual void reassert(const action_context& /*ctx*/) noexcept {}

  // ---- probes (any thread) ----
  // The block device this resource provides ("" when none or not active): mirror resources.
  [[nodiscard]] virtual std::string device() const { return {}; }
  // The main process this resource runs (-1 when none): asynchronous exec resources.
  [[nodiscard]] virtual pid_t main_pid() const { return -1; }
  // Details for `tandemctl group status` (device, mount point, pid, ...).
  [[nodiscard]] virtual nlohmann::json describe() const { return nlohmann::json::object(); }

 protected:
  explicit resource(std::string name) : name_(std::move(name)) {}
  // What start() and stop() do; they may throw (anything unexpected: a malformed answer, /proc
  // surprises).
  virtual action_result do_start(const action_context& ctx) = 0;
  virtual action_result do_stop(const action_context& ctx) = 0;

 private:
  std::string name_;
};

// What resources need from their surroundings.
struct resource_env {
  const config::cluster_config* cfg = nullptr;  // this node's effective configuration
  std::string node;                             // this node's name
  // Finds another resource of the same group by name (a filesystem's `mirror`); nullptr when
  // there is none. Valid for the resource's lifetime.
  std::function<resource*(std::string_view)> find;
  // Where exec resources' output goes (appended); empty: discarded.
  std::string log_dir;
  // The network namespace (/run/netns/<name>) that network resources act in; empty: tandemd's
  // own (the normal case; tests give one).
  std::string netns;
};

// The resource for `rc` (its parameters as seen from env.node). Throws std::runtime_error
// naming the resource when its type cannot run here, e.g. a type that this build lacks.
[[nodiscard]] std::unique_ptr<resource> make_resource(const config::resource_config& rc,
                                                      const resource_env& env);

}  // namespace tandem::ctl::groups
