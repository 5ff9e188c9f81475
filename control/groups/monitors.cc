// SPDX-License-Identifier: Apache-2.0
// The monitor types: pid, script, ip (ICMP echo), mirror_state and mirror_connection; make_monitor.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api/jsonl_socket.h"
#include "control/config/groups_config.h"
#include "control/exec/process.h"
#include "control/groups/monitor.h"
#include "control/quorum/prober.h"

namespace tandem::ctl::groups {

// Defined in monitor_nic_link.cc, resource_floating_ip.cc, resource_aws.cc and
// resource_dns.cc.
std::unique_ptr<monitor> make_nic_link_monitor(const config::monitor_config& mc,
                                               const monitor_env& env);
std::unique_ptr<monitor> make_floating_ip_monitor(const config::monitor_config& mc,
                                                  const monitor_env& env);
std::unique_ptr<monitor> make_aws_vip_monitor(const config::monitor_config& mc,
                                              const monitor_env& env);
std::unique_ptr<monitor> make_aws_eip_monitor(const config::monitor_config& mc,
                                              const monitor_env& env);
std::unique_ptr<monitor> make_aws_az_monitor(const config::monitor_config& mc,
                                             const monitor_env& env);
std::unique_ptr<monitor> make_dns_monitor(const config::monitor_config& mc, const monitor_env& env);

namespace {

using namespace std::chrono_literals;
using config::monitor_type;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using json = nlohmann::json;

// ---- helpers ------------------------------------------------------------------------------------

// `s` on one line: control characters become spaces, runs of blanks one space, no blanks at
// either end (a script's output ends up in an event message).
std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool blank = false;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      blank = !out.empty();
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

// The last `max` bytes or so of `output`, on one line, "..." in front when cut. The cut moves
// forward to a UTF-8 character boundary.
std::string output_tail(std::string_view output, size_t max = 200) {
  std::string line = one_line(output);
  if (line.size() <= max) return line;
  size_t from = line.size() - max;
  while (from < line.size() && (static_cast<unsigned char>(line[from]) & 0xc0) == 0x80)
    ++from;
  return "..." + line.substr(from);
}

std::string ms(milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

const std::string& required_string(const config::param_map& p, std::string_view key,
                                   const std::string& monitor) {
  const std::string* v = p.str(key);
  if (v == nullptr || v->empty()) {
    throw std::runtime_error("monitor " + monitor + ": parameter " + std::string(key) +
                             " is missing");
  }
  return *v;
}

// ---- pid ----------------------------------------------------------------------------------------

struct proc_stat {
  bool exists = false;
  char state = '?';
  uint64_t start_time = 0;  // clock ticks after boot: tells a reused pid from the one we saw
};

proc_stat read_proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  // "pid (comm) state ppid ...": comm may hold anything, including ") ", so the last ')' ends it.
  const size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return {};
  proc_stat st;
  st.exists = true;
  st.state = line[close + 2];
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {  // field 22 is starttime (proc(5))
    if (i == 22) st.start_time = std::strtoull(field.c_str(), nullptr, 10);
  }
  return st;
}

// Healthy while the exec resource's main process exists and has not ended. tandemd is that
// process's parent: a process that ended stays a zombie until the resource reaps it, and a
// zombie counts as exited. The start time seen at the previous check guards against the pid
// having been reused by an unrelated process in between.
class pid_monitor final : public monitor {
 public:
  pid_monitor(std::string name, std::string resource_name,
              std::function<resource*(std::string_view)> find)
      : monitor(std::move(name)), resource_(std::move(resource_name)), find_(std::move(find)) {}

  monitor_type type() const noexcept override { return monitor_type::pid; }

  check_result check(milliseconds /*timeout*/) override {
    resource* r = find_ ? find_(resource_) : nullptr;
    if (r == nullptr) return {false, "the group has no resource " + resource_};
    const pid_t pid = r->main_pid();
    if (pid <= 0) {
      seen_pid_ = -1;
      return {false, "resource " + resource_ + " has no running process"};
    }
    const std::string which = "pid " + std::to_string(pid) + " of resource " + resource_;
    const proc_stat st = read_proc_stat(pid);
    if (!st.exists) return {false, which + " exited"};
    if (st.state == 'Z' || st.state == 'X') return {false, which + " exited (not yet reaped)"};
    if (pid == seen_pid_ && st.start_time != seen_start_) {
      return {false, which + " exited (the pid now belongs to another process)"};
    }
    seen_pid_ = pid;
    seen_start_ = st.start_time;
    return {true, {}};
  }

 private:
  std::string resource_;
  std::function<resource*(std::string_view)> find_;
  pid_t seen_pid_ = -1;
  uint64_t seen_start_ = 0;
};

// ---- script -------------------------------------------------------------------------------------

// Runs path + args (no shell) within the timeout; exit status 0 is healthy.
class script_monitor final : public monitor {
 public:
  script_monitor(std::string name, std::vector<std::string> argv, std::vector<std::string> env)
      : monitor(std::move(name)), argv_(std::move(argv)), env_(std::move(env)) {}

