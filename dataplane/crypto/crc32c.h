// SPDX-License-Identifier: Apache-2.0
// CRC32C (Castagnoli, the iSCSI / SCTP / ext4 CRC) over payloads, computed by ISA-L.
#pragma once

#include <cstdint>
#include <span>

namespace tandem::dp {

// The standard CRC32C of `data` (reflected polynomial 0x82F63B78, initial value and final XOR
// 0xFFFFFFFF): crc32c("123456789") == 0xE3069283. Chainable: pass the CRC of what came before
// as `crc`, so crc32c(b, crc32c(a)) == crc32c(a || b); crc = 0 starts a new CRC.
// Hot path: no allocation, never fails; empty data returns `crc` unchanged.
[[nodiscard]] uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc = 0) noexcept;

}  // namespace tandem::dp
