// SPDX-License-Identifier: Apache-2.0
// HKDF-SHA256 through OpenSSL 3's EVP_KDF, and the transport's session key schedule.
#include "dataplane/crypto/kdf.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "dataplane/crypto/aead_backends.h"

namespace tandem::dp {
namespace {

[[noreturn]] void throw_openssl(std::string_view what) {
  throw std::runtime_error(detail::openssl_error(what));
}

struct kdf_deleter {
  void operator()(EVP_KDF* k) const noexcept { EVP_KDF_free(k); }
};
struct kdf_ctx_deleter {
  void operator()(EVP_KDF_CTX* c) const noexcept { EVP_KDF_CTX_free(c); }
};

OSSL_PARAM octets(const char* key, std::span<const uint8_t> value) {
  // OSSL_PARAM is a C struct without const: OpenSSL only reads input parameters.
  return OSSL_PARAM_construct_octet_string(key, const_cast<uint8_t*>(value.data()), value.size());
}

std::span<const uint8_t> label(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

void hkdf_sha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                 std::span<const uint8_t> info, std::span<uint8_t> out) {
  if (out.empty() || out.size() > size_t{255} * 32) {
    throw std::runtime_error("HKDF-SHA256: output of " + std::to_string(out.size()) +
                             " bytes: expected 1 to 8160");
  }
  const std::unique_ptr<EVP_KDF, kdf_deleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) throw_openssl("cannot fetch HKDF");
  const std::unique_ptr<EVP_KDF_CTX, kdf_ctx_deleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) throw_openssl("cannot create an HKDF context");

  static const uint8_t empty = 0;
  OSSL_PARAM params[5];
  OSSL_PARAM* p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0);
  *p++ = octets(OSSL_KDF_PARAM_KEY, ikm.empty() ? std::span<const uint8_t>(&empty, 0) : ikm);
  // Leaving a parameter out is what the RFC means by "not provided": zero salt, empty info.
  if (!salt.empty()) *p++ = octets(OSSL_KDF_PARAM_SALT, salt);
  if (!info.empty()) *p++ = octets(OSSL_KDF_PARAM_INFO, info);
  *p = OSSL_PARAM_construct_end();
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    throw_openssl("HKDF-SHA256 derivation failed");
  }
}

void random_bytes(std::span<uint8_t> out) {
  if (out.empty()) return;
  if (out.size() > static_cast<size_t>(INT32_MAX) ||
      RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    throw_openssl("RAND_bytes failed");
  }
}

void secure_wipe(std::span<uint8_t> bytes) noexcept {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

direction_keys::~direction_keys() {
  secure_wipe(key_bytes);
  secure_wipe(salt);
}

session_keys derive_session_keys(std::span<const uint8_t> static_key,
                                 std::span<const uint8_t, handshake_nonce_size> initiator_nonce,
                                 std::span<const uint8_t, handshake_nonce_size> responder_nonce,
                                 handshake_role role) {
  const size_t len = static_key.size();
  if (len != 16 && len != 24 && len != 32) {
    throw std::runtime_error("session key derivation: static key of " + std::to_string(len) +
                             " bytes: expected 16, 24 or 32");
  }
  uint8_t salt[2 * handshake_nonce_size];
  std::copy(initiator_nonce.begin(), initiator_nonce.end(), salt);
  std::copy(responder_nonce.begin(), responder_nonce.end(), salt + handshake_nonce_size);

  direction_keys i2r;
  direction_keys r2i;
  i2r.key_size = len;
  r2i.key_size = len;
  hkdf_sha256(static_key, salt, label("tandem v1 i2r key"), {i2r.key_bytes.data(), len});
  hkdf_sha256(static_key, salt, label("tandem v1 r2i key"), {r2i.key_bytes.data(), len});
  hkdf_sha256(static_key, salt, label("tandem v1 i2r salt"), i2r.salt);
  hkdf_sha256(static_key, salt, label("tandem v1 r2i salt"), r2i.salt);

  session_keys keys;
  keys.tx = role == handshake_role::initiator ? i2r : r2i;
  keys.rx = role == handshake_role::initiator ? r2i : i2r;
  return keys;  // i2r and r2i wipe themselves, also when a derivation throws
}

}  // namespace tandem::dp
