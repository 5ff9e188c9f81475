// SPDX-License-Identifier: Apache-2.0
// The mirror resource: promotes this node's replica of a volume through tandem-replicator's
// control socket and provides its block device (FUSE file + loop device, or /dev/tandemN).
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "control/api/jsonl_socket.h"
#include "control/groups/resource.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;
using json = nlohmann::json;

// Between two looks while waiting for the peer to demote or for a resync to end.
constexpr milliseconds poll_interval{200};

milliseconds left_until(clock_type::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now());
  return std::max(left, 0ms);
}

// A start or stop that ends here; what() is the event's message.
struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The replicator is not there at all.
struct not_running : failure {
  using failure::failure;
};

// The replicator's disk states as the documentation writes them.
std::string disk_name(const std::string& d) {
  if (d == "up_to_date") return "UpToDate";
  if (d == "inconsistent") return "Inconsistent";
  if (d == "outdated") return "Outdated";
  if (d == "diskless") return "Diskless";
  return d.empty() ? "unknown" : d;
}

bool contains(const std::string& s, const char* what) {
  return s.find(what) != std::string::npos;
}

class mirror_resource final : public resource {
 public:
  mirror_resource(const config::resource_config& rc, const resource_env& env) : resource(rc.name) {
    const config::param_map p = rc.params_for(env.node);
    if (const std::string* s = p.str("volume")) volume_ = *s;
    if (const std::string* s = p.str("frontend")) fuse_ = *s == "fuse";
    if (env.cfg == nullptr) {
      throw std::runtime_error("resource " + rc.name + ": mirror needs the cluster configuration");
    }
    const auto& vols = env.cfg->mirrors.volumes;
    const auto it = std::find_if(vols.begin(), vols.end(),
                                 [&](const config::mirror_volume& v) { return v.name == volume_; });
    if (it == vols.end()) {
      throw std::runtime_error("resource " + rc.name + ": volume " + volume_ +
                               " is not in mirrors.volumes");
    }
    index_ = static_cast<size_t>(it - vols.begin());
    socket_ = env.cfg->mirrors.control_socket;
  }

  [[nodiscard]] config::resource_type type() const noexcept override {
    return config::resource_type::mirror;
  }

  [[nodiscard]] std::string device() const override {
    std::lock_guard<std::mutex> g(mu_);
    return device_;
  }

  [[nodiscard]] json describe() const override {
    return {{"volume", volume_}, {"frontend", fuse_ ? "fuse" : "kmod"}, {"device", device()}};
  }

 private:
  action_result do_start(const action_context& ctx) override;
  action_result do_stop(const action_context& ctx) override;
  // One request, answered within the time left; throws `not_running` or `failure`.
  json call(const json& request, clock_type::time_point deadline) const;
  // The volume's entry of the replicator's status; throws when it has none.
  json volume_status(clock_type::time_point deadline) const;
  void promote(clock_type::time_point deadline, bool& promoted);
  std::string provide_device(clock_type::time_point deadline);
  void set_device(std::string d) {
    std::lock_guard<std::mutex> g(mu_);
    device_ = std::move(d);
  }
  [[nodiscard]] std::string force_hint() const {
    return "If this node's copy must become the reference (what the peer has and this node "
           "lacks is lost), force it: tandemctl mirror promote " +
           volume_ + " --force";
  }
  [[nodiscard]] std::string refusal(const std::string& disk) const {
    return "volume " + volume_ + ": the local data is " + disk_name(disk) +
           ", not UpToDate: promotion refused. " + force_hint();
  }

  std::string volume_;
  bool fuse_ = false;
  size_t index_ = 0;
  std::string socket_;
  mutable std::mutex mu_;
  std::string device_;  // guarded by mu_
};

json mirror_resource::call(const json& request, clock_type::time_point deadline) const {
  const milliseconds left = left_until(deadline);
  const std::string cmd = request.value("cmd", std::string());
  if (left <= 0ms) {
    throw failure("volume " + volume_ + ": no time left for the replicator's " + cmd);
  }
  try {
    api::jsonl_client c(socket_, left);
    return c.call(request);
  } catch (const api::unavailable&) {
    throw not_running("tandem-replicator is not running (socket " + socket_ + ")");
  } catch (const std::exception& e) {
    throw failure("volume " + volume_ + ": " + cmd + " through tandem-replicator: " + e.what());
  }
}

json mirror_resource::volume_status(clock_type::time_point deadline) const {
  const json r = call({{"cmd", "status"}, {"volume", volume_}}, deadline);
  if (!r.value("ok", false)) {
    throw failure("tandem-replicator: " + r.value("error", std::string("status refused")));
  }
  if (!r.contains("volumes") || !r["volumes"].is_array() || r["volumes"].empty() ||
      !r["volumes"][0].is_object()) {
    throw failure("tandem-replicator's status has no volume " + volume_);
  }
  return r["volumes"][0];
}

