// SPDX-License-Identifier: Apache-2.0
// An owned NETLINK_ROUTE socket (libnl-3), optionally opened inside a named network namespace.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

struct nl_sock;

namespace tandem::nl {

// Runs `fn` on a short-lived thread that has entered /run/netns/<netns> (on the calling thread
// when `netns` is empty), so the caller's namespace never changes; a socket made there stays in
// that namespace for its whole life. Throws std::system_error naming the namespace when it
// cannot be entered; exceptions from `fn` are not allowed (it runs on another thread).
void in_netns(const std::string& netns, const std::function<void()>& fn);

// A libnl call failed: what() names the operation and libnl's reason; code() is the negative
// NLE_* value.
class error : public std::runtime_error {
 public:
  error(const std::string& what, int nl_code);
  int code() const { return code_; }

 private:
  int code_;
};

class socket {
 public:
  // Connects a route socket in this process's namespace, or inside /run/netns/<netns> when the
  // name is not empty (the socket stays in that namespace for its whole life). Throws nl::error.
  static socket open(const std::string& netns = {});

  socket(socket&& other) noexcept : sk_(other.sk_), netns_(std::move(other.netns_)) {
    other.sk_ = nullptr;
  }
  socket& operator=(socket&& other) noexcept;
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  ~socket();

  nl_sock* get() const { return sk_; }
  // The namespace name given to open(), empty for the process's own; used in error messages.
  const std::string& netns() const { return netns_; }

 private:
  socket(nl_sock* sk, std::string netns) : sk_(sk), netns_(std::move(netns)) {}
  nl_sock* sk_ = nullptr;
  std::string netns_;
};

}  // namespace tandem::nl
