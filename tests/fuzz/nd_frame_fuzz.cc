// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the IPv6 DAD claimant parser (netlink/nd_frame.h) on any frame a packet
// socket could deliver to nl::nd_probe, and the DAD solicitation builder it answers.
//
// Input: bytes 0..15 are the target address, 16..21 our own MAC, the rest is the frame.
// Invariants:
// - never reads past the frame (ASan: the frame is copied into an exactly sized vector);
// - a claim comes only from a frame that passes every check: at least 78 bytes, ethertype IPv6,
//   an Ethernet source that is neither ours nor a group nor zero, version 6, next header ICMPv6,
//   hop limit 255, the payload inside the frame, code 0, a checksum that verifies over the
//   payload and the target field equal to the target. A solicitation is claimed only from ::,
//   for the Ethernet source; an advertisement for the Ethernet source or for the MAC of a target
//   link-layer address option on an option boundary. So our own MAC can come back only from such
//   an option (another host's advertisement naming it: the parser reports what the option says),
//   never as the Ethernet source;
// - Ethernet padding is ignored: a claimed frame trimmed to its payload, or padded further, is
//   claimed for the same MAC;
// - round trip, for every input's target and MAC: dad_solicitation(own, target) goes to
//   solicited_node_mac(target); it is never claimed when parsed with `own` as ours (our own probe
//   looped back); parsed by another host it is claimed for `own` exactly when `own` is a unicast,
//   non-zero MAC; it is not claimed for another target; and no single bit flip from the IPv6
//   source address on gets it claimed (the checksum covers all of it).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "netlink/nd_frame.h"

namespace {

using namespace tandem::nl::nd;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_nd_frame: invariant broken: %s\n", what);
  std::abort();
}

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

mac mac_at(const uint8_t* p) {
  mac m;
  std::memcpy(m.data(), p, m.size());
  return m;
}

// Everything a claimed frame must satisfy; `r` is the claim.
void check_claim(const std::vector<uint8_t>& f, const ip6& target, const mac& own, const mac& r) {
  if (f.size() < dad_frame_len) fail("a claim from a frame shorter than an ND message");
  if (be16(&f[12]) != ethertype_ipv6) fail("a claim from a frame that is not IPv6");
  const mac eth_src = mac_at(&f[6]);
  if (eth_src == own) fail("a claim from our own frame");
  if ((eth_src[0] & 1) != 0) fail("a claim from a group Ethernet source");
  if (eth_src == mac{}) fail("a claim from a zero Ethernet source");
  const uint8_t* ip = &f[eth_len];
  if ((ip[0] >> 4) != 6 || ip[6] != 58 || ip[7] != hop_limit)
    fail("a claim from a bad IPv6 header");
  const size_t payload = be16(&ip[4]);
  if (payload < nd_len || eth_len + ip6_len + payload > f.size())
    fail("a claim with a payload length outside the frame");
  const std::span<const uint8_t> icmp(ip + ip6_len, payload);
  if (icmp[1] != 0) fail("a claim with a non-zero code");
  if (icmp6_checksum(std::span<const uint8_t, 16>(ip + 8, 16),
                     std::span<const uint8_t, 16>(ip + 24, 16), icmp) != 0)
    fail("a claim with a bad checksum");
  if (std::memcmp(&icmp[8], target.data(), 16) != 0) fail("a claim for another target");
  if (icmp[0] == 135) {
    if (!std::all_of(ip + 8, ip + 24, [](uint8_t b) { return b == 0; }))
      fail("a solicitation from a real address taken as a claim");
    if (r != eth_src) fail("a solicitation claimed for another MAC than its source");
    return;
  }
  if (icmp[0] != 136) fail("a claim from a message that is neither NS nor NA");
  if (r == eth_src) return;
  // Options are whole multiples of 8 bytes, so a target link-layer address option starts on an
  // 8-byte boundary of the message.
  for (size_t k = nd_len; k + 8 <= icmp.size(); k += 8) {
    if (icmp[k] == 2 && icmp[k + 1] != 0 && mac_at(&icmp[k + 2]) == r) return;
  }
  fail(r == own ? "our own MAC claimed, not from a target link-layer address option"
                : "an NA claimed for a MAC that is neither its source nor in an option");
}

void check_round_trip(const ip6& target, const mac& own, size_t flip) {
  const auto dad = dad_solicitation(own, target);
  const mac dst = mac_at(&dad[0]);
  if (dst != solicited_node_mac(target)) fail("DAD frame not sent to the solicited-node group");
  if (claimant(dad, target, own)) fail("our own DAD solicitation claimed");
  mac other = own;
  other[5] ^= 1;
  const bool valid_source = (own[0] & 1) == 0 && own != mac{};
  const auto r = claimant(dad, target, other);
  if (valid_source && r != own) fail("another host's DAD solicitation not claimed for its MAC");
  if (!valid_source && r) fail("a DAD solicitation from a group or zero MAC claimed");
  ip6 elsewhere = target;
  elsewhere[0] ^= 0x80;
  if (claimant(dad, elsewhere, other)) fail("a DAD solicitation claimed for another target");
  // From the IPv6 source address (frame byte 22) to the end, everything is checksummed.
  constexpr size_t from = eth_len + 8;
  auto broken = dad;
  const size_t bit = flip % ((dad_frame_len - from) * 8);
  broken[from + bit / 8] ^= static_cast<uint8_t>(1U << (bit % 8));
  if (claimant(broken, target, other)) fail("a DAD solicitation with a flipped bit claimed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 22) return 0;
  ip6 target;
  mac own;
  std::memcpy(target.data(), data, 16);
  std::memcpy(own.data(), data + 16, 6);
  // A copy of exactly the frame's size, so ASan sees any read past it.
  const std::vector<uint8_t> frame(data + 22, data + size);
  if (const std::optional<mac> r = claimant(frame, target, own)) {
    check_claim(frame, target, own, *r);
    const size_t exact = eth_len + ip6_len + be16(&frame[eth_len + 4]);
    std::vector<uint8_t> trimmed(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(exact));
    if (claimant(trimmed, target, own) != r)
      fail("trimming the Ethernet padding changed the claim");
    trimmed.resize(exact + 17, 0xa5);
    if (claimant(trimmed, target, own) != r) fail("more Ethernet padding changed the claim");
  }
  check_round_trip(target, own, (size_t{data[0]} << 8 | data[21]) ^ size);
  return 0;
}
