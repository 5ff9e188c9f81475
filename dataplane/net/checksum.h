// SPDX-License-Identifier: Apache-2.0
// The Internet one's-complement checksum (RFC 1071) for IPv4 headers and UDP over IPv4.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/net/addr.h"

namespace tandem::dp {

// Adds `data` to a running one's-complement sum of big-endian 16-bit words and returns the new
// sum folded to 16 bits (so it is always <= 0xffff). A trailing odd byte counts as the high byte
// of a word padded with zero, so every chunk but the last must have an even length.
[[nodiscard]] uint32_t checksum_add(std::span<const uint8_t> data, uint32_t sum = 0) noexcept;

// checksum_add that also copies `src` to `dst` in the same pass (the buffers must not overlap).
[[nodiscard]] uint32_t checksum_copy(uint8_t* dst, std::span<const uint8_t> src,
                                     uint32_t sum = 0) noexcept;

// Adds one big-endian 16-bit word to a running sum (folded to 16 bits).
[[nodiscard]] constexpr uint32_t checksum_add16(uint32_t sum, uint16_t word) noexcept {
  sum += word;
  return (sum & 0xffffU) + (sum >> 16);
}

// Adds two IPv4 addresses as 16-bit words: the part the IPv4 header checksum and the UDP
// pseudo-header share.
[[nodiscard]] constexpr uint32_t checksum_add_addrs(uint32_t sum, ipv4_addr a,
                                                    ipv4_addr b) noexcept {
  sum = checksum_add16(sum, static_cast<uint16_t>(a.value >> 16));
  sum = checksum_add16(sum, static_cast<uint16_t>(a.value));
  sum = checksum_add16(sum, static_cast<uint16_t>(b.value >> 16));
  return checksum_add16(sum, static_cast<uint16_t>(b.value));
}

// The UDP/IPv4 pseudo-header sum from checksum_add_addrs(0, src, dst): protocol 17 and length.
[[nodiscard]] constexpr uint32_t udp4_pseudo_sum(uint32_t addrs_sum, uint16_t udp_length) noexcept {
  return checksum_add16(checksum_add16(addrs_sum, 17), udp_length);
}

// Folds the carries of a running sum into 16 bits and complements it: the value to store in a
// checksum field (in host order; store it with store_be16).
[[nodiscard]] constexpr uint16_t checksum_finish(uint32_t sum) noexcept {
  sum = (sum & 0xffffU) + (sum >> 16);
  sum = (sum & 0xffffU) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// The IPv4 header checksum of `header` (20..60 bytes). Computed over a header whose checksum
// field is zero it gives the value to store; over a received header it is 0 when the header is
// intact.
[[nodiscard]] inline uint16_t ipv4_checksum(std::span<const uint8_t> header) noexcept {
  return checksum_finish(checksum_add(header));
}

// The UDP checksum over the IPv4 pseudo-header (src, dst, protocol 17, `udp_length`), the UDP
// header `udp_header` (8 bytes) and `payload`. Returns the raw complemented sum: over a
// datagram whose checksum field is zero it is the value to send (a result of 0 must be sent as
// 0xffff, see udp_checksum_for_wire); over a received datagram it is 0 when the data is intact.
[[nodiscard]] uint16_t udp4_checksum(ipv4_addr src, ipv4_addr dst, uint16_t udp_length,
                                     std::span<const uint8_t> udp_header,
                                     std::span<const uint8_t> payload) noexcept;

// RFC 768: a computed checksum of zero is transmitted as all ones (zero means "no checksum").
[[nodiscard]] constexpr uint16_t udp_checksum_for_wire(uint16_t computed) noexcept {
  return computed == 0 ? uint16_t{0xffff} : computed;
}

}  // namespace tandem::dp
