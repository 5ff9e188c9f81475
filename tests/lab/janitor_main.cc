// SPDX-License-Identifier: Apache-2.0
// tandem-lab-janitor: removes a lab's namespaces (and the processes inside them), mounts, loop
// devices and paths when told to, or when the socket to the process that started it closes
// (that process died).
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "control/exec/process.h"

namespace {

namespace fs = std::filesystem;
FILE* g_log = nullptr;

void logf(const std::string& line) {
  if (!g_log) return;
  std::fprintf(g_log, "[%ld] janitor %d: %s\n", static_cast<long>(std::time(nullptr)), getpid(),
               line.c_str());
  std::fflush(g_log);
}

// Inode and device of a namespace file, or nullopt.
std::optional<std::pair<dev_t, ino_t>> ns_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::make_pair(st.st_dev, st.st_ino);
}

// SIGKILLs every process whose network namespace is the named one: they were started in the
// lab's own uniquely named namespace. Each is signalled through a pidfd after re-checking its
// namespace, so a PID reused between the /proc scan and the kill is never hit. Returns how many
// were still there.
int kill_netns_processes(const std::string& name) {
  const auto target = ns_id("/run/netns/" + name);
  if (!target) return 0;
  int found = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid_str = entry.path().filename();
    if (pid_str.empty() || pid_str.find_first_not_of("0123456789") != std::string::npos) continue;
    if (ns_id((entry.path() / "ns/net").string()) != target) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_str));
    if (pid == getpid()) continue;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) continue;  // already gone
    if (ns_id((entry.path() / "ns/net").string()) == target) {
      ++found;
      ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    }
    ::close(pidfd);
  }
  return found;
}

void kill_all_in_netns(const std::string& name) {
  for (int round = 0; round < 50 && kill_netns_processes(name) > 0; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void remove_netns(const std::string& name) {
  kill_all_in_netns(name);
  if (!fs::exists("/run/netns/" + name)) return;
  auto r = tandem::ctl::run({"ip", "netns", "delete", name}, std::chrono::seconds(30));
  if (!r.status.ok()) logf("ip netns delete " + name + ": " + r.output);
}

void remove(const std::string& kind, const std::string& value) {
  if (kind == "netns") {
    remove_netns(value);
  } else if (kind == "mount") {
    if (::umount2(value.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      logf("umount " + value + ": " + std::strerror(errno));
    }
  } else if (kind == "loop") {
    const int fd = ::open(value.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (::ioctl(fd, LOOP_CLR_FD, 0) != 0 && errno != ENXIO) {
        logf("detach " + value + ": " + std::strerror(errno));
      }
      ::close(fd);
    }
  } else if (kind == "path") {
    std::error_code ec;
    fs::remove_all(value, ec);
    if (ec) logf("remove " + value + ": " + ec.message());
  }
}

bool known_kind(const std::string& kind) {
  return kind == "netns" || kind == "mount" || kind == "loop" || kind == "path";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tandem-lab-janitor FD [LOG]\n");
    return 2;
  }
  const int fd = std::atoi(argv[1]);
  // Keep no descriptor of the test runner's: it may wait for its output pipes to close.
  const int devnull = ::open("/dev/null", O_RDWR);
  ::dup2(devnull, 0);
  ::dup2(devnull, 1);
  ::dup2(devnull, 2);
  if (devnull > 2) ::close(devnull);
  if (argc > 2) g_log = std::fopen(argv[2], "ae");
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<std::pair<std::string, std::string>> items;
  auto clean_all = [&] {
    // Processes first: they may hold mounts, sockets and files that are removed below.
    for (const auto& [kind, value] : items) {
      if (kind == "netns") kill_all_in_netns(value);
    }
    for (auto it = items.rbegin(); it != items.rend(); ++it)
      remove(it->first, it->second);
    items.clear();
  };
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!items.empty()) logf("owner gone; removing " + std::to_string(items.size()) + " item(s)");
      clean_all();
      return 0;
    }
    const std::string msg(buf, static_cast<size_t>(n));
    std::string reply = "ok";
    if (msg == "cleanup") {
      clean_all();
      reply = "done";
    } else if (msg != "hello") {
      // "add KIND VALUE" registers, "forget KIND VALUE" drops the newest equal registration
      // (its creation failed: it may be somebody else's).
      const auto sp1 = msg.find(' ');
      const auto sp2 = sp1 == std::string::npos ? sp1 : msg.find(' ', sp1 + 1);
      const std::string verb = msg.substr(0, sp1);
      const std::string kind = sp2 == std::string::npos ? "" : msg.substr(sp1 + 1, sp2 - sp1 - 1);
      const std::string value = sp2 == std::string::npos ? "" : msg.substr(sp2 + 1);
      if (!known_kind(kind) || value.empty()) {
        reply = "bad";
      } else if (verb == "add") {
        items.emplace_back(kind, value);
      } else if (verb == "forget") {
        auto it = std::find(items.rbegin(), items.rend(), std::make_pair(kind, value));
        if (it != items.rend()) items.erase(std::next(it).base());
      } else {
        reply = "bad";
      }
    }
    ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  }
}
