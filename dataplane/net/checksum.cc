// SPDX-License-Identifier: Apache-2.0
// One's-complement sums in native 32-bit words, byte-swapped once at the end (RFC 1071 §2(B)).
#include "dataplane/net/checksum.h"

#include <bit>
#include <cstring>

namespace tandem::dp {
namespace {

// Folds a 64-bit one's-complement accumulator to 16 bits with end-around carries.
uint16_t fold64(uint64_t acc) noexcept {
  acc = (acc & 0xffffffffU) + (acc >> 32);
  acc = (acc & 0xffffffffU) + (acc >> 32);
  acc = (acc & 0xffffU) + (acc >> 16);
  acc = (acc & 0xffffU) + (acc >> 16);
  acc = (acc & 0xffffU) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

// Sum of `src` as native-order 16-bit words (an odd tail byte padded with zero in memory
// order), folded to 16 bits; with Copy, `src` is also copied to `dst` in the same pass. One's-
// complement addition commutes with byte swapping, so a single swap afterwards turns it into
// the sum of big-endian words. Two 64-bit accumulators count their carries separately, which
// keeps the loop free of a serial carry chain.
template <bool Copy>
uint16_t native_sum(uint8_t* dst, const uint8_t* src, size_t n) noexcept {
  uint64_t a0 = 0;
  uint64_t a1 = 0;
  uint64_t carries = 0;
  while (n >= 16) {
    uint64_t w0;
    uint64_t w1;
    std::memcpy(&w0, src, sizeof w0);
    std::memcpy(&w1, src + 8, sizeof w1);
    if constexpr (Copy) {
      std::memcpy(dst, &w0, sizeof w0);
      std::memcpy(dst + 8, &w1, sizeof w1);
      dst += 16;
    }
    a0 += w0;
    carries += a0 < w0;
    a1 += w1;
    carries += a1 < w1;
    src += 16;
    n -= 16;
  }
  // Each half of a 64-bit word is a 32-bit sum; a carry out of bit 63 is worth 2^64 == 1.
  uint64_t acc = (a0 & 0xffffffffU) + (a0 >> 32) + (a1 & 0xffffffffU) + (a1 >> 32) + carries;
  while (n >= 4) {
    uint32_t w;
    std::memcpy(&w, src, sizeof w);
    if constexpr (Copy) {
      std::memcpy(dst, &w, sizeof w);
      dst += 4;
    }
    acc += w;
    src += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, src, sizeof w);
    if constexpr (Copy) {
      std::memcpy(dst, &w, sizeof w);
      dst += 2;
    }
    acc += w;
    src += 2;
    n -= 2;
  }
  if (n == 1) {
    const uint8_t tail[2] = {src[0], 0};
    uint16_t w;
    std::memcpy(&w, tail, sizeof w);
    if constexpr (Copy) dst[0] = src[0];
    acc += w;
  }
  return fold64(acc);
}

uint32_t add_native(uint16_t native, uint32_t sum) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    native = static_cast<uint16_t>((native >> 8) | (native << 8));
  }
  sum = (sum & 0xffffU) + (sum >> 16);  // tolerate an unfolded incoming sum
  return checksum_add16(sum, native);
}

}  // namespace

uint32_t checksum_add(std::span<const uint8_t> data, uint32_t sum) noexcept {
  return add_native(native_sum<false>(nullptr, data.data(), data.size()), sum);
}

uint32_t checksum_copy(uint8_t* dst, std::span<const uint8_t> src, uint32_t sum) noexcept {
  return add_native(native_sum<true>(dst, src.data(), src.size()), sum);
}

uint16_t udp4_checksum(ipv4_addr src, ipv4_addr dst, uint16_t udp_length,
                       std::span<const uint8_t> udp_header,
                       std::span<const uint8_t> payload) noexcept {
  uint32_t sum = udp4_pseudo_sum(checksum_add_addrs(0, src, dst), udp_length);
  sum = checksum_add(udp_header, sum);
  sum = checksum_add(payload, sum);
  return checksum_finish(sum);
}

}  // namespace tandem::dp