  monitor_type type() const noexcept override { return monitor_type::script; }

  check_result check(milliseconds timeout) override {
    timeout = std::max(timeout, milliseconds(1));
    const std::string& path = argv_.front();
    run_result r;
    try {
      r = run(argv_, timeout, {}, env_);
    } catch (const std::exception& e) {
      return {false, "cannot run " + path + ": " + e.what()};
    }
    if (!r.timed_out && r.status.ok()) return {true, {}};
    std::string msg =
        path + (r.timed_out ? " timed out after " + ms(timeout) : " " + r.status.describe());
    const std::string tail = output_tail(r.output);
    if (!tail.empty()) msg += ": " + tail;
    return {false, std::move(msg)};
  }

 private:
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
};

// ---- ip -----------------------------------------------------------------------------------------

// ICMP echo to every target at once, one request a second per target (a lost packet is sent
// again) until it answers or the timeout ends. mode any: healthy as soon as one answers (the
// others stop); mode all: healthy when every target answered.
class ip_monitor final : public monitor {
 public:
  ip_monitor(std::string name, std::vector<std::string> targets, bool all)
      : monitor(std::move(name)), targets_(std::move(targets)), all_(all) {}

  monitor_type type() const noexcept override { return monitor_type::ip; }

  check_result check(milliseconds timeout) override {
    timeout = std::max(timeout, milliseconds(1));
    const auto start = steady_clock::now();
    const auto deadline = start + timeout;
    struct outcome {
      bool reachable = false;
      int requests = 0;
      std::string detail;
    };
    std::vector<outcome> out(targets_.size());
    std::mutex mu;
    std::condition_variable cv;
    bool decided = false;  // the verdict no longer depends on the targets still trying

    auto probe = [&](size_t i) {
      outcome o;
      for (;;) {
        const auto now = steady_clock::now();
        if (now >= deadline) break;
        const auto left = std::chrono::ceil<milliseconds>(deadline - now);
        const quorum::ping_outcome p = quorum::ping(targets_[i], std::min(left, milliseconds(1s)));
        ++o.requests;
        o.reachable = p.reachable;
        o.detail = p.detail;
        // An answer, or a failure that waiting does not cure (a bad literal, no ICMP socket).
        if (p.reachable || p.detail.starts_with("not an IP address") ||
            p.detail.starts_with("cannot open")) {
          break;
        }
        std::unique_lock lock(mu);
        if (cv.wait_until(lock, std::min(now + 1s, deadline), [&] { return decided; })) break;
      }
      const std::lock_guard lock(mu);
      if (o.reachable != all_) {
        decided = true;  // any: one answered; all: one will not
        cv.notify_all();
      }
      out[i] = std::move(o);
    };

    std::vector<std::thread> threads;
    threads.reserve(targets_.size());
    try {
      for (size_t i = 0; i < targets_.size(); ++i)
        threads.emplace_back(probe, i);
    } catch (const std::system_error& e) {  // no thread for a target: it did not answer
      for (size_t i = threads.size(); i < targets_.size(); ++i)
        out[i].detail = std::string("cannot start a probe thread: ") + e.what();
      const std::lock_guard lock(mu);
      decided = all_;
      cv.notify_all();
    }
    for (std::thread& t : threads)
      t.join();

    std::vector<std::string> failed;
    size_t answered = 0;
    for (size_t i = 0; i < targets_.size(); ++i) {
      const outcome& o = out[i];
      if (o.reachable) {
        ++answered;
        continue;
      }
      std::string why = o.detail;
      if (o.requests == 0 && why.empty()) {
        why = "not probed before the timeout";
      } else if (why.empty() || why.starts_with("timeout after")) {
        why = "no reply to " + std::to_string(o.requests) + " echo request" +
              (o.requests == 1 ? "" : "s") + " within " +
              ms(std::chrono::duration_cast<milliseconds>(steady_clock::now() - start));
      }
      failed.push_back(targets_[i] + " (" + why + ")");
    }
    if (all_ ? answered == targets_.size() : answered > 0) return {true, {}};
    std::string list;
    for (const std::string& f : failed)
      list += (list.empty() ? "" : ", ") + f;
    if (all_) {
      return {false, std::to_string(targets_.size() - answered) + " of " +
                         std::to_string(targets_.size()) +
                         " targets did not answer (mode all): " + list};
    }
    return {false, "no target answered: " + list};
  }

 private:
  std::vector<std::string> targets_;
  bool all_;
};

// ---- mirror_state, mirror_connection ------------------------------------------------------------

// Asks the local tandem-replicator for the volume's status over its control socket.
class mirror_monitor final : public monitor {
 public:
  mirror_monitor(std::string name, monitor_type t, std::string volume, std::string socket)
      : monitor(std::move(name)),
        type_(t),
        volume_(std::move(volume)),
        socket_(std::move(socket)) {}

  monitor_type type() const noexcept override { return type_; }

