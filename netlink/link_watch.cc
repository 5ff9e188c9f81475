// SPDX-License-Identifier: Apache-2.0
// Link up / down / carrier events from an rtnetlink subscription (RTNLGRP_LINK), for an event loop.
#include "netlink/link_watch.h"

#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "netlink/rt_link.h"

namespace tandem::nl {
namespace {

struct cb_deleter {
  void operator()(nl_cb* cb) const { nl_cb_put(cb); }
};

struct parse_state {
  std::vector<link_event>* out;
  bool deleted;
};

// libnl calls these from C: nothing may throw through them. An allocation failure drops the
// event.
void on_object(nl_object* obj, void* arg) noexcept {
  auto* st = static_cast<parse_state*>(arg);
  if (std::strcmp(nl_object_get_type(obj), "route/link") != 0) return;
  auto* l = reinterpret_cast<rtnl_link*>(obj);
  // AF_BRIDGE (bridge port) notifications repeat what the AF_UNSPEC one says.
  if (rtnl_link_get_family(l) != AF_UNSPEC) return;
  try {
    link_event e;
    e.ifindex = rtnl_link_get_ifindex(l);
    if (const char* n = rtnl_link_get_name(l)) e.name = n;
    const unsigned flags = rtnl_link_get_flags(l);
    e.up = (flags & IFF_UP) != 0;
    e.running = (flags & IFF_RUNNING) != 0;
    e.carrier = rtnl_link_get_carrier(l) != 0;
    e.deleted = st->deleted;
    st->out->push_back(std::move(e));
  } catch (...) {
  }
}

int on_message(nl_msg* msg, void* arg) noexcept {
  auto* out = static_cast<std::vector<link_event>*>(arg);
  const int type = nlmsg_hdr(msg)->nlmsg_type;
  if (type != RTM_NEWLINK && type != RTM_DELLINK) return NL_SKIP;
  parse_state st{out, type == RTM_DELLINK};
  nl_msg_parse(msg, on_object, &st);
  return NL_OK;
}

}  // namespace

link_watch::link_watch(const std::string& netns) : sk_(socket::open(netns)) {
  nl_sock* sk = sk_.get();
  const std::string what = "subscribing to link notifications" + where();
  // Notifications carry sequence number 0: no request/answer matching on this socket.
  nl_socket_disable_seq_check(sk);
  if (int err = nl_socket_add_memberships(sk, RTNLGRP_LINK, 0); err < 0) throw error(what, err);
  if (int err = nl_socket_set_nonblocking(sk); err < 0) throw error(what, err);
  // Room for a burst (many interfaces changing at once) before the kernel drops messages.
  if (int err = nl_socket_set_buffer_size(sk, 1 << 20, 0); err < 0) throw error(what, err);
}

int link_watch::fd() const {
  return nl_socket_get_fd(sk_.get());
}

std::vector<link_event> link_watch::drain() {
  std::vector<link_event> out;
  nl_sock* sk = sk_.get();
  std::unique_ptr<nl_cb, cb_deleter> cb(nl_socket_get_cb(sk));
  // The callback's argument is this call's vector: it is only called from inside this loop.
  if (int err = nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_message, &out); err < 0) {
    throw error("link notifications", err);
  }
  bool overrun = false;
  for (;;) {
    // Ask the descriptor first: libnl versions differ in what a non-blocking read of an empty
    // socket returns.
    pollfd p{fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLERR))) break;
    // One datagram per call: the number of messages handled, or a negative NLE_* code.
    const int err = nl_recvmsgs_report(sk, cb.get());
    if (err >= 0 || err == -NLE_AGAIN) continue;
    if (err == -NLE_NOMEM) {  // ENOBUFS: the kernel dropped notifications
      overrun = true;
      continue;
    }
    throw error("reading link notifications" + where(), err);
  }
  if (overrun) {
    // Resynchronise: the current state of every link, read on a fresh socket of the namespace.
    auto dump_sk = socket::open(sk_.netns());
    for (const auto& l : links(dump_sk)) {
      out.push_back(link_event{l.index, l.name, l.up, l.running, l.carrier, false});
    }
  }
  return out;
}

std::string link_watch::where() const {
  return sk_.netns().empty() ? std::string() : " in netns " + sk_.netns();
}

}  // namespace tandem::nl
