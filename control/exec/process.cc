// SPDX-License-Identifier: Apache-2.0
// Child processes: fork/exec with netns, pdeathsig, process groups; pidfd-based waiting.
#include "control/exec/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace tandem::ctl {
namespace {

using namespace std::chrono_literals;

constexpr size_t max_input = 1 << 20;

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

std::system_error sys_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

// Looks argv[0] up in the PATH the child will have (not ours, which execvpe would use), so that
// a PATH given in spawn_options::env is honoured and "not found" is reported before fork.
std::string resolve(const std::string& cmd, const std::vector<std::string>& env) {
  if (cmd.find('/') != std::string::npos) return cmd;
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t end = std::min(path.find(':', pos), path.size());
    const std::string dir = end > pos ? path.substr(pos, end - pos) : ".";
    const std::string candidate = dir + "/" + cmd;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    pos = end + 1;
  }
  errno = ENOENT;
  throw sys_error("exec " + cmd + ": not found in PATH " + path);
}

// Everything the child needs, prepared before fork so the child only makes system calls.
struct prepared {
  std::string path;  // argv[0] resolved against the child's PATH
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
};

prepared prepare(const spawn_options& opts) {
  prepared p;
  for (const auto& a : opts.argv)
    p.argv.push_back(const_cast<char*>(a.c_str()));
  p.argv.push_back(nullptr);
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);
    bool overridden = false;
    for (const auto& extra : opts.env) {
      if (extra.compare(0, name.size(), name) == 0) overridden = true;
    }
    if (!overridden) p.env_storage.push_back(std::move(entry));
  }
  for (const auto& extra : opts.env)
    p.env_storage.push_back(extra);
  for (auto& e : p.env_storage)
    p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.path = resolve(opts.argv[0], p.env_storage);
  return p;
}

[[noreturn]] void child_fail(int err_fd, int err) {
  (void)!::write(err_fd, &err, sizeof(err));
  ::_exit(127);
}

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void child_exec(const spawn_options& opts, const prepared& p, int err_fd, int stdin_fd,
                             int out_fd, int netns_fd, pid_t parent) {
  if (opts.new_process_group) ::setpgid(0, 0);
  if (opts.kill_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  }
  // Ignored dispositions survive exec (the lab's janitor ignores SIGPIPE and friends): give the
  // child the defaults, and an empty signal mask.
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD})
    ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) child_fail(err_fd, errno);
  if (::dup2(stdin_fd, STDIN_FILENO) < 0) child_fail(err_fd, errno);
  if (out_fd >= 0) {
    if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(out_fd, STDERR_FILENO) < 0) {
      child_fail(err_fd, errno);
    }
  }
  if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) child_fail(err_fd, errno);
  // No descriptor of the caller's leaks into the program (the error pipe is already CLOEXEC).
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(p.path.c_str(), p.argv.data(), p.envp.data());
  child_fail(err_fd, errno);
}

// RAII for a file descriptor used only inside this file.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string exit_status::describe() const {
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exited with " + std::to_string(code);
}

process process::spawn(const spawn_options& opts) {
  fd_guard out;
  if (!opts.output_path.empty()) {
    out.fd = ::open(opts.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out.fd < 0) throw sys_error("open " + opts.output_path);
  }
  return spawn_fd(opts, out.fd);
}

process process::spawn_fd(const spawn_options& opts, int out_fd) {
  if (opts.argv.empty()) throw std::invalid_argument("spawn: empty argv");
  const prepared p = prepare(opts);

  fd_guard netns;
  if (!opts.netns.empty()) {
    const std::string path = "/run/netns/" + opts.netns;
    netns.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns.fd < 0) throw sys_error("open network namespace " + path);
  }
  int in_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) throw sys_error("pipe2");
  fd_guard in_r{in_pipe[0]}, in_w{in_pipe[1]};
  if (!opts.input.empty()) {
    // The whole input goes into the pipe before fork: the pipe is sized to hold it, so the write
    // can neither block on a child that never reads nor raise SIGPIPE on one that exits early.
    if (opts.input.size() > max_input) {
      throw std::invalid_argument("spawn: input larger than 1 MiB for " + join(opts.argv));
    }
    if (opts.input.size() > 65536 &&
        ::fcntl(in_w.fd, F_SETPIPE_SZ, static_cast<int>(opts.input.size())) < 0) {
      throw sys_error("sizing the stdin pipe for " + join(opts.argv));
    }
    const char* data = opts.input.data();
    size_t left = opts.input.size();
    while (left > 0) {
      const ssize_t w = ::write(in_w.fd, data, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw sys_error("writing stdin for " + join(opts.argv));
      data += w;
      left -= static_cast<size_t>(w);
    }
  }
  ::close(in_w.fd);  // the child sees end of file after the input
  in_w.fd = -1;
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw sys_error("pipe2");
  fd_guard err_r{err_pipe[0]}, err_w{err_pipe[1]};

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw sys_error("fork");
  if (pid == 0) child_exec(opts, p, err_w.fd, in_r.fd, out_fd, netns.fd, parent);

  ::close(err_w.fd);
  err_w.fd = -1;
  ::close(in_r.fd);
  in_r.fd = -1;
  if (opts.new_process_group) ::setpgid(pid, pid);  // avoid racing the child's own setpgid
  const int pidfd = pidfd_open(pid);
  process proc(pid, pidfd, opts.new_process_group);

  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_r.fd, &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(child_errno)) {
    proc.wait(5s);
    errno = child_errno;
    throw sys_error("exec " + join(opts.argv) +
                    (opts.netns.empty() ? "" : " in netns " + opts.netns));
  }
  return proc;
}

