// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the kernel shim's descriptor parser (dataplane/frontend/shim_ring.h) on any
// descriptors and device geometry, alone and through a submission ring.
//
// Input: byte 0 picks the logical block size (bits 0-1) and the granted features (bits 4-7),
// byte 1 the queue depth (a power of two up to 1024), bytes 2-3 max_io_bytes (4 KiB units),
// bytes 4-11 the device size, byte 12 how many descriptors the kernel claims to have published
// (sq_prod, may exceed the ring), then 32-byte descriptors.
// Invariants: parse_descriptor agrees with a plain oracle written from the ABI's rules; an
// accepted descriptor addresses only the device and its data slot only the data area; peek()
// never reads outside the ring (the region is an exactly sized heap block: ASan) and returns
// what parse_descriptor says about each entry, in ring order.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "dataplane/frontend/shim_ring.h"

namespace {

using namespace tandem::dp::frontend;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_shim_descriptor: invariant broken: %s\n", what);
  std::abort();
}

// The ABI's rules, restated with 128-bit arithmetic and no shared code.
bool oracle_accepts(const tandem_blk_sqe& s, const shim_geometry& g) {
  if (s.reserved0 || s.reserved1 || (s.flags & ~1u) || s.tag >= g.queue_depth) return false;
  const bool fua = s.flags & 1u;
  const unsigned __int128 end = static_cast<unsigned __int128>(s.offset) + s.length;
  const bool aligned = s.offset % g.logical_bs == 0 && s.length % g.logical_bs == 0;
  const bool in_range = s.length > 0 && aligned && end <= g.dev_size;
  switch (s.op) {
    case 0:  // read
      return !fua && in_range && s.length <= g.max_io_bytes;
    case 1:  // write
      return (!fua || (g.features & 2)) && in_range && s.length <= g.max_io_bytes;
    case 2:  // flush
      return (g.features & 1) && !fua && s.offset == 0 && s.length == 0;
    case 3:  // discard
      return (g.features & 4) && !fua && in_range && s.length <= (1u << 30);
    case 4:  // write zeroes
      return (g.features & 8) && !fua && in_range && s.length <= (1u << 30);
    default:
      return false;
  }
}

void check_one(const tandem_blk_sqe& s, const shim_geometry& g, const shim_request& r) {
  if (r.tag != s.tag || r.seq != s.seq || r.offset != s.offset || r.length != s.length) {
    fail("fields not echoed");
  }
  const bool ok = r.error == 0;
  if (!ok && r.error != -EINVAL) fail("error other than -EINVAL");
  if (ok != oracle_accepts(s, g)) fail(ok ? "accepted what the oracle rejects" : "over-strict");
  if (!ok) return;
  if (static_cast<uint8_t>(r.op) != s.op) fail("op changed");
  if (r.fua && r.op != shim_op::write) fail("FUA on a non-write");
  if ((r.op == shim_op::read || r.op == shim_op::write) && r.length > g.max_io_bytes) {
    fail("I/O longer than its data slot");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 13) return 0;
  shim_geometry g;
  g.logical_bs = 512u << (data[0] & 3);
  g.features = data[0] >> 4;
  g.queue_depth = 1u << (data[1] % 11);
  g.max_io_bytes = ((static_cast<uint32_t>(data[2]) | (data[3] & 0x0f) << 8) % 256 + 1) * 4096;
  uint64_t dev_size;
  std::memcpy(&dev_size, data + 4, sizeof dev_size);
  if (data[4] & 1) dev_size &= (uint64_t{1} << 40) - 1;  // often a plausible size
  g.dev_size = dev_size / g.logical_bs * g.logical_bs;
  const uint32_t published = data[12];
  data += 13;
  size -= 13;

  std::vector<tandem_blk_sqe> sqes(size / sizeof(tandem_blk_sqe));
  if (!sqes.empty()) std::memcpy(sqes.data(), data, sqes.size() * sizeof(tandem_blk_sqe));
  for (const auto& s : sqes)
    check_one(s, g, parse_descriptor(s, g));

  // Through a ring whose entries hold the descriptors (zeros where the input ran out).
  tandem_blk_layout l{};
  l.header_size = sizeof(tandem_blk_ring_header);
  l.sq_offset = l.header_size;
  l.sq_entries = l.cq_entries = g.queue_depth;
  l.cq_offset = l.sq_offset + g.queue_depth * static_cast<uint32_t>(sizeof(tandem_blk_sqe));
  l.data_offset = l.cq_offset + g.queue_depth * sizeof(tandem_blk_cqe);
  l.data_slot_size = 4096;  // slot addresses are checked, not the memory behind them
  const size_t region = l.data_offset;
  std::vector<std::byte> mem(region);
  auto* hdr = reinterpret_cast<tandem_blk_ring_header*>(mem.data());
  auto* ring = reinterpret_cast<tandem_blk_sqe*>(mem.data() + l.sq_offset);
  for (uint32_t i = 0; i < g.queue_depth && i < sqes.size(); ++i)
    ring[i] = sqes[i];
  hdr->sq_prod = published;
  shim_queue q({mem.data(), region}, l, g, 0, -1, -1);
  shim_request out[64];
  uint32_t seen = 0;
  for (int round = 0; round < 40; ++round) {
    unsigned n = q.peek(out);
    if (n > std::size(out)) fail("peek overran its output");
    for (unsigned i = 0; i < n; ++i) {
      const auto& s = ring[(seen + i) & (g.queue_depth - 1)];
      check_one(s, g, out[i]);
    }
    seen += n;
    if (n == 0) break;
  }
  // A kernel that claims more than a ring's worth only gets its entries re-read, never more.
  if (seen > published) fail("peek took descriptors never published");
  if (published <= g.queue_depth && (seen != published || q.pending())) {
    fail("peek left published descriptors behind");
  }
  return 0;
}
