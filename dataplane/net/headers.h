// SPDX-License-Identifier: Apache-2.0
// Ethernet II / ARP / IPv4 / UDP wire formats: frame builders and a frame parser (no DPDK).
//
// Everything here works on byte spans in network order through load_be* / store_be*, never on
// host structs overlaid on packet memory. The parser is the dataplane's receive classifier and
// accepts any byte string: it either returns the fields of a well-formed UDP/IPv4 datagram or
// ARP packet, or says why it dropped the frame. Builders and the parser never allocate or throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/net/addr.h"
#include "dataplane/net/byte_order.h"
#include "dataplane/net/checksum.h"

namespace tandem::dp {

// ---- Wire layouts: field offsets and sizes -------------------------------------------------

namespace wire::eth {
inline constexpr size_t dst = 0;    // 6 bytes
inline constexpr size_t src = 6;    // 6 bytes
inline constexpr size_t type = 12;  // be16 ethertype
inline constexpr size_t len = 14;
inline constexpr size_t min_frame_len = 60;  // shortest frame on the wire, without the FCS
inline constexpr uint16_t type_ipv4 = 0x0800;
inline constexpr uint16_t type_arp = 0x0806;
}  // namespace wire::eth

// ARP for IPv4 over Ethernet (RFC 826).
namespace wire::arp {
inline constexpr size_t htype = 0;        // be16, 1 = Ethernet
inline constexpr size_t ptype = 2;        // be16, 0x0800 = IPv4
inline constexpr size_t hlen = 4;         // 6
inline constexpr size_t plen = 5;         // 4
inline constexpr size_t oper = 6;         // be16, 1 request / 2 reply
inline constexpr size_t sender_mac = 8;   // 6 bytes
inline constexpr size_t sender_ip = 14;   // be32
inline constexpr size_t target_mac = 18;  // 6 bytes
inline constexpr size_t target_ip = 24;   // be32
inline constexpr size_t len = 28;
inline constexpr uint16_t htype_ethernet = 1;
}  // namespace wire::arp

// IPv4 (RFC 791).
namespace wire::ipv4 {
inline constexpr size_t version_ihl = 0;   // version << 4 | header length in 32-bit words
inline constexpr size_t tos = 1;           // DSCP << 2 | ECN
inline constexpr size_t total_length = 2;  // be16, header + payload
inline constexpr size_t id = 4;            // be16
inline constexpr size_t frag = 6;          // be16, flags (3 bits) << 13 | offset in 8-byte units
inline constexpr size_t ttl = 8;
inline constexpr size_t protocol = 9;
inline constexpr size_t checksum = 10;  // be16
inline constexpr size_t src = 12;       // be32
inline constexpr size_t dst = 16;       // be32
inline constexpr size_t min_len = 20;   // IHL 5, what the builders write
inline constexpr size_t max_len = 60;   // IHL 15
inline constexpr uint16_t flag_reserved = 0x8000;
inline constexpr uint16_t flag_dont_fragment = 0x4000;
inline constexpr uint16_t flag_more_fragments = 0x2000;
inline constexpr uint16_t offset_mask = 0x1fff;
inline constexpr uint8_t proto_udp = 17;
}  // namespace wire::ipv4

// UDP (RFC 768).
namespace wire::udp {
inline constexpr size_t src_port = 0;  // be16
inline constexpr size_t dst_port = 2;  // be16
inline constexpr size_t length = 4;    // be16, header + payload
inline constexpr size_t checksum = 6;  // be16, 0 = not computed
inline constexpr size_t len = 8;
}  // namespace wire::udp

// Ethernet + IPv4 (no options) + UDP headers: where build_udp_frame puts the payload.
inline constexpr size_t udp_frame_overhead = wire::eth::len + wire::ipv4::min_len + wire::udp::len;
// Largest UDP payload an IPv4 datagram without options can carry (65535 - 20 - 8).
inline constexpr size_t udp_max_payload = 65535 - wire::ipv4::min_len - wire::udp::len;
// An ARP frame before padding to wire::eth::min_frame_len.
inline constexpr size_t arp_frame_len = wire::eth::len + wire::arp::len;

// ---- Values ---------------------------------------------------------------------------------

// One end of a UDP flow: the Ethernet, IPv4 and UDP addresses of a host.
struct udp_endpoint {
  mac_addr mac;
  ipv4_addr ip;
  uint16_t port = 0;
  friend constexpr bool operator==(const udp_endpoint&, const udp_endpoint&) = default;
};

enum class arp_op : uint16_t { request = 1, reply = 2 };

// An ARP packet for IPv4 over Ethernet.
struct arp_packet {
  arp_op op = arp_op::request;
  mac_addr sender_mac;
  ipv4_addr sender_ip;
  mac_addr target_mac;  // zero in requests
  ipv4_addr target_ip;
  friend constexpr bool operator==(const arp_packet&, const arp_packet&) = default;
};

// Who fills in the UDP checksum.
enum class udp_checksum_mode : uint8_t {
  full,           // computed in software over the pseudo-header, UDP header and payload
  none,           // 0, "no checksum" (RFC 768): for payloads an outer AEAD already protects
  pseudo_header,  // only the folded pseudo-header sum, not complemented: what a NIC doing UDP
                  // checksum offload expects (DPDK RTE_MBUF_F_TX_UDP_CKSUM)
};

// The IPv4 and UDP header fields that build_udp_frame takes beyond the endpoints.
struct udp_build_options {
  udp_checksum_mode udp_checksum = udp_checksum_mode::full;
  bool ip_checksum = true;    // false leaves 0 for IPv4 checksum offload (RTE_MBUF_F_TX_IP_CKSUM)
  bool dont_fragment = true;  // DF flag
  bool pad_to_min_frame = false;  // zero-pad to 60 bytes for ports whose NIC does not pad
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t ip_id = 0;
};

// ---- Builders -------------------------------------------------------------------------------
// Each returns the number of bytes written, or (writing nothing) -ENOSPC when `out` is too small
// or -EMSGSIZE when the payload cannot fit in one IPv4 datagram.

// Writes the 42 bytes of Ethernet, IPv4 and UDP headers for `payload` into out[0..42). The
// payload itself is not copied (it only feeds the UDP checksum), so it may live in another
// buffer, e.g. a chained mbuf segment.
[[nodiscard]] int build_udp_headers(std::span<uint8_t> out, const udp_endpoint& src,
                                    const udp_endpoint& dst, std::span<const uint8_t> payload,
                                    const udp_build_options& opts = {}) noexcept;

// Writes a complete frame: headers, then the payload copied to out[udp_frame_overhead...] (in
// the same pass as the checksum). The payload may overlap `out` (it is then moved first), so it
// can also be built in place at that offset.
[[nodiscard]] int build_udp_frame(std::span<uint8_t> out, const udp_endpoint& src,
                                  const udp_endpoint& dst, std::span<const uint8_t> payload,
                                  const udp_build_options& opts = {}) noexcept;

// Writes an ARP frame from arp.sender_mac to `eth_dst`, zero-padded to 60 bytes if `pad`.
[[nodiscard]] int build_arp(std::span<uint8_t> out, const mac_addr& eth_dst, const arp_packet& arp,
                            bool pad = true) noexcept;

// A broadcast "who has target_ip, tell sender_ip" (target_ip == sender_ip: gratuitous ARP).
[[nodiscard]] int build_arp_request(std::span<uint8_t> out, const mac_addr& sender_mac,
                                    ipv4_addr sender_ip, ipv4_addr target_ip) noexcept;

// The unicast answer to `request`: "request.target_ip is at my_mac".
[[nodiscard]] int build_arp_reply(std::span<uint8_t> out, const mac_addr& my_mac,
                                  const arp_packet& request) noexcept;

// ---- Parser ---------------------------------------------------------------------------------

enum class frame_kind : uint8_t { drop, udp, arp };

// Why parse_frame dropped a frame; the first failing check wins, in this order.
enum class drop_reason : uint8_t {
  none,                     // not dropped
  too_short,                // shorter than the Ethernet header or the fixed ARP / IPv4 header
  unsupported_ethertype,    // neither IPv4 nor ARP (VLAN tags, IPv6, LLDP, ...)
  bad_arp_format,           // not Ethernet/IPv4 ARP (htype, ptype, hlen, plen)
  unsupported_arp_op,       // neither request nor reply
  bad_ip_version,           // version field is not 4
  bad_ip_header_length,     // IHL < 5 or the header runs past the frame
  bad_ip_total_length,      // total length < header length or past the frame
  bad_ip_checksum,          // header checksum does not verify
  ip_fragment,              // MF set or fragment offset != 0: tandem never fragments
  unsupported_ip_protocol,  // not UDP
  bad_udp_length,           // UDP header truncated, length < 8 or past the IP payload
  bad_udp_checksum,         // nonzero UDP checksum that does not verify
};
inline constexpr size_t drop_reason_count = static_cast<size_t>(drop_reason::bad_udp_checksum) + 1;

// "too_short", "bad_ip_checksum", ... (stable names for counters and logs).
[[nodiscard]] std::string_view to_string(drop_reason reason) noexcept;
[[nodiscard]] std::string_view to_string(frame_kind kind) noexcept;

// A received UDP datagram. `payload` points into the parsed frame.
struct udp_datagram {
  udp_endpoint src;  // Ethernet source, IPv4 source, UDP source port
  udp_endpoint dst;
  std::span<const uint8_t> payload;
  uint8_t ttl = 0;
  uint8_t tos = 0;
  uint16_t ip_id = 0;
  bool dont_fragment = false;
  bool has_udp_checksum = false;  // false when the sender sent 0
  uint8_t ip_header_len = 0;      // 20..60; > 20 when options were skipped
};

struct parse_result {
  frame_kind kind = frame_kind::drop;
  drop_reason reason = drop_reason::too_short;  // none unless kind == drop
  // Valid once the Ethernet header was read (every reason but too_short on a < 14 byte frame).
  mac_addr eth_dst;
  mac_addr eth_src;
  uint16_t ethertype = 0;
  udp_datagram udp;  // valid when kind == frame_kind::udp
  arp_packet arp;    // valid when kind == frame_kind::arp

  [[nodiscard]] constexpr bool is_udp() const noexcept { return kind == frame_kind::udp; }
  [[nodiscard]] constexpr bool is_arp() const noexcept { return kind == frame_kind::arp; }
  [[nodiscard]] constexpr bool is_drop() const noexcept { return kind == frame_kind::drop; }
};

// Checks parse_frame may skip because the NIC already did them.
struct parse_options {
  bool verify_ip_checksum = true;   // false when the mbuf says RTE_MBUF_F_RX_IP_CKSUM_GOOD
  bool verify_udp_checksum = true;  // false when the mbuf says RTE_MBUF_F_RX_L4_CKSUM_GOOD
};

// Classifies one Ethernet frame (without FCS). Bytes after the IPv4 total length (Ethernet
// padding) and after the UDP length are ignored, as Linux does.
[[nodiscard]] parse_result parse_frame(std::span<const uint8_t> frame,
                                       const parse_options& opts = {}) noexcept;

}  // namespace tandem::dp
