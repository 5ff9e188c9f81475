// SPDX-License-Identifier: Apache-2.0
// The exec resource: start / stop commands (/bin/sh -c), synchronous or as the service itself.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "control/exec/process.h"
#include "control/groups/resource.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long an asynchronous start must keep running to count as started.
constexpr milliseconds settle_time{200};
// How much of the output a failure message quotes.
constexpr size_t output_tail = 200;

milliseconds left_until(clock_type::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now());
  return std::max(left, 0ms);
}

// One line of the output, tidied for an event message: the last `output_tail` bytes, newlines
// shown as " | ", surrounding blanks dropped.
std::string tidy_tail(std::string_view out) {
  if (out.size() > output_tail) out.remove_prefix(out.size() - output_tail);
  std::string s;
  for (char c : out)
    s += (c == '\n' || c == '\r') ? '|' : c;
  while (!s.empty() && (s.back() == '|' || s.back() == ' '))
    s.pop_back();
  size_t b = 0;
  while (b < s.size() && (s[b] == '|' || s[b] == ' '))
    ++b;
  s.erase(0, b);
  std::string spaced;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '|') {
      while (!spaced.empty() && spaced.back() == ' ')
        spaced.pop_back();
      spaced += " | ";
      while (i + 1 < s.size() && (s[i + 1] == ' ' || s[i + 1] == '|'))
        ++i;
    } else {
      spaced += s[i];
    }
  }
  return spaced;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

// Members of process group `pgid` that have not ended (zombies do not count), from /proc.
std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) continue;
    // After "(comm) ": state ppid pgrp ...
    std::istringstream in(line.substr(paren + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (!(in >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') out.push_back(std::stoi(name));
  }
  return out;
}

// Where a command's output goes: the resource's log file (appended), or a memory file when
// there is no log directory, so a failure can still quote it.
class output_sink {
 public:
  // `log_path` empty: memory (or nowhere, with `discard`).
  output_sink(const std::string& log_path, bool discard) {
    if (!log_path.empty()) {
      fd_ = ::open(log_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "open " + log_path);
      }
      path_ = log_path;
    } else if (!discard) {
      fd_ = ::memfd_create("tandem-exec", MFD_CLOEXEC);
      if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
      path_ = "/proc/self/fd/" + std::to_string(fd_);
    } else {
      path_ = "/dev/null";
    }
  }
  ~output_sink() {
    if (fd_ >= 0) ::close(fd_);
  }
  output_sink(const output_sink&) = delete;
  output_sink& operator=(const output_sink&) = delete;

  // A line of our own in the log (not in memory: it would end up in failure messages).
  void note(const std::string& line) {
    if (fd_ < 0 || path_.rfind("/proc/", 0) == 0) return;
    const std::string l = utc_now() + " tandem: " + line + "\n";
    (void)!::write(fd_, l.data(), l.size());
  }
  // Marks where the command's own output starts.
  void mark() {
    struct stat st {};
    start_ = (fd_ >= 0 && ::fstat(fd_, &st) == 0) ? st.st_size : 0;
  }
  [[nodiscard]] const std::string& path() const { return path_; }
  // The command's output since mark(), its last `output_tail` bytes, tidied.
  [[nodiscard]] std::string tail() const {
    if (fd_ < 0) return {};
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || st.st_size <= start_) return {};
    const off_t from = std::max<off_t>(start_, st.st_size - static_cast<off_t>(output_tail));
    std::string buf(static_cast<size_t>(st.st_size - from), '\0');
    const ssize_t n = ::pread(fd_, buf.data(), buf.size(), from);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return tidy_tail(buf);
  }

 private:
  int fd_ = -1;
  std::string path_;
  off_t start_ = 0;
};

std::string with_output(std::string msg, const output_sink& out) {
  const std::string t = out.tail();
  if (!t.empty()) msg += ": " + t;
  return msg;
}

class exec_resource final : public resource {
 public:
  exec_resource(const config::resource_config& rc, const resource_env& env)
      : resource(rc.name), env_(env) {
    const config::param_map p = rc.params_for(env.node);
    if (const std::string* s = p.str("start")) start_cmd_ = *s;
    if (start_cmd_.empty()) {
      throw std::runtime_error("resource " + rc.name + ": exec needs a start command");
    }
    if (const std::string* s = p.str("stop")) stop_cmd_ = *s;
    if (const std::string* s = p.str("mode")) async_ = *s == "async";
    if (const std::string* s = p.str("user")) user_ = *s;
    if (const std::string* s = p.str("working_dir")) working_dir_ = *s;
  }

  ~exec_resource() override {
    // The service goes with the resource (process's destructor: SIGTERM, then SIGKILL).
    pid_.store(-1);
  }

  [[nodiscard]] config::resource_type type() const noexcept override {
    return config::resource_type::exec;
  }

