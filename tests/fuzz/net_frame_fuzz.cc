// SPDX-License-Identifier: Apache-2.0
// Fuzz target for dataplane/net: parse_frame on any bytes, plus round-trip and checksum oracles.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "dataplane/net/headers.h"
#include "tests/oracle/checksum.h"

namespace tandem::fuzz {
namespace {

using namespace tandem::dp;

[[noreturn]] void fail(const char* what, size_t size) {
  std::fprintf(stderr, "fuzz_net_frame: invariant broken: %s (input of %zu bytes)\n", what, size);
  std::abort();
}

#define TANDEM_FUZZ_CHECK(cond, size) \
  do {                                \
    if (!(cond)) fail(#cond, size);   \
  } while (0)

uint16_t reference_checksum(std::span<const uint8_t> b) {
  return oracle::rfc1071_checksum(b);
}

void check_udp(const parse_result& r, std::span<const uint8_t> in) {
  const size_t n = in.size();
  const udp_datagram& d = r.udp;
  // The payload lies inside the input, after the headers, and within the UDP length.
  TANDEM_FUZZ_CHECK(d.payload.data() >= in.data(), n);
  TANDEM_FUZZ_CHECK(d.payload.data() + d.payload.size() <= in.data() + n, n);
  TANDEM_FUZZ_CHECK(static_cast<size_t>(d.payload.data() - in.data()) ==
                        wire::eth::len + d.ip_header_len + wire::udp::len,
                    n);
  TANDEM_FUZZ_CHECK(d.ip_header_len >= 20 && d.ip_header_len <= 60 && d.ip_header_len % 4 == 0, n);
  TANDEM_FUZZ_CHECK(d.payload.size() <= udp_max_payload, n);
  TANDEM_FUZZ_CHECK(d.src.mac == r.eth_src && d.dst.mac == r.eth_dst, n);

  // Rebuild from the parsed fields into an exactly sized buffer and parse again.
  udp_build_options opts;
  opts.udp_checksum = d.has_udp_checksum ? udp_checksum_mode::full : udp_checksum_mode::none;
  opts.dont_fragment = d.dont_fragment;
  opts.ttl = d.ttl;
  opts.tos = d.tos;
  opts.ip_id = d.ip_id;
  std::vector<uint8_t> out(udp_frame_overhead + d.payload.size());
  TANDEM_FUZZ_CHECK(build_udp_frame(std::span<uint8_t>(out).first(out.size() - 1), d.src, d.dst,
                                    d.payload, opts) == -ENOSPC,
                    n);
  TANDEM_FUZZ_CHECK(
      build_udp_frame(out, d.src, d.dst, d.payload, opts) == static_cast<int>(out.size()), n);
  const parse_result again = parse_frame(out);
  TANDEM_FUZZ_CHECK(again.is_udp(), n);
  const udp_datagram& e = again.udp;
  TANDEM_FUZZ_CHECK(e.src == d.src && e.dst == d.dst, n);
  TANDEM_FUZZ_CHECK(e.ttl == d.ttl && e.tos == d.tos && e.ip_id == d.ip_id, n);
  TANDEM_FUZZ_CHECK(e.dont_fragment == d.dont_fragment, n);
  TANDEM_FUZZ_CHECK(e.has_udp_checksum == d.has_udp_checksum, n);
  TANDEM_FUZZ_CHECK(e.ip_header_len == wire::ipv4::min_len, n);
  TANDEM_FUZZ_CHECK(e.payload.size() == d.payload.size(), n);
  TANDEM_FUZZ_CHECK(std::equal(e.payload.begin(), e.payload.end(), d.payload.begin()), n);
}

void check_arp(const parse_result& r, std::span<const uint8_t> in) {
  const size_t n = in.size();
  TANDEM_FUZZ_CHECK(n >= arp_frame_len, n);
  TANDEM_FUZZ_CHECK(r.arp.op == arp_op::request || r.arp.op == arp_op::reply, n);
  for (const bool pad : {false, true}) {
    std::vector<uint8_t> out(pad ? wire::eth::min_frame_len : arp_frame_len);
    TANDEM_FUZZ_CHECK(build_arp(out, r.eth_dst, r.arp, pad) == static_cast<int>(out.size()), n);
    const parse_result again = parse_frame(out);
    TANDEM_FUZZ_CHECK(again.is_arp(), n);
    TANDEM_FUZZ_CHECK(again.arp == r.arp, n);
    TANDEM_FUZZ_CHECK(again.eth_dst == r.eth_dst && again.eth_src == r.arp.sender_mac, n);
  }
  if (r.arp.op == arp_op::request) {
    std::vector<uint8_t> out(wire::eth::min_frame_len);
    const mac_addr me{{0x02, 0, 0, 0, 0, 0x99}};
    TANDEM_FUZZ_CHECK(build_arp_reply(out, me, r.arp) == static_cast<int>(out.size()), n);
    const parse_result rep = parse_frame(out);
    TANDEM_FUZZ_CHECK(rep.is_arp() && rep.arp.op == arp_op::reply, n);
    TANDEM_FUZZ_CHECK(rep.arp.sender_ip == r.arp.target_ip && rep.arp.target_ip == r.arp.sender_ip,
                      n);
    TANDEM_FUZZ_CHECK(rep.arp.target_mac == r.arp.sender_mac && rep.eth_dst == r.arp.sender_mac, n);
  }
}

// Makes the IPv4 header checksum and a nonzero UDP checksum correct where the lengths allow, so
// that mutated length, option and flag fields get past the checksums to the checks behind them.
void repair_checksums(std::vector<uint8_t>& f) {
  namespace ip = wire::ipv4;
  if (f.size() < wire::eth::len + ip::min_len || load_be16(&f[wire::eth::type]) != 0x0800) return;
  uint8_t* const p = f.data() + wire::eth::len;
  const size_t avail = f.size() - wire::eth::len;
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  if (ihl < ip::min_len || ihl > avail) return;
  store_be16(p + ip::checksum, 0);
  store_be16(p + ip::checksum, ipv4_checksum({p, ihl}));
  const size_t total = load_be16(p + ip::total_length);
  if (p[ip::protocol] != ip::proto_udp || total < ihl + wire::udp::len || total > avail) return;
  uint8_t* const u = p + ihl;
  const uint16_t udp_len = load_be16(u + wire::udp::length);
  if (udp_len < wire::udp::len || udp_len > total - ihl) return;
  if (load_be16(u + wire::udp::checksum) == 0) return;
  store_be16(u + wire::udp::checksum, 0);
  const uint16_t c =
      udp4_checksum(ipv4_addr{load_be32(p + ip::src)}, ipv4_addr{load_be32(p + ip::dst)}, udp_len,
                    {u, wire::udp::len}, {u + wire::udp::len, udp_len - wire::udp::len});
  store_be16(u + wire::udp::checksum, udp_checksum_for_wire(c));
}

parse_result check_frame(std::span<const uint8_t> in) {
  const size_t size = in.size();
  const parse_result r = parse_frame(in);
  TANDEM_FUZZ_CHECK((r.kind == frame_kind::drop) == (r.reason != drop_reason::none), size);
  TANDEM_FUZZ_CHECK(static_cast<size_t>(r.reason) < drop_reason_count, size);
  TANDEM_FUZZ_CHECK(to_string(r.reason) != "unknown" && to_string(r.kind) != "unknown", size);
  if (size < wire::eth::len) TANDEM_FUZZ_CHECK(r.reason == drop_reason::too_short, size);
  switch (r.kind) {
    case frame_kind::udp:
      check_udp(r, in);
      break;
    case frame_kind::arp:
      check_arp(r, in);
      break;
    case frame_kind::drop:
      break;
  }
  return r;
}

// Two parses of frames that differ only in (repaired) checksums agree.
bool same_fields(const parse_result& a, const parse_result& b) {
  if (a.kind != b.kind || a.eth_dst != b.eth_dst || a.eth_src != b.eth_src) return false;
  if (a.is_arp()) return a.arp == b.arp;
  if (!a.is_udp()) return true;
  const udp_datagram& x = a.udp;
  const udp_datagram& y = b.udp;
  return x.src == y.src && x.dst == y.dst && x.ttl == y.ttl && x.tos == y.tos &&
         x.ip_id == y.ip_id && x.dont_fragment == y.dont_fragment &&
         x.has_udp_checksum == y.has_udp_checksum && x.ip_header_len == y.ip_header_len &&
         x.payload.size() == y.payload.size() &&
         std::equal(x.payload.begin(), x.payload.end(), y.payload.begin());
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::dp;
  using namespace tandem::fuzz;
  const std::span<const uint8_t> in(data, size);
  const parse_result r = check_frame(in);
  // The same bytes with their checksums repaired, in an exactly sized copy: reaches the checks
  // behind the checksums, and must not change the verdict on a frame that already parsed.
  std::vector<uint8_t> repaired(in.begin(), in.end());
  repair_checksums(repaired);
  const parse_result again = check_frame(repaired);
  if (!r.is_drop()) TANDEM_FUZZ_CHECK(same_fields(r, again), size);

  // Skipping the checksum checks (the NIC did them) only ever turns checksum drops into passes.
  const parse_result lax =
      parse_frame(in, {.verify_ip_checksum = false, .verify_udp_checksum = false});
  TANDEM_FUZZ_CHECK(lax.reason != drop_reason::bad_ip_checksum, size);
  TANDEM_FUZZ_CHECK(lax.reason != drop_reason::bad_udp_checksum, size);
  if (r.is_drop() && r.reason != drop_reason::bad_ip_checksum &&
      r.reason != drop_reason::bad_udp_checksum) {
    TANDEM_FUZZ_CHECK(lax.reason == r.reason, size);
  } else {
    TANDEM_FUZZ_CHECK(r.is_drop() || same_fields(r, lax), size);
  }

  // Differential check of the checksum against the bytewise oracle, at an odd address too.
  TANDEM_FUZZ_CHECK(ipv4_checksum(in) == reference_checksum(in), size);
  if (size > 1) {
    TANDEM_FUZZ_CHECK(ipv4_checksum(in.subspan(1)) == reference_checksum(in.subspan(1)), size);
    const size_t cut = (size / 2) & ~size_t{1};
    const uint32_t split = checksum_add(in.subspan(cut), checksum_add(in.first(cut)));
    TANDEM_FUZZ_CHECK(checksum_finish(split) == reference_checksum(in), size);
  }
  return 0;
}
