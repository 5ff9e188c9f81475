// SPDX-License-Identifier: Apache-2.0
// The backend interface: the validation every implementation applies, and op names.
#include "dataplane/backend/backend.h"

#include <cerrno>

namespace tandem::dp::backend {

const char* op_name(op o) noexcept {
  switch (o) {
    case op::read:
      return "read";
    case op::write:
      return "write";
    case op::flush:
      return "flush";
    case op::discard:
      return "discard";
    case op::write_zeroes:
      return "write_zeroes";
  }
  return "unknown";
}

namespace {

bool aligned(uint64_t v, uint32_t a) noexcept {
  return (v & (a - 1)) == 0;
}

bool in_range(uint64_t offset, uint64_t length, const geometry& g) noexcept {
  return length > 0 && offset <= g.size && length <= g.size - offset &&
         aligned(offset, g.block_size) && aligned(length, g.block_size);
}

bool buffers_ok(const request& r, const geometry& g) noexcept {
  if (r.length > max_rw_bytes) return false;
  if (r.iovcnt == 0) {
    return r.buf != nullptr && r.iov == nullptr &&
           aligned(reinterpret_cast<uintptr_t>(r.buf), g.mem_align);
  }
  if (r.iov == nullptr || r.buf != nullptr || r.iovcnt > max_iovecs) return false;
  uint64_t sum = 0;
  for (uint16_t i = 0; i < r.iovcnt; ++i) {
    const iovec& v = r.iov[i];
    if (v.iov_base == nullptr || v.iov_len == 0 || !aligned(v.iov_len, g.block_size) ||
        !aligned(reinterpret_cast<uintptr_t>(v.iov_base), g.mem_align)) {
      return false;
    }
    sum += v.iov_len;
  }
  return sum == r.length;
}

}  // namespace

int validate(const request& r, const geometry& g) noexcept {
  if ((r.flags & ~req_fua) != 0) return -EINVAL;
  if ((r.flags & req_fua) != 0 && r.opcode != op::write) return -EINVAL;
  switch (r.opcode) {
    case op::read:
    case op::write:
      return in_range(r.offset, r.length, g) && buffers_ok(r, g) ? 0 : -EINVAL;
    case op::flush:
      return r.offset == 0 && r.length == 0 && r.buf == nullptr && r.iovcnt == 0 ? 0 : -EINVAL;
    case op::discard:
    case op::write_zeroes:
      return in_range(r.offset, r.length, g) && r.buf == nullptr && r.iovcnt == 0 ? 0 : -EINVAL;
  }
  return -EINVAL;
}

}  // namespace tandem::dp::backend