// Makes this node primary on UpToDate data: waits for a peer that is still primary (it is
// demoting, or not yet found dead) and for a resync towards this node, within the deadline.
void mirror_resource::promote(clock_type::time_point deadline, bool& promoted) {
  for (;;) {
    const json v = volume_status(deadline);
    if (!v.value("attached", false)) {
      throw failure("volume " + volume_ +
                    " is not attached in tandem-replicator (tandemctl mirror " + "attach " +
                    volume_ + ")");
    }
    const std::string role = v.value("role", std::string());
    const std::string disk = v.value("disk", std::string());
    const std::string conn = v.value("connection", std::string());
    if (role == "primary" && disk == "up_to_date") return;
    if (disk != "up_to_date") {
      if (conn != "sync_target" && conn != "sync_pending") throw failure(refusal(disk));
      if (left_until(deadline) <= poll_interval) {
        std::string progress;
        if (v.contains("resync") && v["resync"].is_object()) {
          progress = " (" + std::to_string(v["resync"].value("done_bytes", uint64_t{0})) + " of " +
                     std::to_string(v["resync"].value("total_bytes", uint64_t{0})) + " bytes)";
        }
        throw failure("volume " + volume_ + ": still " + disk_name(disk) +
                      ", receiving a resync from the peer" + progress +
                      " when the activation timeout ran out");
      }
      std::this_thread::sleep_for(poll_interval);
      continue;
    }
    const json r = call({{"cmd", "promote"}, {"volume", volume_}}, deadline);
    if (r.value("ok", false)) {
      promoted = true;
      return;
    }
    const std::string err = r.value("error", std::string("refused"));
    if (contains(err, "not UpToDate")) {
      // It changed since the status (a peer's newer data arrived): the replicator's own words.
      throw failure("tandem-replicator: " + err + ". " + force_hint());
    }
    if (contains(err, "peer is primary")) {
      if (left_until(deadline) <= poll_interval) {
        throw failure("volume " + volume_ +
                      ": the peer is still primary; it did not demote before the activation "
                      "timeout ran out (" +
                      err + ")");
      }
      std::this_thread::sleep_for(poll_interval);
      continue;
    }
    throw failure("tandem-replicator: " + err);
  }
}

std::string mirror_resource::provide_device(clock_type::time_point deadline) {
  if (fuse_) {
    const json r = call({{"cmd", "loop"}, {"volume", volume_}}, deadline);
    if (!r.value("ok", false)) {
      throw failure("tandem-replicator: " + r.value("error", std::string("loop refused")));
    }
    if (!r.contains("device") || !r["device"].is_string() ||
        r["device"].get<std::string>().empty()) {
      throw failure("volume " + volume_ + ": tandem-replicator's loop answer names no device");
    }
    return r["device"].get<std::string>();
  }
  // The replicator says which device serves the volume; else tandem.ko's name for its index.
  std::string dev = "/dev/tandem" + std::to_string(index_);
  const json v = volume_status(deadline);
  if (v.contains("kernel") && v["kernel"].is_object() && v["kernel"].contains("device") &&
      v["kernel"]["device"].is_string()) {
    dev = v["kernel"]["device"].get<std::string>();
  }
  struct stat st {};
  if (::stat(dev.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    throw failure("volume " + volume_ + ": " + dev +
                  " is not there (frontend kmod needs tandem.ko loaded and the replicator serving "
                  "kernel devices: mirrors.kernel_devices or --kernel-devices)");
  }
  return dev;
}

action_result mirror_resource::do_start(const action_context& ctx) {
  const auto deadline = clock_type::now() + ctx.timeout;
  bool promoted = false;
  try {
    promote(deadline, promoted);
    const std::string dev = provide_device(deadline);
    set_device(dev);
    return {true, (promoted ? "promoted; " : "already primary; ") + dev};
  } catch (const failure& f) {
    if (promoted) {
      // Not left half-started: a short grace of its own for the demote.
      try {
        (void)call({{"cmd", "demote"}, {"volume", volume_}},
                   std::max(deadline, clock_type::now() + 2s));
      } catch (const failure&) {
      }
    }
    return {false, f.what()};
  }
}

action_result mirror_resource::do_stop(const action_context& ctx) {
  const auto deadline = clock_type::now() + ctx.timeout;
  try {
    json v;
    try {
      v = volume_status(deadline);
    } catch (const not_running& e) {
      set_device({});
      return {true, std::string(e.what()) + ": nothing to demote"};
    }
    if (!v.value("attached", false)) {
      set_device({});
      return {true, "volume " + volume_ + " is not attached: nothing to demote"};
    }
    // Each step is retried while what it waits for is transient: a loop device still held
    // for a moment after the umount, requests still in flight.
    auto step = [&](const char* cmd, const char* transient) {
      for (;;) {
        const json r = call({{"cmd", cmd}, {"volume", volume_}}, deadline);
        if (r.value("ok", false)) return;
        const std::string err = r.value("error", std::string("refused"));
        if (!contains(err, transient) || left_until(deadline) <= 100ms) {
          throw failure("tandem-replicator: " + err);
        }
        std::this_thread::sleep_for(100ms);
      }
    };
    if (fuse_) step("unloop", "in use");
    set_device({});
    step("demote", "in flight");
    return {true, "demoted"};
  } catch (const failure& f) {
    return {false, f.what()};
  }
}

}  // namespace

std::unique_ptr<resource> make_mirror_resource(const config::resource_config& rc,
                                               const resource_env& env) {
  return std::make_unique<mirror_resource>(rc, env);
}

}  // namespace tandem::ctl::groups
