// SPDX-License-Identifier: Apache-2.0
// tandem-lab-janitor: removes a lab's namespaces, mounts, loop devices and paths when told to,
// or when the socket to the process that started it closes (that process died).
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
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

// PIDs of processes whose network namespace is the named one.
std::vector<pid_t> pids_in_netns(const std::string& name) {
  std::vector<pid_t> pids;
  struct stat target {};
  if (::stat(("/run/netns/" + name).c_str(), &target) != 0) return pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid_str = entry.path().filename();
    if (pid_str.empty() || pid_str.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (::stat((entry.path() / "ns/net").c_str(), &st) != 0) continue;
    if (st.st_ino == target.st_ino && st.st_dev == target.st_dev) {
      pids.push_back(static_cast<pid_t>(std::stol(pid_str)));
    }
  }
  return pids;
}

void remove_netns(const std::string& name) {
  // Only processes inside this run's own namespace are killed: the lab started them.
  for (int round = 0; round < 50; ++round) {
    const auto pids = pids_in_netns(name);
    if (pids.empty()) break;
    for (pid_t pid : pids) {
      if (pid != getpid()) ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
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
  } else if (kind == "pid") {
    ::kill(static_cast<pid_t>(std::stol(value)), SIGKILL);
  }
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
      const auto sp = msg.find(' ');
      if (sp == std::string::npos) {
        reply = "bad";
      } else {
        items.emplace_back(msg.substr(0, sp), msg.substr(sp + 1));
      }
    }
    ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  }
}
