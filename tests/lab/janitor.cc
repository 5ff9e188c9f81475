// SPDX-License-Identifier: Apache-2.0
// Client side of tandem-lab-janitor: starts it detached and talks to it over a seqpacket socket.
#include "tests/lab/janitor.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace tandem::lab {

janitor::janitor() {
  const std::string log = std::string(TANDEM_BUILD_DIR) + "/lab-logs/janitor.log";
  std::filesystem::create_directories(std::string(TANDEM_BUILD_DIR) + "/lab-logs");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    throw std::system_error(errno, std::generic_category(), "janitor socketpair");
  }
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(sv[0]);
    ::close(sv[1]);
    throw std::system_error(errno, std::generic_category(), "janitor fork");
  }
  if (child == 0) {
    // Own session, then a second fork: the janitor is re-parented away from the test's process
    // tree, so a runner that kills the tree on timeout leaves it alive to clean up.
    ::setsid();
    if (::fork() == 0) {
      ::dup2(sv[1], 3);  // dup2 clears close-on-exec on the copy
      ::close_range(4, ~0U, 0);
      ::execl(TANDEM_LAB_JANITOR, "tandem-lab-janitor", "3", log.c_str(), nullptr);
      ::_exit(127);
    }
    ::_exit(0);
  }
  ::close(sv[1]);
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  fd_ = sv[0];
  if (request("hello") != "ok") {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(std::string("tandem-lab-janitor did not start: ") +
                             TANDEM_LAB_JANITOR);
  }
}

janitor::~janitor() {
  if (fd_ < 0) return;
  try {
    cleanup();
  } catch (const std::exception&) {
    // The janitor also cleans up when the socket closes below.
  }
  ::close(fd_);
}

std::string janitor::request(const std::string& msg) {
  if (fd_ < 0) throw std::logic_error("janitor is not running");
  if (::send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
    throw std::system_error(errno, std::generic_category(), "janitor send");
  }
  char buf[256];
  ssize_t n;
  do {
    n = ::recv(fd_, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

void janitor::add(const std::string& kind, const std::string& value) {
  if (request("add " + kind + " " + value) != "ok") {
    throw std::runtime_error("janitor refused " + kind + " " + value);
  }
}

void janitor::forget(const std::string& kind, const std::string& value) {
  if (request("forget " + kind + " " + value) != "ok") {
    throw std::runtime_error("janitor refused to forget " + kind + " " + value);
  }
}

void janitor::cleanup() {
  if (request("cleanup") != "done") throw std::runtime_error("janitor cleanup failed");
}

}  // namespace tandem::lab
