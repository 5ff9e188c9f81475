// SPDX-License-Identifier: Apache-2.0
// Adding and removing IPv4 / IPv6 addresses on an interface through rtnetlink (libnl-route-3).
#include "netlink/rt_addr.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>

#include "netlink/rt_link.h"

namespace tandem::nl {
namespace {

struct addr_deleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
using addr_ptr = std::unique_ptr<nl_addr, addr_deleter>;
using rtnl_addr_ptr = std::unique_ptr<rtnl_addr, addr_deleter>;

std::string where(const socket& sk) {
  return sk.netns().empty() ? std::string() : " in netns " + sk.netns();
}

struct ip_address {
  int family = 0;
  unsigned char bytes[16] = {};
  int prefix_len = -1;  // -1: none given
  socklen_t size() const { return family == AF_INET ? 4 : 16; }
};

ip_address parse_address(const std::string& text) {
  ip_address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET6;
  } else {
    throw std::invalid_argument("not an IPv4 or IPv6 address: \"" + text + "\"");
  }
  return a;
}

ip_address parse_cidr(const std::string& cidr) {
  const auto slash = cidr.find('/');
  if (slash == std::string::npos) {
    throw std::invalid_argument("address \"" + cidr + "\" has no prefix length (\"/24\")");
  }
  ip_address a = parse_address(cidr.substr(0, slash));
  const std::string len = cidr.substr(slash + 1);
  const int max = a.family == AF_INET ? 32 : 128;
  if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(len) > max) {
    throw std::invalid_argument("address \"" + cidr + "\": prefix length must be 0.." +
                                std::to_string(max));
  }
  a.prefix_len = std::stoi(len);
  return a;
}

int ifindex_of(socket& sk, const std::string& ifname) {
  const auto link = find_link(sk, ifname);
  if (!link) throw std::invalid_argument("no interface " + ifname + where(sk));
  return link->index;
}

// The request for `a` on interface `ifindex`: family, local address and prefix length.
rtnl_addr_ptr make_request(const ip_address& a, int ifindex) {
  addr_ptr local(nl_addr_build(a.family, a.bytes, a.size()));
  rtnl_addr_ptr req(rtnl_addr_alloc());
  if (!local || !req) throw error("building an address request", -NLE_NOMEM);
  nl_addr_set_prefixlen(local.get(), a.prefix_len);
  rtnl_addr_set_ifindex(req.get(), ifindex);
  rtnl_addr_set_family(req.get(), a.family);
  if (int err = rtnl_addr_set_local(req.get(), local.get()); err < 0) {
    throw error("building an address request", err);
  }
  rtnl_addr_set_prefixlen(req.get(), a.prefix_len);
  return req;
}

}  // namespace

void add_address(socket& sk, const std::string& ifname, const std::string& cidr,
                 const std::string& label, bool nodad) {
  const ip_address a = parse_cidr(cidr);
  if (!label.empty()) {
    if (a.family != AF_INET) {
      throw std::invalid_argument("address " + cidr + ": labels exist for IPv4 only");
    }
    if (label.compare(0, ifname.size(), ifname) != 0) {
      throw std::invalid_argument("label \"" + label + "\" must start with the interface name " +
                                  ifname);
    }
    if (label.size() >= IFNAMSIZ) {
      throw std::invalid_argument("label \"" + label + "\" is longer than " +
                                  std::to_string(IFNAMSIZ - 1) + " characters");
    }
  }
  auto req = make_request(a, ifindex_of(sk, ifname));
  if (!label.empty()) {
    if (int err = rtnl_addr_set_label(req.get(), label.c_str()); err < 0) {
      throw error("label " + label, err);
    }
  }
  if (nodad && a.family == AF_INET6) rtnl_addr_set_flags(req.get(), IFA_F_NODAD);
  // libnl adds NLM_F_CREATE; NLM_F_EXCL turns an existing address into NLE_EXIST.
  if (int err = rtnl_addr_add(sk.get(), req.get(), NLM_F_EXCL); err < 0) {
    throw error("adding " + cidr + " to " + ifname + where(sk), err);
  }
}

bool remove_address(socket& sk, const std::string& ifname, const std::string& cidr) {
  const ip_address a = parse_cidr(cidr);
  auto req = make_request(a, ifindex_of(sk, ifname));
  const int err = rtnl_addr_delete(sk.get(), req.get(), 0);
  if (err == -NLE_NOADDR) return false;  // EADDRNOTAVAIL: no such address on the interface
  if (err < 0) throw error("removing " + cidr + " from " + ifname + where(sk), err);
  return true;
}

bool has_address(socket& sk, const std::string& ifname, const std::string& address) {
  const ip_address want = parse_address(address);
  ifindex_of(sk, ifname);  // "no interface X" rather than addresses()' own message
  for (const auto& info : addresses(sk, ifname)) {
    if (info.family != want.family) continue;
    unsigned char got[16] = {};
    if (inet_pton(info.family, info.address.c_str(), got) != 1) continue;
    if (std::memcmp(got, want.bytes, want.size()) == 0) return true;
  }
  return false;
}

std::optional<address_info> covering_address(socket& sk, const std::string& address) {
  const ip_address want = parse_address(address);
  std::vector<int> loopbacks;
  for (const link_info& l : links(sk))
    if (l.name == "lo") loopbacks.push_back(l.index);
  std::optional<address_info> best;
  for (const address_info& info : addresses(sk)) {
    if (info.family != want.family || info.prefix_len <= 0) continue;
    if (info.prefix_len >= (want.family == AF_INET ? 32 : 128)) continue;
    if (std::find(loopbacks.begin(), loopbacks.end(), info.ifindex) != loopbacks.end()) continue;
    unsigned char got[16] = {};
    if (inet_pton(info.family, info.address.c_str(), got) != 1) continue;
    if (std::memcmp(got, want.bytes, want.size()) == 0) continue;
    // Same network: the first prefix_len bits agree.
    const int full = info.prefix_len / 8, rest = info.prefix_len % 8;
    if (std::memcmp(got, want.bytes, static_cast<size_t>(full)) != 0) continue;
    if (rest != 0) {
      const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
      if ((got[full] & mask) != (want.bytes[full] & mask)) continue;
    }
    if (!best || info.prefix_len > best->prefix_len) best = info;
  }
  return best;
}

}  // namespace tandem::nl