  check_result check(milliseconds timeout) override {
    timeout = std::max(timeout, milliseconds(1));
    json answer;
    try {
      api::jsonl_client client(socket_, timeout);
      answer = client.call({{"cmd", "status"}, {"volume", volume_}});
    } catch (const api::unavailable&) {
      return {false, "tandem-replicator is not running (socket " + socket_ + ")"};
    } catch (const std::exception& e) {
      return {false, std::string("tandem-replicator did not answer: ") + e.what()};
    }
    try {
      return judge(answer);
    } catch (const json::exception& e) {
      return {false, std::string("tandem-replicator's status is not understood: ") + e.what()};
    }
  }

 private:
  static std::string text(const json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

  check_result judge(const json& answer) const {
    if (!answer.is_object() || !answer.value("ok", false)) {
      std::string why = answer.is_object() ? text(answer, "error") : std::string();
      return {false, "tandem-replicator refused the status of volume " + volume_ + ": " +
                         (why.empty() ? "no reason given" : why)};
    }
    const json* vol = nullptr;
    if (const auto vs = answer.find("volumes"); vs != answer.end() && vs->is_array()) {
      for (const json& v : *vs)
        if (v.is_object() && text(v, "name") == volume_) vol = &v;
    }
    if (vol == nullptr) return {false, "tandem-replicator has no volume " + volume_};
    const std::string prefix = "volume " + volume_ + ": ";
    if (!vol->value("attached", false)) return {false, prefix + "not attached"};
    const std::string disk = text(*vol, "disk");
    const std::string conn = text(*vol, "connection");
    const std::string reason = text(*vol, "reason");
    const std::string because = reason.empty() ? "" : " (" + reason + ")";
    if (type_ == monitor_type::mirror_state) {
      if (disk == "up_to_date") return {true, {}};
      // A resync that brings this node's data up to date is the normal way back (the seeds'
      // mirror disk monitor calls it a warning, not an error).
      if ((disk == "inconsistent" || disk == "outdated") && conn == "sync_target") {
        return {true, {}};
      }
      return {false, prefix + "disk is " + (disk.empty() ? "unknown" : disk) + ", connection " +
                         (conn.empty() ? "unknown" : conn) + because};
    }
    // The replication link is up in these states, whatever the data's state (mirror_state's
    // business).
    if (conn == "connected" || conn == "sync_source" || conn == "sync_target" ||
        conn == "sync_pending") {
      return {true, {}};
    }
    return {false, prefix + "not connected to its peer (connection " +
                       (conn.empty() ? "unknown" : conn) + (reason.empty() ? "" : ": " + reason) +
                       ")"};
  }

  monitor_type type_;
  std::string volume_;
  std::string socket_;
};

}  // namespace

std::unique_ptr<monitor> make_monitor(const config::monitor_config& mc, const monitor_env& env) {
  const config::param_map p = mc.params_for(env.node);
  switch (mc.type) {
    case monitor_type::pid:
      return std::make_unique<pid_monitor>(mc.name, required_string(p, "resource", mc.name),
                                           env.find);
    case monitor_type::script: {
      std::vector<std::string> argv{required_string(p, "path", mc.name)};
      if (const auto* args = p.list("args")) argv.insert(argv.end(), args->begin(), args->end());
      std::vector<std::string> vars;
      if (env.cfg != nullptr) vars.push_back("TANDEM_CLUSTER=" + env.cfg->name);
      vars.push_back("TANDEM_NODE=" + env.node);
      vars.push_back("TANDEM_GROUP=" + mc.group);
      vars.push_back("TANDEM_MONITOR=" + mc.name);
      return std::make_unique<script_monitor>(mc.name, std::move(argv), std::move(vars));
    }
    case monitor_type::ip: {
      const auto* targets = p.list("targets");
      if (targets == nullptr || targets->empty())
        throw std::runtime_error("monitor " + mc.name + ": parameter targets is missing");
      const std::string* mode = p.str("mode");
      return std::make_unique<ip_monitor>(mc.name, *targets, mode != nullptr && *mode == "all");
    }
    case monitor_type::mirror_state:
    case monitor_type::mirror_connection: {
      const std::string socket = env.cfg != nullptr ? env.cfg->mirrors.control_socket
                                                    : config::mirrors_config{}.control_socket;
      return std::make_unique<mirror_monitor>(mc.name, mc.type,
                                              required_string(p, "volume", mc.name), socket);
    }
    case monitor_type::nic_link:
      return make_nic_link_monitor(mc, env);
    case monitor_type::floating_ip:
      return make_floating_ip_monitor(mc, env);
    case monitor_type::aws_vip:
      return make_aws_vip_monitor(mc, env);
    case monitor_type::aws_eip:
      return make_aws_eip_monitor(mc, env);
    case monitor_type::aws_az:
      return make_aws_az_monitor(mc, env);
    case monitor_type::aws_dns:
    case monitor_type::gcp_dns:
    case monitor_type::azure_dns:
      return make_dns_monitor(mc, env);
  }
  throw std::runtime_error("monitor " + mc.name + ": unknown type");
}

}  // namespace tandem::ctl::groups
