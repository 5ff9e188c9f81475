// SPDX-License-Identifier: Apache-2.0
// An owned NETLINK_ROUTE socket (libnl-3), optionally opened inside a named network namespace.
#include "netlink/rt_socket.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

namespace tandem::nl {
namespace {

nl_sock* connect_route(int& err) {
  nl_sock* sk = nl_socket_alloc();
  if (!sk) {
    err = -NLE_NOMEM;
    return nullptr;
  }
  err = nl_connect(sk, NETLINK_ROUTE);
  if (err < 0) {
    nl_socket_free(sk);
    return nullptr;
  }
  return sk;
}

}  // namespace

error::error(const std::string& what, int nl_code)
    : std::runtime_error(what + ": " + nl_geterror(nl_code)), code_(nl_code) {}

void in_netns(const std::string& netns, const std::function<void()>& fn) {
  if (netns.empty()) {
    fn();
    return;
  }
  // A socket belongs to the namespace of the thread that creates it: make it on a short-lived
  // thread that has entered the namespace, so this thread's namespace never changes.
  const std::string path = "/run/netns/" + netns;
  int sys_errno = 0;
  std::thread([&] {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      sys_errno = errno;
      return;
    }
    if (::setns(fd, CLONE_NEWNET) != 0) {
      sys_errno = errno;
      ::close(fd);
      return;
    }
    ::close(fd);
    fn();
  }).join();
  if (sys_errno != 0) {
    throw std::system_error(sys_errno, std::generic_category(), "network namespace " + path);
  }
}

socket socket::open(const std::string& netns) {
  int err = 0;
  nl_sock* sk = nullptr;
  in_netns(netns, [&] { sk = connect_route(err); });
  if (!sk) {
    throw error(netns.empty() ? "netlink route socket" : "netlink route socket in netns " + netns,
                err);
  }
  return socket(sk, netns);
}

socket& socket::operator=(socket&& other) noexcept {
  if (this != &other) {
    if (sk_) nl_socket_free(sk_);
    sk_ = other.sk_;
    netns_ = std::move(other.netns_);
    other.sk_ = nullptr;
  }
  return *this;
}

socket::~socket() {
  if (sk_) nl_socket_free(sk_);
}

}  // namespace tandem::nl
