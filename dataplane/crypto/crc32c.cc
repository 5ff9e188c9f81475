// SPDX-License-Identifier: Apache-2.0
// CRC32C on ISA-L's crc32_iscsi, adapted to the standard (pre- and post-inverted) convention.
#include "dataplane/crypto/crc32c.h"

#include <climits>
#include <cstddef>

#include <isa-l.h>

namespace tandem::dp {

// crc32_iscsi(buf, len, init) runs the reflected CRC32C register from `init` and returns the
// register as is: it neither inverts the initial value nor the result (measured: zero bytes
// with init 0 give 0). The standard CRC32C is ~crc32_iscsi(data, ~0). Feeding ~crc back in
// resumes the register where the previous call left it, which makes the function chainable.
uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc) noexcept {
  // crc32_iscsi takes a non-const pointer but only reads; its length is an int.
  auto* p = const_cast<unsigned char*>(data.data());
  size_t left = data.size();
  uint32_t reg = ~crc;
  constexpr size_t chunk = size_t{1} << 30;
  while (left > 0) {
    const size_t n = left < chunk ? left : chunk;
    reg = crc32_iscsi(p, static_cast<int>(n), reg);
    p += n;
    left -= n;
  }
  return ~reg;
}

}  // namespace tandem::dp
