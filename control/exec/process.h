// SPDX-License-Identifier: Apache-2.0
// Child processes: spawn (optionally inside a network namespace), wait with a timeout, stop by PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tandem::ctl {

struct spawn_options {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::string> env;   // extra "NAME=value" entries added to the environment
  std::string netns;              // run inside /run/netns/<netns> when not empty
  std::string output_path;        // stdout+stderr appended here; empty: inherit
  std::string input;              // written to the child's stdin, which is then closed
  std::string cwd;                // working directory when not empty
  bool kill_with_parent = true;   // PR_SET_PDEATHSIG(SIGKILL)
  bool new_process_group = true;  // so stop() reaches the child's own children too
};

// How a process ended: exit code, or the signal that killed it.
struct exit_status {
  int code = -1;   // valid when signal == 0
  int signal = 0;  // non-zero when killed by a signal
  bool ok() const { return signal == 0 && code == 0; }
  std::string describe() const;
};

// One child process, owned: the destructor stops it (SIGTERM, then SIGKILL) and reaps it.
class process {
 public:
  // Throws std::system_error when fork/exec fails; an exec failure in the child is reported
  // through a close-on-exec pipe so the caller sees the errno, not a mysterious exit 127.
  static process spawn(const spawn_options& opts);

  process() = default;
  process(process&& other) noexcept;
  process& operator=(process&& other) noexcept;
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process();

  pid_t pid() const { return pid_; }
  bool running();
  // Waits until the process ends or the timeout passes (then nullopt; the process keeps running).
  // The ended process stays a zombie until stop() or the destructor, which keeps its PID and
  // process group from being reused while this object still refers to them.
  std::optional<exit_status> wait(std::chrono::milliseconds timeout);
  // Sends `sig` to the process (and its group when it leads one), waits up to `grace`, then
  // SIGKILLs what is left. Returns how it ended.
  exit_status stop(int sig = 15, std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Sends a signal without waiting (e.g. SIGKILL to simulate a crash).
  void signal(int sig);

 private:
  friend struct run_result run(std::vector<std::string>, std::chrono::milliseconds,
                               const std::string&, std::vector<std::string>);
  // spawn() with stdout and stderr on an open descriptor (run() passes a memfd).
  static process spawn_fd(const spawn_options& opts, int out_fd);
  explicit process(pid_t pid, int pidfd, bool group) : pid_(pid), pidfd_(pidfd), group_(group) {}
  void release() noexcept;
  void reap();

  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool group_ = false;
  std::optional<exit_status> status_;
  bool reaped_ = false;
};

struct run_result {
  exit_status status;
  std::string output;  // stdout and stderr, interleaved
  bool timed_out = false;
};

// Runs a command to completion, capturing its output; a command still running after `timeout`
// is killed and reported with timed_out set. `env`: extra "NAME=value" entries added to the
// environment, as in spawn_options::env.
run_result run(std::vector<std::string> argv,
               std::chrono::milliseconds timeout = std::chrono::seconds(60),
               const std::string& netns = {}, std::vector<std::string> env = {});

// Like run() but throws std::runtime_error naming the command, its status and its output when
// it does not exit 0. For setup steps whose failure ends the caller anyway.
std::string run_checked(std::vector<std::string> argv,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60),
                        const std::string& netns = {});

}  // namespace tandem::ctl
