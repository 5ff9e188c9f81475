// SPDX-License-Identifier: Apache-2.0
// Gratuitous ARP, ARP probes, IPv6 DAD probes and unsolicited neighbour advertisements
// (announce.h). The ARP frames come from tandem::dp's builders and parser (dataplane/net, no
// DPDK); the DAD frames from nd_frame.h.
#include "netlink/announce.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "dataplane/net/addr.h"
#include "dataplane/net/headers.h"
#include "netlink/nd_frame.h"
#include "netlink/rt_socket.h"

namespace tandem::nl {
namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// An owned descriptor.
struct fd_owner {
  int fd = -1;
  explicit fd_owner(int f) : fd(f) {}
  fd_owner(const fd_owner&) = delete;
  fd_owner& operator=(const fd_owner&) = delete;
  ~fd_owner() {
    if (fd >= 0) ::close(fd);
  }
};

// socket(2) inside the namespace (sockets keep the namespace they were made in).
int socket_in(const std::string& netns, int domain, int type, int protocol) {
  int fd = -1, err = 0;
  in_netns(netns, [&] {
    fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    err = errno;
  });
  if (fd < 0) errno = err;
  return fd;
}

struct iface {
  int index = 0;
  dp::mac_addr mac;
};

iface lookup(int fd, const std::string& ifname) {
  ifreq ifr{};
  if (ifname.empty() || ifname.size() >= sizeof(ifr.ifr_name))
    throw std::invalid_argument("bad interface name '" + ifname + "'");
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(fd, SIOCGIFINDEX, &ifr) != 0) fail(errno, "interface " + ifname);
  iface out;
  out.index = ifr.ifr_ifindex;
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) fail(errno, "interface " + ifname + ": MAC");
  std::memcpy(out.mac.bytes.data(), ifr.ifr_hwaddr.sa_data, 6);
  return out;
}

dp::ipv4_addr ipv4_of(const std::string& s) {
  const auto a = dp::ipv4_addr::parse(s);
  if (!a) throw std::invalid_argument("not an IPv4 address: '" + s + "'");
  return *a;
}

// A packet socket for one ethertype, bound to the interface.
int packet_socket(const std::string& netns, const std::string& ifname, uint16_t ethertype,
                  iface& out) {
  const int fd = socket_in(netns, AF_PACKET, SOCK_RAW, htons(ethertype));
  if (fd < 0) fail(errno, "packet socket for " + ifname);
  try {
    out = lookup(fd, ifname);
  } catch (...) {
    ::close(fd);
    throw;
  }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ethertype);
  sll.sll_ifindex = out.index;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    const int e = errno;
    ::close(fd);
    fail(e, "packet socket on " + ifname);
  }
  return fd;
}

// Sends a whole Ethernet frame (SOCK_RAW: the header is in `frame`, destination included).
void send_frame(int fd, const iface& i, uint16_t ethertype, std::span<const uint8_t> frame,
                const std::string& what) {
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ethertype);
  to.sll_ifindex = i.index;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame.data(), 6);
  if (::sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
    fail(errno, what);
}

in6_addr ipv6_of(const std::string& s) {
  in6_addr a{};
  if (::inet_pton(AF_INET6, s.c_str(), &a) != 1)
    throw std::invalid_argument("not an IPv6 address: '" + s + "'");
  return a;
}

nd::ip6 ip6_of(const in6_addr& a) {
  nd::ip6 out;
  std::memcpy(out.data(), a.s6_addr, out.size());
  return out;
}

// Reads frames from a bound packet socket until `wait` has passed or `judge` names the MAC of a
// host that claims the address. Our own frames (PACKET_OUTGOING) and frames of other interfaces
// (queued before bind()) are skipped. `what` names the probe in errors.
std::optional<std::string> listen_for_claim(
    int fd, const iface& i, std::chrono::milliseconds wait, const std::string& what,
    const std::function<std::optional<std::string>(std::span<const uint8_t>)>& judge) {
  const auto deadline = clock_type::now() + wait;
  std::array<uint8_t, 2048> buf{};
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(errno, what);
    if (r == 0) continue;
    sockaddr_ll from{};
    socklen_t from_len = sizeof from;
    const ssize_t got = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr*>(&from), &from_len);
    if (got <= 0) continue;
    if (from.sll_pkttype == PACKET_OUTGOING || from.sll_ifindex != i.index) continue;
    if (auto holder = judge({buf.data(), static_cast<size_t>(got)})) return holder;
  }
}

}  // namespace

void gratuitous_arp(const std::string& netns, const std::string& ifname, const std::string& ipv4,
                    int count, std::chrono::milliseconds interval) {
  const dp::ipv4_addr ip = ipv4_of(ipv4);
  iface i;
  fd_owner sock(packet_socket(netns, ifname, ETH_P_ARP, i));
  std::array<uint8_t, 64> frame{};
  const int n = dp::build_arp_request(frame, i.mac, ip, ip);
  if (n <= 0) throw std::logic_error("gratuitous ARP frame");
  for (int k = 0; k < count; ++k) {
    if (k > 0) std::this_thread::sleep_for(interval);
    send_frame(sock.fd, i, ETH_P_ARP, {frame.data(), static_cast<size_t>(n)},
               "gratuitous ARP for " + ipv4 + " on " + ifname);
  }
}

