// SPDX-License-Identifier: Apache-2.0
// IPv6 neighbour discovery frames for duplicate address detection (nl::nd_probe, announce.h):
// the DAD neighbour solicitation nd_probe sends, and the parser that says who claims an address
// in any frame received on its packet socket. Plain byte arrays, so the parser can be fuzzed
// (tests/fuzz/nd_frame_fuzz.cc) without the dataplane types the implementation uses.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace tandem::nl::nd {

using mac = std::array<uint8_t, 6>;
using ip6 = std::array<uint8_t, 16>;

// Neighbour discovery on the wire: Ethernet, a fixed IPv6 header (no extension headers), then a
// neighbour solicitation or advertisement of 24 bytes (type, code, checksum, flags or reserved,
// target) followed by options.
inline constexpr size_t eth_len = 14;
inline constexpr size_t ip6_len = 40;
inline constexpr size_t nd_len = 24;
// The DAD solicitation carries no option: the shortest frame claimant() looks at.
inline constexpr size_t dad_frame_len = eth_len + ip6_len + nd_len;
inline constexpr uint16_t ethertype_ipv6 = 0x86dd;
// RFC 4861 7.1.1 / 7.1.2: neighbour discovery messages from off the link (hop limit below 255)
// are forged or forwarded; hosts drop them.
inline constexpr uint8_t hop_limit = 255;

// The ICMPv6 checksum (RFC 8200 8.1) of `icmp` between `src` and `dst`: the value to store when
// computed over a message whose checksum field is zero, 0 over an intact received message.
[[nodiscard]] uint16_t icmp6_checksum(std::span<const uint8_t, 16> src,
                                      std::span<const uint8_t, 16> dst,
                                      std::span<const uint8_t> icmp) noexcept;

// RFC 4291 2.7.1 / 7: the solicited-node group ff02::1:ffXX:XXXX of an address and the
// Ethernet group 33:33:ff:XX:XX:XX it is sent to (RFC 2464 7): both end in its last 24 bits.
// nd_probe joins the Ethernet group (PACKET_ADD_MEMBERSHIP) to hear other hosts' DAD.
[[nodiscard]] ip6 solicited_node(const ip6& target) noexcept;
[[nodiscard]] mac solicited_node_mac(const ip6& target) noexcept;

// The DAD neighbour solicitation for `target` (RFC 4862 5.4.2): from the unspecified address to
// the target's solicited-node group, and without a source link-layer address option, which RFC
// 4861 7.1.1 forbids when the source is unspecified. `own` is the Ethernet source.
[[nodiscard]] std::array<uint8_t, dad_frame_len> dad_solicitation(const mac& own,
                                                                  const ip6& target) noexcept;

// What one received frame says about `target`: the MAC of the host that claims it, or nullopt.
// The frame is outside input: every length is checked before it is used. A claim is a
// neighbour advertisement for the target (the holder's MAC is its target link-layer address
// option, else the frame's source), or another host's DAD solicitation for it (from ::).
// Frames whose Ethernet source is `own` (our own, looped back), a group or zero are ignored;
// the option's MAC is returned as it is, whatever it says.
[[nodiscard]] std::optional<mac> claimant(std::span<const uint8_t> frame, const ip6& target,
                                          const mac& own) noexcept;

}  // namespace tandem::nl::nd
