// SPDX-License-Identifier: Apache-2.0
// Reading links and addresses back from the kernel through rtnetlink (libnl-route-3).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "netlink/rt_socket.h"

namespace tandem::nl {

struct link_info {
  int index = 0;
  std::string name;
  std::string mac;  // "02:74:64:00:00:01"; empty for links without a hardware address
  unsigned mtu = 0;
  bool up = false;       // administratively up (IFF_UP)
  bool running = false;  // operationally up (IFF_RUNNING)
  bool carrier = false;  // the lower layer has a carrier
};

struct address_info {
  int ifindex = 0;
  int family = 0;       // AF_INET or AF_INET6
  std::string address;  // "10.99.0.10" / "fe80::1", without prefix
  int prefix_len = 0;
  std::string label;  // IPv4 label ("eth0", "eth0:vip"); empty for IPv6
};

// All links of the socket's namespace, by index. Throws nl::error.
std::vector<link_info> links(socket& sk);
// One link by name, or nullopt when there is none. Throws nl::error on a netlink failure.
std::optional<link_info> find_link(socket& sk, const std::string& name);
// Addresses of every link, or of the named link only (std::invalid_argument if it does not
// exist). Throws nl::error.
std::vector<address_info> addresses(socket& sk, const std::string& ifname = {});

}  // namespace tandem::nl
