// SPDX-License-Identifier: Apache-2.0
// OpenSSL's low-level SHA-256 calls: deprecated in 3.0 in favour of EVP, but EVP allocates on
// every EVP_DigestInit (measured: one malloc per block with OpenSSL 3.0), and this runs on the
// polling thread for every 4 KiB block. The low-level calls use the same SHA-extension code and a
// context on the stack.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "dataplane/crypto/block_digest.h"

#include <algorithm>
#include <cstring>

#include <openssl/sha.h>

namespace tandem::dp {

block_digest::block_digest() = default;
block_digest::~block_digest() = default;

size_t block_digest::digest_blocks(std::span<const uint8_t> data, uint32_t block,
                                   std::span<uint8_t> out) noexcept {
  if (block == 0) return 0;
  const size_t blocks = (data.size() + block - 1) / block;
  if (out.size() < blocks * block_digest_len) return 0;
  for (size_t i = 0; i < blocks; ++i) {
    const size_t at = i * block;
    const size_t n = std::min<size_t>(block, data.size() - at);
    SHA256_CTX ctx;
    unsigned char full[SHA256_DIGEST_LENGTH];
    if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, data.data() + at, n) != 1 ||
        SHA256_Final(full, &ctx) != 1) {
      return 0;
    }
    std::memcpy(out.data() + i * block_digest_len, full, block_digest_len);
  }
  return blocks;
}

}  // namespace tandem::dp
