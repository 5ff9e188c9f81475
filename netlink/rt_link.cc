// SPDX-License-Identifier: Apache-2.0
// Reading links and addresses back from the kernel through rtnetlink (libnl-route-3).
#include "netlink/rt_link.h"

#include <net/if.h>
#include <sys/socket.h>

#include <memory>
#include <stdexcept>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

namespace tandem::nl {
namespace {

struct cache_deleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using cache_ptr = std::unique_ptr<nl_cache, cache_deleter>;

std::string where(const socket& sk) {
  return sk.netns().empty() ? std::string() : " in netns " + sk.netns();
}

cache_ptr link_cache(socket& sk) {
  nl_cache* c = nullptr;
  if (int err = rtnl_link_alloc_cache(sk.get(), AF_UNSPEC, &c); err < 0) {
    throw error("reading links" + where(sk), err);
  }
  return cache_ptr(c);
}

std::string mac_of(nl_addr* a) {
  if (!a || nl_addr_get_len(a) != 6) return {};
  const auto* b = static_cast<const unsigned char*>(nl_addr_get_binary_addr(a));
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
                b[5]);
  return buf;
}

link_info to_info(rtnl_link* l) {
  link_info i;
  i.index = rtnl_link_get_ifindex(l);
  if (const char* n = rtnl_link_get_name(l)) i.name = n;
  i.mac = mac_of(rtnl_link_get_addr(l));
  i.mtu = rtnl_link_get_mtu(l);
  const unsigned flags = rtnl_link_get_flags(l);
  i.up = (flags & IFF_UP) != 0;
  i.running = (flags & IFF_RUNNING) != 0;
  i.carrier = rtnl_link_get_carrier(l) != 0;
  return i;
}

}  // namespace

std::vector<link_info> links(socket& sk) {
  auto cache = link_cache(sk);
  std::vector<link_info> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    out.push_back(to_info(reinterpret_cast<rtnl_link*>(o)));
  }
  return out;
}

std::optional<link_info> find_link(socket& sk, const std::string& name) {
  auto cache = link_cache(sk);
  rtnl_link* l = rtnl_link_get_by_name(cache.get(), name.c_str());
  if (!l) return std::nullopt;
  link_info i = to_info(l);
  rtnl_link_put(l);
  return i;
}

std::vector<address_info> addresses(socket& sk, const std::string& ifname) {
  int ifindex = 0;
  if (!ifname.empty()) {
    auto l = find_link(sk, ifname);
    if (!l) throw std::invalid_argument("no link named " + ifname + where(sk));
    ifindex = l->index;
  }
  nl_cache* raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(sk.get(), &raw); err < 0) {
    throw error("reading addresses" + where(sk), err);
  }
  cache_ptr cache(raw);
  std::vector<address_info> out;
  for (nl_object* o = nl_cache_get_first(raw); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (ifindex && rtnl_addr_get_ifindex(a) != ifindex) continue;
    nl_addr* local = rtnl_addr_get_local(a);
    if (!local) continue;
    address_info i;
    i.ifindex = rtnl_addr_get_ifindex(a);
    i.family = rtnl_addr_get_family(a);
    i.prefix_len = rtnl_addr_get_prefixlen(a);
    char buf[INET6_ADDRSTRLEN + 8];
    // nl_addr2str appends "/prefix" when the address carries one; keep the bare address.
    std::string text = nl_addr2str(local, buf, sizeof(buf));
    if (auto slash = text.find('/'); slash != std::string::npos) text.resize(slash);
    i.address = text;
    if (const char* lbl = rtnl_addr_get_label(a)) i.label = lbl;
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace tandem::nl
