// SPDX-License-Identifier: Apache-2.0
// Link up / down / carrier events from an rtnetlink subscription (RTNLGRP_LINK), for an event loop.
#pragma once

#include <string>
#include <vector>

#include "netlink/rt_socket.h"

namespace tandem::nl {

struct link_event {
  int ifindex = 0;
  std::string name;
  bool up = false;       // administratively up (IFF_UP)
  bool running = false;  // operationally up (IFF_RUNNING)
  bool carrier = false;  // the lower layer has a carrier
  bool deleted = false;  // RTM_DELLINK: the interface is gone
};

// Owns a non-blocking netlink socket subscribed to link notifications of one network namespace:
// the calling thread's, or /run/netns/<netns>. The kernel pushes a message on every link change
// (flags, carrier, name, creation, deletion); nothing is polled. Hand fd() to an event loop and
// call drain() whenever it is readable. Not thread-safe: one owner.
class link_watch {
 public:
  // Throws nl::error, or std::runtime_error when the namespace cannot be entered.
  explicit link_watch(const std::string& netns = {});
  link_watch(link_watch&&) noexcept = default;
  link_watch& operator=(link_watch&&) noexcept = default;

  // Readable when notifications are waiting.
  int fd() const;
  // The namespace name given to the constructor, empty for the caller's own.
  const std::string& netns() const { return sk_.netns(); }

  // Every link notification received since the last call, oldest first; empty when none is
  // waiting (never blocks). If the kernel dropped notifications because the socket's buffer was
  // full (ENOBUFS), the current state of every link is read back once (on a new socket opened in
  // the same namespace: for the default namespace, the calling thread's) and appended as events,
  // so the last event per interface is always its current state; interfaces deleted in the gap
  // then have no event. Throws nl::error.
  std::vector<link_event> drain();

 private:
  std::string where() const;
  socket sk_;
};

}  // namespace tandem::nl
