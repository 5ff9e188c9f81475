// SPDX-License-Identifier: Apache-2.0
// Block digests for checksum-driven resync and verify: SHA-256 of each fixed-size block,
// truncated to 16 bytes. A collision between two different 4 KiB blocks would let a resync skip
// a block that differs, so the digest is cryptographic (CRC32C, which the transport uses against
// line errors, is not enough here); 128 bits of SHA-256 keep the messages at 0.4% of the data.
// OpenSSL's SHA-256 uses the SHA extensions where the CPU has them (1.6 GB/s per core here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tandem::dp {

inline constexpr size_t block_digest_len = 16;

// digest_blocks() allocates nothing, takes no lock and throws nothing (a context on the stack
// per block); any thread may use its own object.
class block_digest {
 public:
  block_digest();
  ~block_digest();
  block_digest(const block_digest&) = delete;
  block_digest& operator=(const block_digest&) = delete;

  // Writes block_digest_len bytes per `block` bytes of `data` (the last block may be shorter)
  // to `out`, which holds at least that many. Returns the number of blocks, or 0 when `block` is
  // 0 or `out` is too small.
  size_t digest_blocks(std::span<const uint8_t> data, uint32_t block,
                       std::span<uint8_t> out) noexcept;
};

}  // namespace tandem::dp
