// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the partition prober's ICMP reply matcher (control/quorum/prober.h) on any
// bytes, as a raw or datagram socket would deliver them.
//
// The first input byte picks the socket's view (bit 0: IPv6, bit 1: an IPv4 header first, bit 2:
// match the identifier), the next four the identifier and sequence sent, the rest is the packet.
// Invariants: never reads past the packet (ASan); a `reply` really is an echo reply of the right
// family carrying the sequence sent; a request made by make_echo_request is never taken for its
// own reply.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "control/quorum/prober.h"

namespace {

using namespace tandem::ctl::quorum;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_icmp_match: invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  icmp_echo sent;
  sent.v6 = (data[0] & 1) != 0;
  sent.ip_header = !sent.v6 && (data[0] & 2) != 0;
  sent.match_id = (data[0] & 4) != 0;
  sent.id = static_cast<uint16_t>(data[1] | (data[2] << 8));
  sent.seq = static_cast<uint16_t>(data[3] | (data[4] << 8));
  const std::span<const uint8_t> packet(data + 5, size - 5);
  // A copy of exactly the packet's size, so ASan sees any read past it.
  const std::vector<uint8_t> copy(packet.begin(), packet.end());
  const icmp_answer a = match_icmp(copy, sent);
  if (a.match == icmp_match::reply) {
    size_t off = 0;
    if (sent.ip_header) {
      if (copy.empty()) fail("reply without a header");
      off = static_cast<size_t>(copy[0] & 0x0f) * 4;
    }
    if (copy.size() < off + 8) fail("a reply shorter than an ICMP echo header");
    const uint8_t want = sent.v6 ? 129 : 0;
    if (copy[off] != want) fail("a reply that is not an echo reply");
    const uint16_t seq = static_cast<uint16_t>((copy[off + 6] << 8) | copy[off + 7]);
    if (seq != sent.seq) fail("a reply with another sequence");
  }
  // Our own request, seen on the socket (loopback delivers it), is never a reply.
  const std::vector<uint8_t> req =
      make_echo_request(sent.v6, sent.id, sent.seq, std::span<const uint8_t>(copy));
  icmp_echo plain = sent;
  plain.ip_header = false;
  if (match_icmp(req, plain).match == icmp_match::reply) fail("our own request taken as a reply");
  return 0;
}
