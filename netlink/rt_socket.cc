// SPDX-License-Identifier: Apache-2.0
// An owned NETLINK_ROUTE socket (libnl-3), optionally opened inside a named network namespace.
#include "netlink/rt_socket.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

socket socket::open(const std::string& netns) {
  int err = 0;
  if (netns.empty()) {
    nl_sock* sk = connect_route(err);
    if (!sk) throw error("netlink route socket", err);
    return socket(sk, netns);
  }
  // A socket belongs to the namespace of the thread that creates it: make it on a short-lived
  // thread that has entered the namespace, so this thread's namespace never changes.
  const std::string path = "/run/netns/" + netns;
  nl_sock* sk = nullptr;
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
    sk = connect_route(err);
  }).join();
  if (sys_errno != 0) {
    throw std::runtime_error("network namespace " + path + ": " + std::strerror(sys_errno));
  }
  if (!sk) throw error("netlink route socket in netns " + netns, err);
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
