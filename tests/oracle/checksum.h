// SPDX-License-Identifier: Apache-2.0
// The textbook RFC 1071 checksum: the oracle for dataplane/net's word-at-a-time checksum_add.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tandem::oracle {

// Big-endian 16-bit words, the odd byte padded with zero, carries folded, complemented.
inline uint16_t rfc1071_checksum(std::span<const uint8_t> b) {
  uint32_t sum = 0;
  for (size_t i = 0; i < b.size(); i += 2) {
    const uint32_t hi = b[i];
    const uint32_t lo = i + 1 < b.size() ? b[i + 1] : 0;
    sum += (hi << 8) | lo;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum & 0xffff);
}

}  // namespace tandem::oracle