  [[nodiscard]] pid_t main_pid() const override {
    const pid_t p = pid_.load();
    if (p <= 0) return -1;
    // Ended but not yet reaped (the resource keeps the zombie until stop): no longer running.
    // Read from /proc rather than waitid(WNOWAIT), which any thread may call here (monitors,
    // the API) while the worker that spawned the process waits on it too.
    std::ifstream in("/proc/" + std::to_string(p) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return -1;
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) return -1;
    const char state = line[close + 2];
    if (state == 'Z' || state == 'X' || state == 'x') return -1;
    // Stopped meanwhile (and perhaps reaped, its pid reused): not ours any more.
    return pid_.load() == p ? p : -1;
  }

  [[nodiscard]] nlohmann::json describe() const override {
    nlohmann::json j = {{"mode", async_ ? "async" : "sync"}, {"active", active_.load()}};
    if (async_) j["pid"] = main_pid();
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!log_path_.empty()) j["log"] = log_path_;
    }
    if (!user_.empty()) j["user"] = user_;
    return j;
  }

 private:
  action_result do_start(const action_context& ctx) override;
  action_result do_stop(const action_context& ctx) override;
  struct prepared {
    spawn_options opts;
    std::string error;  // non-empty: cannot run
  };
  prepared prepare(const action_context& ctx, const std::string& cmd);
  // Runs a command to completion within `timeout`; failure message or "".
  std::string run_command(const action_context& ctx, const std::string& cmd,
                          const std::string& what, milliseconds timeout);
  // Stops the service's whole process group: SIGTERM, up to `grace`, then SIGKILL; reaps it.
  // Returns how the service ended.
  exit_status stop_service(milliseconds grace);
  // <log_dir>/<group>.<resource>.log (the directory created), or "" without a log_dir.
  std::string log_path(const action_context& ctx);

  resource_env env_;
  std::string start_cmd_, stop_cmd_, user_, working_dir_;
  mutable std::mutex mu_;
  std::string log_path_;  // guarded by mu_ (describe() reads it)
  bool async_ = false;
  std::atomic<bool> active_{false};  // started successfully and not stopped since
  bool attempted_ = false;           // a start ran since the last successful stop
  process service_;                  // async: the service (worker thread only)
  std::atomic<pid_t> pid_{-1};       // its pid for the probes
};

std::string exec_resource::log_path(const action_context& ctx) {
  if (env_.log_dir.empty()) return {};
  std::filesystem::create_directories(env_.log_dir);
  std::string path = env_.log_dir + "/" + ctx.group + "." + name() + ".log";
  std::lock_guard<std::mutex> g(mu_);
  log_path_ = path;
  return path;
}

exec_resource::prepared exec_resource::prepare(const action_context& ctx, const std::string& cmd) {
  prepared p;
  p.opts.env = {"TANDEM_CLUSTER=" + ctx.cluster, "TANDEM_NODE=" + ctx.node,
                "TANDEM_GROUP=" + ctx.group, "TANDEM_RESOURCE=" + name(),
                "TANDEM_EVENT=" + ctx.event};
  if (!working_dir_.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(working_dir_, ec)) {
      p.error = "working_dir " + working_dir_ + " is not a directory on this node";
      return p;
    }
    p.opts.cwd = working_dir_;
  }
  if (user_.empty()) {
    p.opts.argv = {"/bin/sh", "-c", cmd};
    return p;
  }
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getpwnam_r(user_.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) {
    p.error = "user " + user_ + " does not exist on this node" +
              (rc != 0 ? " (" + std::generic_category().message(rc) + ")" : "");
    return p;
  }
  // setpriv (util-linux) changes the ids and execs: the shell keeps the pid we spawned, so the
  // process group and main_pid() are the command's own.
  p.opts.argv = {"setpriv",
                 "--reuid=" + std::to_string(pw.pw_uid),
                 "--regid=" + std::to_string(pw.pw_gid),
                 "--init-groups",
                 "--",
                 "/bin/sh",
                 "-c",
                 cmd};
  p.opts.env.push_back(std::string("HOME=") + pw.pw_dir);
  p.opts.env.push_back(std::string("USER=") + pw.pw_name);
  p.opts.env.push_back(std::string("LOGNAME=") + pw.pw_name);
  return p;
}

std::string exec_resource::run_command(const action_context& ctx, const std::string& cmd,
                                       const std::string& what, milliseconds timeout) {
  prepared p = prepare(ctx, cmd);
  if (!p.error.empty()) return what + ": " + p.error;
  std::unique_ptr<output_sink> out;
  try {
    out = std::make_unique<output_sink>(log_path(ctx), false);
  } catch (const std::exception& e) {
    return what + ": cannot open the log: " + e.what();
  }
  out->note(what + " (event " + ctx.event + "): " + cmd);
  out->mark();
  p.opts.output_path = out->path();
  process proc;
  try {
    proc = process::spawn(p.opts);
  } catch (const std::exception& e) {
    return what + ": " + e.what();
  }
  const auto st = proc.wait(timeout);
  if (!st) {
    // The whole process group: SIGTERM, a second's grace, then SIGKILL.
    proc.stop(SIGTERM, 1s);
    std::string msg = with_output(what + " timed out after " + std::to_string(timeout.count()) +
                                      " ms (its process group was killed)",
                                  *out);
    out->note(what + " timed out after " + std::to_string(timeout.count()) + " ms: killed");
    return msg;
  }
  std::string msg = st->ok() ? "" : with_output(what + " " + st->describe(), *out);
  out->note(what + " " + st->describe());
  // Whatever the command left running in its group (a daemon it started) stays.
  return msg;
}

