// SPDX-License-Identifier: Apache-2.0
#include "dataplane/crypto/block_digest.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <openssl/evp.h>

namespace tandem::dp {

block_digest::block_digest() {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (md == nullptr || ctx == nullptr) {
    EVP_MD_free(md);
    EVP_MD_CTX_free(ctx);
    throw std::runtime_error("block_digest: OpenSSL has no SHA-256");
  }
  md_ = md;
  ctx_ = ctx;
}

block_digest::~block_digest() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
  EVP_MD_free(static_cast<EVP_MD*>(md_));
}

size_t block_digest::digest_blocks(std::span<const uint8_t> data, uint32_t block,
                                   std::span<uint8_t> out) noexcept {
  if (block == 0) return 0;
  const size_t blocks = (data.size() + block - 1) / block;
  if (out.size() < blocks * block_digest_len) return 0;
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  const auto* md = static_cast<const EVP_MD*>(md_);
  for (size_t i = 0; i < blocks; ++i) {
    const size_t at = i * block;
    const size_t n = std::min<size_t>(block, data.size() - at);
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    // The context is reused with the same digest: OpenSSL re-initialises it in place.
    if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx, data.data() + at, n) != 1 ||
        EVP_DigestFinal_ex(ctx, full, &len) != 1 || len < block_digest_len) {
      return 0;
    }
    std::memcpy(out.data() + i * block_digest_len, full, block_digest_len);
  }
  return blocks;
}

}  // namespace tandem::dp
