// SPDX-License-Identifier: Apache-2.0
// HKDF-SHA256, per-session per-direction transport keys, and the GCM nonce layout.
//
// The static key from the key file never encrypts anything. Each handshake draws two fresh
// 32-byte random nonces (one per side) and both sides derive, with HKDF-SHA256:
//
//   PRK       = HKDF-Extract(salt = initiator_nonce || responder_nonce, IKM = static key)
//   i2r key   = HKDF-Expand(PRK, "tandem v1 i2r key",  L)   L = static key length (16/24/32)
//   r2i key   = HKDF-Expand(PRK, "tandem v1 r2i key",  L)
//   i2r salt  = HKDF-Expand(PRK, "tandem v1 i2r salt", 4)
//   r2i salt  = HKDF-Expand(PRK, "tandem v1 r2i salt", 4)
//
// i2r protects what the initiator sends to the responder, r2i the other way. The GCM nonce of a
// frame is salt(4) || packet number (8, big-endian), packet numbers counting up from 0 per
// direction and session. A new session (reconnect, restart of either side) has new random
// handshake nonces, hence new keys, so a (key, nonce) pair never repeats even though packet
// numbers restart at 0. docs/crypto.md has the reasoning.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace tandem::dp {

inline constexpr size_t handshake_nonce_size = 32;
inline constexpr size_t gcm_salt_size = 4;
inline constexpr size_t max_session_key_size = 32;

// HKDF-SHA256 (RFC 5869) extract-then-expand into `out` (1 to 255 * 32 bytes). An empty salt
// means HashLen zero bytes, as in the RFC; empty info is allowed. Throws std::runtime_error when
// OpenSSL fails or `out` has an invalid size. Setup code (handshakes), not the hot path.
void hkdf_sha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                 std::span<const uint8_t> info, std::span<uint8_t> out);

// Fills `out` from OpenSSL's CSPRNG (RAND_bytes), e.g. a handshake nonce. Throws
// std::runtime_error when the generator fails.
void random_bytes(std::span<uint8_t> out);

enum class handshake_role : uint8_t { initiator, responder };

// The key and GCM salt of one direction of one session.
struct direction_keys {
  std::array<uint8_t, max_session_key_size> key_bytes{};
  size_t key_size = 0;  // 16, 24 or 32: the static key's length
  std::array<uint8_t, gcm_salt_size> salt{};

  [[nodiscard]] std::span<const uint8_t> key() const noexcept {
    return {key_bytes.data(), key_size};
  }

  direction_keys() = default;
  direction_keys(const direction_keys&) = default;
  direction_keys& operator=(const direction_keys&) = default;
  ~direction_keys();  // wipes key and salt
};

// One side's view of a session: `tx` seals what this side sends, `rx` opens what it receives.
// The initiator's tx is the responder's rx (i2r) and vice versa (r2i). Wiped when destroyed.
struct session_keys {
  direction_keys tx;
  direction_keys rx;
};

// Derives this side's session keys as described at the top of this file. `static_key` must be
// 16, 24 or 32 bytes (throws std::runtime_error otherwise). Both sides pass the same two nonces
// in the same order (the initiator's first) and their own role.
[[nodiscard]] session_keys derive_session_keys(
    std::span<const uint8_t> static_key,
    std::span<const uint8_t, handshake_nonce_size> initiator_nonce,
    std::span<const uint8_t, handshake_nonce_size> responder_nonce, handshake_role role);

// The 12-byte GCM nonce of packet `pn`: salt || pn as 8 big-endian bytes. Hot path.
constexpr void make_gcm_nonce(std::span<const uint8_t, gcm_salt_size> salt, uint64_t pn,
                              std::span<uint8_t, 12> out) noexcept {
  for (size_t i = 0; i < gcm_salt_size; ++i)
    out[i] = salt[i];
  for (size_t i = 0; i < 8; ++i)
    out[gcm_salt_size + i] = static_cast<uint8_t>(pn >> (56 - 8 * i));
}

// Overwrites `bytes` with zeros in a way the compiler cannot drop (OPENSSL_cleanse).
void secure_wipe(std::span<uint8_t> bytes) noexcept;

}  // namespace tandem::dp