exit_status exec_resource::stop_service(milliseconds grace) {
  const pid_t pgid = service_.pid();
  pid_.store(-1);
  // The leader is not reaped before service_.stop(): even when it has ended, its pid still
  // names this group and nobody else's.
  auto gone = [&] { return !service_.running() && group_members(pgid).empty(); };
  auto wait_gone = [&](clock_type::time_point until) {
    while (!gone() && clock_type::now() < until) {
      if (service_.running()) {
        service_.wait(std::min<milliseconds>(20ms, left_until(until)));
      } else {
        std::this_thread::sleep_for(10ms);
      }
    }
  };
  ::kill(-pgid, SIGTERM);
  wait_gone(clock_type::now() + grace);
  if (!gone()) {
    ::kill(-pgid, SIGKILL);
    wait_gone(clock_type::now() + 2s);
  }
  const exit_status st = service_.stop(SIGKILL, 0ms);
  service_ = process{};
  return st;
}

action_result exec_resource::do_start(const action_context& ctx) {
  const auto deadline = clock_type::now() + ctx.timeout;
  if (!async_) {
    if (active_) return {true, "already started"};
    attempted_ = true;  // a failed start still gets its stop command
    std::string err = run_command(ctx, start_cmd_, "start", ctx.timeout);
    if (!err.empty()) return {false, std::move(err)};
    active_ = true;
    return {true, ""};
  }

  if (service_.pid() > 0) {
    if (service_.running()) {
      return {true, "already running (pid " + std::to_string(service_.pid()) + ")"};
    }
    stop_service(0ms);  // ended on its own: reap it (and what it left in its group)
  }
  active_ = false;
  prepared p = prepare(ctx, start_cmd_);
  if (!p.error.empty()) return {false, "start: " + p.error};
  std::unique_ptr<output_sink> out;
  try {
    out = std::make_unique<output_sink>(log_path(ctx), true);
  } catch (const std::exception& e) {
    return {false, std::string("start: cannot open the log: ") + e.what()};
  }
  out->note("start (event " + ctx.event + ", async): " + start_cmd_);
  out->mark();
  p.opts.output_path = out->path();
  try {
    service_ = process::spawn(p.opts);
  } catch (const std::exception& e) {
    return {false, std::string("start: ") + e.what()};
  }
  attempted_ = true;
  pid_.store(service_.pid());
  if (const auto st = service_.wait(std::min(settle_time, left_until(deadline)))) {
    const std::string msg =
        with_output("start " + st->describe() +
                        " at once: with mode async the start command is the service and must keep "
                        "running (use mode sync for a command that returns)",
                    *out);
    stop_service(0ms);
    out->note("start " + st->describe() + " at once");
    return {false, msg};
  }
  active_ = true;
  out->note("start: running as pid " + std::to_string(service_.pid()));
  return {true, "pid " + std::to_string(service_.pid())};
}

action_result exec_resource::do_stop(const action_context& ctx) {
  const auto deadline = clock_type::now() + ctx.timeout;
  const bool service = service_.pid() > 0;
  if (!attempted_ && !service) return {true, "not active"};
  std::string detail;
  if (!stop_cmd_.empty()) {
    // With a service to stop after it, the command leaves a quarter of the time (at most 2 s)
    // for SIGTERM and SIGKILL.
    const milliseconds budget =
        service ? ctx.timeout - std::min<milliseconds>(ctx.timeout / 4, 2s) : ctx.timeout;
    std::string err = run_command(ctx, stop_cmd_, "stop", budget);
    if (!err.empty()) {
      if (!service) return {false, std::move(err)};
      detail = err + "; ";  // the service is stopped below anyway
    }
  }
  if (service) {
    const bool was_running = service_.running();
    const exit_status st = stop_service(left_until(deadline));
    detail += was_running ? "service stopped (" + st.describe() + ")"
                          : "service had already ended (" + st.describe() + ")";
  }
  attempted_ = false;
  active_ = false;
  return {true, detail};
}

}  // namespace

std::unique_ptr<resource> make_exec_resource(const config::resource_config& rc,
                                             const resource_env& env) {
  return std::make_unique<exec_resource>(rc, env);
}

}  // namespace tandem::ctl::groups
