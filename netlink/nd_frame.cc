// SPDX-License-Identifier: Apache-2.0
// IPv6 neighbour discovery frames for DAD (nd_frame.h), with dataplane/net's checksum helpers.
#include "netlink/nd_frame.h"

#include <netinet/icmp6.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "dataplane/net/addr.h"
#include "dataplane/net/byte_order.h"
#include "dataplane/net/checksum.h"

namespace tandem::nl::nd {
namespace {

using ip6_bytes = std::span<const uint8_t, 16>;

mac multicast_mac(const ip6& group) noexcept {
  mac m{0x33, 0x33, 0, 0, 0, 0};
  std::memcpy(&m[2], &group[12], 4);
  return m;
}

}  // namespace

uint16_t icmp6_checksum(ip6_bytes src, ip6_bytes dst, std::span<const uint8_t> icmp) noexcept {
  uint32_t sum = dp::checksum_add(src);
  sum = dp::checksum_add(dst, sum);
  // Pseudo-header: 32-bit upper-layer length, three zero bytes, next header.
  sum = dp::checksum_add16(sum, static_cast<uint16_t>(icmp.size() >> 16));
  sum = dp::checksum_add16(sum, static_cast<uint16_t>(icmp.size()));
  sum = dp::checksum_add16(sum, IPPROTO_ICMPV6);
  return dp::checksum_finish(dp::checksum_add(icmp, sum));
}

ip6 solicited_node(const ip6& target) noexcept {
  ip6 g{};
  g[0] = 0xff;
  g[1] = 0x02;
  g[11] = 0x01;
  g[12] = 0xff;
  std::memcpy(&g[13], &target[13], 3);
  return g;
}

mac solicited_node_mac(const ip6& target) noexcept {
  return multicast_mac(solicited_node(target));
}

std::array<uint8_t, dad_frame_len> dad_solicitation(const mac& own, const ip6& target) noexcept {
  std::array<uint8_t, dad_frame_len> f{};
  const ip6 group = solicited_node(target);
  const mac group_mac = multicast_mac(group);
  std::memcpy(&f[0], group_mac.data(), 6);
  std::memcpy(&f[6], own.data(), 6);
  dp::store_be16(&f[12], ethertype_ipv6);
  uint8_t* ip = &f[eth_len];
  ip[0] = 0x60;  // version 6, traffic class and flow label 0
  dp::store_be16(&ip[4], nd_len);
  ip[6] = IPPROTO_ICMPV6;
  ip[7] = hop_limit;
  // Source (bytes 8..23) stays ::.
  std::memcpy(&ip[24], group.data(), 16);
  uint8_t* icmp = &ip[ip6_len];
  icmp[0] = ND_NEIGHBOR_SOLICIT;
  std::memcpy(&icmp[8], target.data(), 16);
  const uint16_t sum = icmp6_checksum(ip6_bytes(&ip[8], 16), ip6_bytes(&ip[24], 16),
                                      std::span<const uint8_t>(icmp, nd_len));
  dp::store_be16(&icmp[2], sum);
  return f;
}

std::optional<mac> claimant(std::span<const uint8_t> frame, const ip6& target,
                            const mac& own) noexcept {
  if (frame.size() < eth_len + ip6_len + nd_len) return std::nullopt;
  if (dp::load_be16(&frame[12]) != ethertype_ipv6) return std::nullopt;
  dp::mac_addr eth_src;
  std::memcpy(eth_src.bytes.data(), &frame[6], 6);
  // Our own frames (looped back to packet sockets), and sources no Ethernet host may have.
  if (eth_src.bytes == own || eth_src.is_multicast() || eth_src.is_zero()) return std::nullopt;
  const auto ip = frame.subspan(eth_len);
  // Extension headers before ICMPv6 are not followed: ND messages never need them.
  if ((ip[0] >> 4) != 6 || ip[6] != IPPROTO_ICMPV6 || ip[7] != hop_limit) return std::nullopt;
  // The payload length bounds the message (Ethernet pads short frames).
  const size_t payload = dp::load_be16(&ip[4]);
  if (payload < nd_len || payload > ip.size() - ip6_len) return std::nullopt;
  const ip6_bytes src = ip.subspan<8, 16>();
  const ip6_bytes dst = ip.subspan<24, 16>();
  const auto icmp = ip.subspan(ip6_len, payload);
  if (icmp[1] != 0 || icmp6_checksum(src, dst, icmp) != 0) return std::nullopt;
  if (std::memcmp(&icmp[8], target.data(), 16) != 0) return std::nullopt;
  if (icmp[0] == ND_NEIGHBOR_SOLICIT) {
    // A solicitation from a real address is only address resolution: no claim.
    const bool unspecified = std::all_of(src.begin(), src.end(), [](uint8_t b) { return b == 0; });
    return unspecified ? std::optional(eth_src.bytes) : std::nullopt;
  }
  if (icmp[0] != ND_NEIGHBOR_ADVERT) return std::nullopt;
  // Options: type, length in units of 8 bytes (0 is invalid: RFC 4861 4.6 drops the message).
  for (auto opts = icmp.subspan(nd_len); opts.size() >= 2;) {
    const size_t len = size_t{opts[1]} * 8;
    if (len == 0 || len > opts.size()) return std::nullopt;
    if (opts[0] == ND_OPT_TARGET_LINKADDR) {
      mac m;
      std::memcpy(m.data(), &opts[2], 6);
      return m;
    }
    opts = opts.subspan(len);
  }
  return eth_src.bytes;
}

}  // namespace tandem::nl::nd