process::process(process&& other) noexcept
    : pid_(other.pid_),
      pidfd_(other.pidfd_),
      group_(other.group_),
      status_(other.status_),
      reaped_(other.reaped_) {
  other.pid_ = -1;
  other.pidfd_ = -1;
}

process& process::operator=(process&& other) noexcept {
  if (this != &other) {
    release();
    pid_ = other.pid_;
    pidfd_ = other.pidfd_;
    group_ = other.group_;
    status_ = other.status_;
    reaped_ = other.reaped_;
    other.pid_ = -1;
    other.pidfd_ = -1;
  }
  return *this;
}

process::~process() {
  release();
}

void process::release() noexcept {
  if (pid_ > 0) {
    try {
      if (!status_) stop(SIGTERM, 2s);
      reap();
    } catch (const std::exception&) {
      // waitid can only fail here if someone else reaped the child (SIGCHLD ignored); the
      // process is gone either way, and a destructor must not throw.
      ::kill(group_ ? -pid_ : pid_, SIGKILL);
    }
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  pid_ = -1;
  pidfd_ = -1;
}

bool process::running() {
  if (pid_ <= 0 || status_) return false;
  return !wait(0ms).has_value();
}

std::optional<exit_status> process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    siginfo_t info{};
    // WNOWAIT keeps the zombie, so the PID (and its process group) cannot be reused before
    // stop() has signalled the group; reap() below collects it.
    const int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == pid_) {
      exit_status st;
      if (info.si_code == CLD_EXITED) {
        st.code = info.si_status;
      } else {
        st.signal = info.si_status;
      }
      status_ = st;
      return status_;
    }
    if (rc < 0 && errno != EINTR) throw sys_error("waitid " + std::to_string(pid_));
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (pidfd_ >= 0) {
      pollfd pfd{pidfd_, POLLIN, 0};
      ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count() + 1, 1000)));
    } else {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, 10ms));
    }
  }
}

void process::signal(int sig) {
  if (pid_ <= 0 || status_) return;
  if (group_) {
    ::kill(-pid_, sig);
  } else {
    ::kill(pid_, sig);
  }
}

exit_status process::stop(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return {};
  if (!status_) {
    signal(sig);
    if (!wait(grace)) {
      signal(SIGKILL);
      wait(std::chrono::hours(1));
    }
  }
  // Whatever the leader left behind in its group (a shell's children) goes with it. The leader
  // is still an unreaped zombie here, so its PID cannot name anybody else's group.
  if (group_ && !reaped_) ::kill(-pid_, SIGKILL);
  reap();
  return *status_;
}

void process::reap() {
  if (pid_ <= 0 || reaped_ || !status_) return;
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

run_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout,
               const std::string& netns, std::vector<std::string> env) {
  fd_guard out;
  out.fd = ::memfd_create("tandem-run", MFD_CLOEXEC);
  if (out.fd < 0) throw sys_error("memfd_create");
  spawn_options opts;
  opts.argv = std::move(argv);
  opts.env = std::move(env);
  opts.netns = netns;
  process proc = process::spawn_fd(opts, out.fd);
  run_result r;
  if (auto st = proc.wait(timeout)) {
    r.status = *st;
    proc.stop(SIGKILL, 0ms);  // the command leaves nothing behind in its group
  } else {
    r.timed_out = true;
    r.status = proc.stop(SIGKILL, 1s);
  }
  const off_t size = ::lseek(out.fd, 0, SEEK_END);
  if (size > 0) {
    r.output.resize(static_cast<size_t>(size));
    const ssize_t n = ::pread(out.fd, r.output.data(), r.output.size(), 0);
    r.output.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  return r;
}

std::string run_checked(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                        const std::string& netns) {
  const std::string cmd = join(argv);
  run_result r = run(std::move(argv), timeout, netns);
  if (r.timed_out || !r.status.ok()) {
    throw std::runtime_error(
        "command failed (" + (r.timed_out ? std::string("timed out") : r.status.describe()) +
        (netns.empty() ? "" : ", netns " + netns) + "): " + cmd + "\n" + r.output);
  }
  return std::move(r.output);
}

}  // namespace tandem::ctl
