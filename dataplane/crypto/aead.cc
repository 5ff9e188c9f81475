// SPDX-License-Identifier: Apache-2.0
// The AEAD interface's shared parts: argument checks, single-op helpers, factory, backend choice.
#include "dataplane/crypto/aead.h"

#include <cerrno>
#include <stdexcept>
#include <string>

#include "dataplane/crypto/aead_backends.h"

namespace tandem::dp {

std::string_view to_string(aead_backend b) noexcept {
  switch (b) {
    case aead_backend::ipsecmb:
      return "ipsec-mb";
    case aead_backend::openssl:
      return "openssl";
  }
  return "unknown";
}

bool aead::valid(aead_op& op) noexcept {
  if (op.nonce == nullptr || op.tag == nullptr || (op.out == nullptr && !op.in.empty()) ||
      (op.aad.data() == nullptr && !op.aad.empty())) [[unlikely]] {
    op.result = -EINVAL;
    return false;
  }
  return true;
}

int aead::seal(std::span<const uint8_t, aead_nonce_size> nonce, std::span<const uint8_t> aad,
               std::span<const uint8_t> in, std::span<uint8_t> out,
               std::span<uint8_t, aead_tag_size> tag) noexcept {
  if (out.size() < in.size()) return -EINVAL;
  aead_op op{nonce.data(), aad, in, out.data(), tag.data(), 0};
  seal_burst(&op, 1);
  return op.result;
}

int aead::open(std::span<const uint8_t, aead_nonce_size> nonce, std::span<const uint8_t> aad,
               std::span<const uint8_t> in, std::span<uint8_t> out,
               std::span<const uint8_t, aead_tag_size> tag) noexcept {
  if (out.size() < in.size()) return -EINVAL;
  // open_burst only reads the tag; aead_op has one pointer for both directions.
  aead_op op{nonce.data(), aad, in, out.data(), const_cast<uint8_t*>(tag.data()), 0};
  open_burst(&op, 1);
  return op.result;
}

std::unique_ptr<aead> make_aead(aead_backend which, std::span<const uint8_t> key) {
  if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
    throw std::runtime_error("AES-GCM key of " + std::to_string(key.size()) +
                             " bytes: expected 16, 24 or 32 (AES-128/192/256)");
  }
  switch (which) {
    case aead_backend::ipsecmb:
      return detail::make_ipsecmb_aead(key);
    case aead_backend::openssl:
      return detail::make_openssl_aead(key);
  }
  throw std::runtime_error("unknown AEAD backend " + std::to_string(static_cast<unsigned>(which)));
}

aead_backend best_aead_backend() noexcept {
  return detail::ipsecmb_has_aesni() ? aead_backend::ipsecmb : aead_backend::openssl;
}

}  // namespace tandem::dp
