// SPDX-License-Identifier: Apache-2.0
// Private to tandem_dp_crypto: the backends' constructors (called by make_aead) and helpers.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "dataplane/crypto/aead.h"

namespace tandem::dp::detail {

// Both take a key already checked to be 16, 24 or 32 bytes; both throw std::runtime_error when
// the library cannot set up.
std::unique_ptr<aead> make_ipsecmb_aead(std::span<const uint8_t> key);
std::unique_ptr<aead> make_openssl_aead(std::span<const uint8_t> key);

// True when ipsec-mb reports AES-NI and PCLMULQDQ on this CPU.
bool ipsecmb_has_aesni() noexcept;

// "OpenSSL: <what>: <OpenSSL's first queued error>", and clears OpenSSL's error queue.
std::string openssl_error(std::string_view what);

}  // namespace tandem::dp::detail
