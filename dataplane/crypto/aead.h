// SPDX-License-Identifier: Apache-2.0
// AES-GCM behind one interface, with Intel ipsec-mb and OpenSSL backends chosen at start-up.
//
// One `aead` object holds one key (the transport keeps one per session and direction) and
// processes bursts: at most one virtual call per burst, never one per packet.
//
//   auto tx = make_aead(best_aead_backend(), keys.tx.key());
//   aead_op ops[32];  // one per frame: nonce, header as aad, payload in/out, tag
//   tx->seal_burst(ops, n);
//
// Buffers: the caller owns every buffer an op points to, for the duration of the call only; the
// object keeps no pointer into them. `out` may equal `in` (in place) but must not otherwise
// overlap it. An object is not thread-safe: it belongs to one lcore (it keeps per-call scratch
// state), like every hot-path object in tandem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace tandem::dp {

inline constexpr size_t aead_nonce_size = 12;  // 96-bit GCM IV: salt(4) || packet number(8)
inline constexpr size_t aead_tag_size = 16;    // full 128-bit GCM tag, never truncated

enum class aead_backend : uint8_t {
  ipsecmb,  // Intel ipsec-mb, direct GCM functions for the best arch (SSE .. AVX-512 VAES)
  openssl,  // OpenSSL 3 EVP: the fallback for CPUs without AES-NI + PCLMULQDQ
};

[[nodiscard]] std::string_view to_string(aead_backend b) noexcept;  // "ipsec-mb", "openssl"

// One AEAD operation of a burst.
struct aead_op {
  const uint8_t* nonce = nullptr;  // aead_nonce_size bytes, unique per key (make_gcm_nonce)
  std::span<const uint8_t> aad;    // authenticated, not encrypted (the frame header)
  std::span<const uint8_t> in;     // plaintext (seal) or ciphertext (open)
  uint8_t* out = nullptr;          // in.size() bytes: ciphertext (seal) or plaintext (open)
  uint8_t* tag = nullptr;          // aead_tag_size bytes: written by seal, read by open
  // Set by the call: 0 on success; -EBADMSG when open finds the tag wrong (anything tampered:
  // ciphertext, tag, aad, nonce, or the wrong key); -EINVAL when nonce or tag is null, or out
  // is null while in is not empty; -EIO when the library itself fails (OpenSSL backend only,
  // not expected; drop the frame).
  int result = 0;
};

class aead {
 public:
  virtual ~aead() = default;
  aead(const aead&) = delete;
  aead& operator=(const aead&) = delete;

  // Encrypts each op's `in` into `out` and writes its tag. Always succeeds for valid ops.
  virtual void seal_burst(aead_op* ops, unsigned n) noexcept = 0;

  // Decrypts each op's `in` into `out` and verifies its tag in constant time. On failure
  // (result -EBADMSG) all of `out` (in.size() bytes) is zeroed before returning, so no
  // unauthenticated plaintext is ever left for the caller; with out == in this also wipes the
  // ciphertext. Callers must still look at `result` before using `out`.
  virtual void open_burst(aead_op* ops, unsigned n) noexcept = 0;

  // Single-operation helpers (one virtual call each): 0, -EBADMSG or -EINVAL (also when `out`
  // is shorter than `in`).
  int seal(std::span<const uint8_t, aead_nonce_size> nonce, std::span<const uint8_t> aad,
           std::span<const uint8_t> in, std::span<uint8_t> out,
           std::span<uint8_t, aead_tag_size> tag) noexcept;
  int open(std::span<const uint8_t, aead_nonce_size> nonce, std::span<const uint8_t> aad,
           std::span<const uint8_t> in, std::span<uint8_t> out,
           std::span<const uint8_t, aead_tag_size> tag) noexcept;

  // "ipsec-mb/aes-256-gcm", "openssl/aes-128-gcm", ...
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  // What runs underneath, for logs: ipsec-mb's arch ("avx512", "avx2", "sse", "no-aesni") or
  // OpenSSL's version string.
  [[nodiscard]] virtual std::string_view implementation() const noexcept = 0;

  [[nodiscard]] aead_backend backend() const noexcept { return backend_; }
  [[nodiscard]] size_t key_size() const noexcept { return key_size_; }

 protected:
  aead(aead_backend backend, size_t key_size) noexcept : backend_(backend), key_size_(key_size) {}

  // Checks the pointers of one op; sets and returns op.result = -EINVAL when unusable.
  static bool valid(aead_op& op) noexcept;

 private:
  aead_backend backend_;
  size_t key_size_;
};

// AES-128/192/256-GCM for a 16, 24 or 32-byte key (any other size throws std::runtime_error).
// The object precomputes the key schedule and GHASH tables and keeps no copy of `key`; they are
// wiped when it is destroyed. Setup code: allocates and may throw.
[[nodiscard]] std::unique_ptr<aead> make_aead(aead_backend which, std::span<const uint8_t> key);

// ipsec-mb when the CPU has AES-NI and PCLMULQDQ (as ipsec-mb detects them), else OpenSSL.
[[nodiscard]] aead_backend best_aead_backend() noexcept;

}  // namespace tandem::dp