std::optional<std::string> arp_probe(const std::string& netns, const std::string& ifname,
                                     const std::string& ipv4, std::chrono::milliseconds wait) {
  const dp::ipv4_addr ip = ipv4_of(ipv4);
  iface i;
  fd_owner sock(packet_socket(netns, ifname, ETH_P_ARP, i));
  std::array<uint8_t, 64> frame{};
  const int n = dp::build_arp_request(frame, i.mac, dp::ipv4_addr{}, ip);
  if (n <= 0) throw std::logic_error("ARP probe frame");
  send_frame(sock.fd, i, ETH_P_ARP, {frame.data(), static_cast<size_t>(n)},
             "ARP probe for " + ipv4 + " on " + ifname);
  return listen_for_claim(sock.fd, i, wait, "ARP probe on " + ifname,
                          [&](std::span<const uint8_t> got) -> std::optional<std::string> {
                            const dp::parse_result pr = dp::parse_frame(got);
                            if (!pr.is_arp() || pr.arp.sender_mac == i.mac) return std::nullopt;
                            // Someone using the address: its reply, or its own request or probe for
                            // it.
                            if (pr.arp.sender_ip == ip) return pr.arp.sender_mac.to_string();
                            // Another host probing for the same address at the same time (RFC
                            // 5227 2.1.1).
                            if (pr.arp.op == dp::arp_op::request &&
                                pr.arp.sender_ip.is_unspecified() && pr.arp.target_ip == ip) {
                              return pr.arp.sender_mac.to_string();
                            }
                            return std::nullopt;
                          });
}

std::optional<std::string> nd_probe(const std::string& netns, const std::string& ifname,
                                    const std::string& ipv6, std::chrono::milliseconds wait) {
  const nd::ip6 target = ip6_of(ipv6_of(ipv6));
  iface i;
  fd_owner sock(packet_socket(netns, ifname, ETH_P_IPV6, i));
  // The holder answers to all nodes (ff02::1), which every interface receives. Another host
  // doing DAD for the same address sends to the solicited-node group: join its Ethernet group
  // so that a NIC with a multicast filter passes it up too (the socket's membership ends with
  // the socket).
  packet_mreq mr{};
  mr.mr_ifindex = i.index;
  mr.mr_type = PACKET_MR_MULTICAST;
  mr.mr_alen = 6;
  const nd::mac group_mac = nd::solicited_node_mac(target);
  std::memcpy(mr.mr_address, group_mac.data(), 6);
  if (::setsockopt(sock.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0)
    fail(errno, "packet socket on " + ifname + ": multicast group");
  const auto frame = nd::dad_solicitation(i.mac.bytes, target);
  send_frame(sock.fd, i, ETH_P_IPV6, frame, "neighbour solicitation for " + ipv6 + " on " + ifname);
  return listen_for_claim(sock.fd, i, wait, "neighbour solicitation on " + ifname,
                          [&](std::span<const uint8_t> got) -> std::optional<std::string> {
                            const auto holder = nd::claimant(got, target, i.mac.bytes);
                            if (!holder) return std::nullopt;
                            return dp::mac_addr{*holder}.to_string();
                          });
}

void unsolicited_na(const std::string& netns, const std::string& ifname, const std::string& ipv6,
                    int count, std::chrono::milliseconds interval) {
  const in6_addr target = ipv6_of(ipv6);
  fd_owner sock(socket_in(netns, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6));
  if (sock.fd < 0) fail(errno, "ICMPv6 socket for " + ifname);
  const iface i = lookup(sock.fd, ifname);
  // RFC 4861 7.2.6: hop limit 255 (receivers drop anything else), to all nodes on the link.
  const int hops = 255;
  const unsigned idx = static_cast<unsigned>(i.index);
  if (::setsockopt(sock.fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) != 0 ||
      ::setsockopt(sock.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops) != 0 ||
      ::setsockopt(sock.fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) != 0) {
    fail(errno, "ICMPv6 socket on " + ifname);
  }
  // Neighbour advertisement: override flag, the target, its link-layer address option. The
  // kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets.
  struct {
    nd_neighbor_advert na;
    uint8_t opt_type, opt_len;
    uint8_t mac[6];
  } __attribute__((packed)) msg{};
  msg.na.nd_na_type = ND_NEIGHBOR_ADVERT;
  msg.na.nd_na_code = 0;
  msg.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  msg.na.nd_na_target = target;
  msg.opt_type = ND_OPT_TARGET_LINKADDR;
  msg.opt_len = 1;  // in units of 8 bytes
  std::memcpy(msg.mac, i.mac.bytes.data(), 6);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_scope_id = idx;
  ::inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  for (int k = 0; k < count; ++k) {
    if (k > 0) std::this_thread::sleep_for(interval);
    if (::sendto(sock.fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
      fail(errno, "neighbour advertisement for " + ipv6 + " on " + ifname);
  }
}

}  // namespace tandem::nl
