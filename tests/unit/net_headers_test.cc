// SPDX-License-Identifier: Apache-2.0
// Tests for dataplane/net/headers.h: builders, round trips, every drop reason, truncation.
#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/net/headers.h"

namespace tandem::dp {
namespace {

using bytes = std::vector<uint8_t>;

bytes from_hex(std::string_view hex) {
  bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

bytes text(std::string_view s) {
  return bytes(s.begin(), s.end());
}

const udp_endpoint alice{*mac_addr::parse("02:00:00:00:00:01"), *ipv4_addr::parse("10.0.0.1"),
                         4791};
const udp_endpoint bob{*mac_addr::parse("02:00:00:00:00:02"), *ipv4_addr::parse("10.0.0.2"), 7000};

constexpr size_t ip_off = wire::eth::len;
constexpr size_t udp_off = ip_off + wire::ipv4::min_len;

bytes udp_frame(const bytes& payload, const udp_build_options& opts = {}) {
  bytes out(udp_frame_overhead + payload.size() + 64);
  const int n = build_udp_frame(out, alice, bob, payload, opts);
  EXPECT_GT(n, 0);
  out.resize(static_cast<size_t>(n > 0 ? n : 0));
  return out;
}

// Recomputes the IPv4 header checksum after a test edits the header.
void fix_ip_checksum(bytes& f) {
  const size_t ihl = static_cast<size_t>(f[ip_off] & 0x0f) * 4;
  store_be16(&f[ip_off + wire::ipv4::checksum], 0);
  store_be16(&f[ip_off + wire::ipv4::checksum],
             ipv4_checksum(std::span<const uint8_t>(&f[ip_off], ihl)));
}

// Inserts `opts` (a multiple of 4 bytes) as IPv4 options and fixes IHL, length and checksum.
bytes with_ip_options(bytes f, const bytes& opts) {
  f.insert(f.begin() + udp_off, opts.begin(), opts.end());
  f[ip_off] = static_cast<uint8_t>(0x40 | ((wire::ipv4::min_len + opts.size()) / 4));
  store_be16(&f[ip_off + wire::ipv4::total_length],
             static_cast<uint16_t>(load_be16(&f[ip_off + wire::ipv4::total_length]) + opts.size()));
  fix_ip_checksum(f);
  return f;
}

drop_reason reason_of(const bytes& f) {
  const parse_result r = parse_frame(f);
  EXPECT_EQ(r.kind == frame_kind::drop, r.reason != drop_reason::none);
  return r.reason;
}

bool inside(std::span<const uint8_t> inner, const bytes& outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

TEST(build_udp_frame, matches_golden_bytes) {
  // Computed independently (Python): ID 0x1234, DF, TTL 64, UDP checksum 0x266c.
  const bytes golden = from_hex(
      "020000000002020000000001080045000029123440004011148e0a0000010a00000212b71b580015266c"
      "68656c6c6f2c2074616e64656d");
  udp_build_options opts;
  opts.ip_id = 0x1234;
  EXPECT_EQ(udp_frame(text("hello, tandem"), opts), golden);
}

TEST(build_udp_frame, round_trips_every_size_class) {
  for (const size_t len : {size_t{0}, size_t{1}, size_t{17}, size_t{64}, size_t{1024}, size_t{1472},
                           size_t{9000}, udp_max_payload}) {
    bytes payload(len);
    for (size_t i = 0; i < len; ++i)
      payload[i] = static_cast<uint8_t>(i * 31 + len);
    udp_build_options opts;
    opts.ttl = 7;
    opts.tos = 0xb8;
    opts.ip_id = static_cast<uint16_t>(len);
    const bytes f = udp_frame(payload, opts);
    ASSERT_EQ(f.size(), udp_frame_overhead + len);
    const parse_result r = parse_frame(f);
    ASSERT_TRUE(r.is_udp()) << len << ": " << to_string(r.reason);
    EXPECT_EQ(r.udp.src, alice);
    EXPECT_EQ(r.udp.dst, bob);
    EXPECT_EQ(r.eth_src, alice.mac);
    EXPECT_EQ(r.eth_dst, bob.mac);
    EXPECT_EQ(r.ethertype, wire::eth::type_ipv4);
    EXPECT_EQ(bytes(r.udp.payload.begin(), r.udp.payload.end()), payload);
    EXPECT_TRUE(inside(r.udp.payload, f));
    EXPECT_EQ(r.udp.payload.data(), f.data() + udp_frame_overhead);
    EXPECT_EQ(r.udp.ttl, 7);
    EXPECT_EQ(r.udp.tos, 0xb8);
    EXPECT_EQ(r.udp.ip_id, static_cast<uint16_t>(len));
    EXPECT_TRUE(r.udp.dont_fragment);
    EXPECT_TRUE(r.udp.has_udp_checksum);
    EXPECT_EQ(r.udp.ip_header_len, 20);
  }
}

TEST(build_udp_frame, reports_short_buffers_and_oversized_payloads) {
  const bytes payload(100, 0xab);
  bytes out(udp_frame_overhead + payload.size());
  EXPECT_EQ(build_udp_frame(std::span<uint8_t>(out).first(out.size() - 1), alice, bob, payload),
            -ENOSPC);
  EXPECT_EQ(build_udp_frame(std::span<uint8_t>(), alice, bob, payload), -ENOSPC);
  EXPECT_EQ(build_udp_frame(out, alice, bob, payload), static_cast<int>(out.size()));
  const bytes huge(udp_max_payload + 1);
  bytes big(udp_frame_overhead + huge.size());
  EXPECT_EQ(build_udp_frame(big, alice, bob, huge), -EMSGSIZE);
  EXPECT_EQ(
      build_udp_headers(std::span<uint8_t>(out).first(udp_frame_overhead - 1), alice, bob, payload),
      -ENOSPC);
}

TEST(build_udp_frame, pads_to_the_minimum_frame_on_request) {
  udp_build_options opts;
  opts.pad_to_min_frame = true;
  bytes out(128, 0xee);
  const int n = build_udp_frame(out, alice, bob, text("hi"), opts);
  ASSERT_EQ(n, 60);
  for (size_t i = udp_frame_overhead + 2; i < 60; ++i)
    EXPECT_EQ(out[i], 0) << i;
  EXPECT_EQ(out[60], 0xee) << "nothing written past the frame";
  out.resize(60);
  const parse_result r = parse_frame(out);
  ASSERT_TRUE(r.is_udp());
  EXPECT_EQ(bytes(r.udp.payload.begin(), r.udp.payload.end()), text("hi"));
  // Padding needs room: a 59-byte buffer is too small even though the data fits.
  bytes small(59);
  EXPECT_EQ(build_udp_frame(small, alice, bob, text("hi"), opts), -ENOSPC);
}

TEST(build_udp_frame, builds_in_place) {
  bytes out(udp_frame_overhead + 5);
  const bytes payload = text("inner");
  std::copy(payload.begin(), payload.end(), out.begin() + udp_frame_overhead);
  ASSERT_EQ(
      build_udp_frame(out, alice, bob, std::span<const uint8_t>(out).subspan(udp_frame_overhead)),
      static_cast<int>(out.size()));
  EXPECT_EQ(out, udp_frame(payload));
}

TEST(build_udp_headers, leaves_the_payload_elsewhere) {
  const bytes payload = text("scatter-gather");
  bytes hdr(udp_frame_overhead);
  ASSERT_EQ(build_udp_headers(hdr, alice, bob, payload), static_cast<int>(udp_frame_overhead));
  bytes joined = hdr;
  joined.insert(joined.end(), payload.begin(), payload.end());
  EXPECT_EQ(joined, udp_frame(payload));
}

TEST(build_udp_frame, can_omit_the_udp_checksum) {
  udp_build_options opts;
  opts.udp_checksum = udp_checksum_mode::none;
  opts.dont_fragment = false;
  bytes f = udp_frame(text("no checksum"), opts);
  EXPECT_EQ(load_be16(&f[udp_off + wire::udp::checksum]), 0);
  EXPECT_EQ(load_be16(&f[ip_off + wire::ipv4::frag]), 0);
  f.back() ^= 0xff;  // corruption goes unnoticed without a checksum, as the RFC allows
  const parse_result r = parse_frame(f);
  ASSERT_TRUE(r.is_udp());
  EXPECT_FALSE(r.udp.has_udp_checksum);
  EXPECT_FALSE(r.udp.dont_fragment);
}

TEST(build_udp_frame, sends_a_zero_checksum_as_all_ones) {
  // Make the payload's last word cancel the rest of the sum so the computed checksum is 0.
  bytes payload = text("make it zero");
  payload.push_back(0);
  payload.push_back(0);
  const bytes f0 = udp_frame(payload);
  const uint16_t c = load_be16(&f0[udp_off + wire::udp::checksum]);
  store_be16(&payload[payload.size() - 2], c);
  const bytes f = udp_frame(payload);
  EXPECT_EQ(load_be16(&f[udp_off + wire::udp::checksum]), 0xffff);
  EXPECT_TRUE(parse_frame(f).is_udp());
}

TEST(build_udp_frame, leaves_checksums_to_an_offloading_nic) {
  udp_build_options opts;
  opts.ip_checksum = false;
  opts.udp_checksum = udp_checksum_mode::pseudo_header;
  bytes f = udp_frame(text("offloaded"), opts);
  EXPECT_EQ(load_be16(&f[ip_off + wire::ipv4::checksum]), 0);
  // The UDP field holds the folded pseudo-header sum: 10.0.0.1, 10.0.0.2, 17, length 17.
  const uint16_t udp_len = wire::udp::len + 9;
  EXPECT_EQ(load_be16(&f[udp_off + wire::udp::checksum]),
            0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + udp_len);
  EXPECT_EQ(parse_frame(f).reason, drop_reason::bad_ip_checksum);
  EXPECT_EQ(parse_frame(f, {.verify_ip_checksum = false}).reason, drop_reason::bad_udp_checksum);
  // Do what the NIC does: sum the UDP segment (the field seeds the pseudo-header), complement.
  fix_ip_checksum(f);
  const std::span<const uint8_t> segment(&f[udp_off], udp_len);
  const uint16_t c = checksum_finish(checksum_add(segment));
  store_be16(&f[udp_off + wire::udp::checksum], udp_checksum_for_wire(c));
  EXPECT_EQ(f, udp_frame(text("offloaded")));
}

TEST(parse_frame, skips_checksums_the_nic_verified) {
  bytes f = udp_frame(text("verified by the NIC"));
  f[ip_off + wire::ipv4::checksum] ^= 0x01;
  f.back() ^= 0x01;
  EXPECT_EQ(parse_frame(f).reason, drop_reason::bad_ip_checksum);
  EXPECT_EQ(parse_frame(f, {.verify_ip_checksum = false}).reason, drop_reason::bad_udp_checksum);
  EXPECT_EQ(parse_frame(f, {.verify_udp_checksum = false}).reason, drop_reason::bad_ip_checksum);
  const parse_result r =
      parse_frame(f, {.verify_ip_checksum = false, .verify_udp_checksum = false});
  ASSERT_TRUE(r.is_udp());
  EXPECT_TRUE(r.udp.has_udp_checksum);
}

TEST(build_arp, request_and_reply_round_trip) {
  bytes out(64, 0xee);
  ASSERT_EQ(build_arp_request(out, alice.mac, alice.ip, bob.ip), 60);
  EXPECT_EQ(bytes(out.begin(), out.begin() + 42),
            from_hex("ffffffffffff020000000001080600010800060400010200000000010a0000010000000000"
                     "000a000002"));
  for (size_t i = 42; i < 60; ++i)
    EXPECT_EQ(out[i], 0);
  EXPECT_EQ(out[60], 0xee);
  out.resize(60);
  const parse_result req = parse_frame(out);
  ASSERT_TRUE(req.is_arp()) << to_string(req.reason);
  EXPECT_EQ(req.eth_dst, mac_addr::broadcast());
  EXPECT_EQ(req.eth_src, alice.mac);
  EXPECT_EQ(req.ethertype, wire::eth::type_arp);
  EXPECT_EQ(req.arp, (arp_packet{arp_op::request, alice.mac, alice.ip, mac_addr{}, bob.ip}));

  bytes reply(60);
  ASSERT_EQ(build_arp_reply(reply, bob.mac, req.arp), 60);
  const parse_result rep = parse_frame(reply);
  ASSERT_TRUE(rep.is_arp());
  EXPECT_EQ(rep.eth_dst, alice.mac);
  EXPECT_EQ(rep.eth_src, bob.mac);
  EXPECT_EQ(rep.arp, (arp_packet{arp_op::reply, bob.mac, bob.ip, alice.mac, alice.ip}));
}

TEST(build_arp, unpadded_and_short_buffers) {
  bytes out(arp_frame_len);
  const arp_packet a{arp_op::reply, alice.mac, alice.ip, bob.mac, bob.ip};
  EXPECT_EQ(build_arp(out, bob.mac, a, false), static_cast<int>(arp_frame_len));
  EXPECT_EQ(parse_frame(out).arp, a);
  EXPECT_EQ(build_arp(out, bob.mac, a, true), -ENOSPC);
  EXPECT_EQ(build_arp(std::span<uint8_t>(out).first(41), bob.mac, a, false), -ENOSPC);
  EXPECT_EQ(build_arp_request(std::span<uint8_t>(out).first(59), alice.mac, alice.ip, bob.ip),
            -ENOSPC);
}

TEST(parse_frame, skips_ip_options) {
  const bytes plain = udp_frame(text("with options"));
  for (const size_t n : {size_t{4}, size_t{8}, size_t{40}}) {
    bytes opts(n, 0x01);  // NOPs ...
    opts.back() = 0x00;   // ... then end of options
    const bytes f = with_ip_options(plain, opts);
    const parse_result r = parse_frame(f);
    ASSERT_TRUE(r.is_udp()) << n << ": " << to_string(r.reason);
    EXPECT_EQ(r.udp.ip_header_len, 20 + n);
    EXPECT_EQ(bytes(r.udp.payload.begin(), r.udp.payload.end()), text("with options"));
    EXPECT_EQ(r.udp.payload.data(), f.data() + udp_frame_overhead + n);
  }
}

TEST(parse_frame, ignores_ethernet_padding_and_bytes_past_the_udp_length) {
  bytes f = udp_frame(text("abc"));
  f.resize(f.size() + 20, 0x55);  // trailer past the IPv4 total length
  parse_result r = parse_frame(f);
  ASSERT_TRUE(r.is_udp());
  EXPECT_EQ(r.udp.payload.size(), 3U);

  // A UDP length shorter than the IP payload trims the datagram (the checksum covers only it).
  bytes g = udp_frame(text("abcdef"), udp_build_options{.udp_checksum = udp_checksum_mode::none});
  store_be16(&g[udp_off + wire::udp::length], wire::udp::len + 2);
  r = parse_frame(g);
  ASSERT_TRUE(r.is_udp());
  EXPECT_EQ(bytes(r.udp.payload.begin(), r.udp.payload.end()), text("ab"));
}

TEST(parse_frame, drop_too_short) {
  EXPECT_EQ(reason_of({}), drop_reason::too_short);
  EXPECT_EQ(reason_of(bytes(13)), drop_reason::too_short);
  const parse_result r = parse_frame(bytes(13));
  EXPECT_TRUE(r.is_drop());
  // An IPv4 ethertype with less than a 20-byte header, and a short ARP body.
  bytes f = udp_frame(text("x"));
  f.resize(ip_off + 19);
  EXPECT_EQ(reason_of(f), drop_reason::too_short);
  bytes a(arp_frame_len);
  ASSERT_EQ(build_arp(a, bob.mac, arp_packet{}, false), static_cast<int>(arp_frame_len));
  a.pop_back();
  EXPECT_EQ(reason_of(a), drop_reason::too_short);
}

TEST(parse_frame, drop_unsupported_ethertype) {
  for (const uint16_t type : {0x86dd, 0x8100, 0x88cc, 0x0000, 0xffff}) {
    bytes f = udp_frame(text("x"));
    store_be16(&f[wire::eth::type], type);
    const parse_result r = parse_frame(f);
    EXPECT_EQ(r.reason, drop_reason::unsupported_ethertype) << type;
    EXPECT_EQ(r.ethertype, type);
    EXPECT_EQ(r.eth_src, alice.mac);
  }
}

TEST(parse_frame, drop_bad_arp_format_and_op) {
  bytes good(60);
  ASSERT_EQ(build_arp_request(good, alice.mac, alice.ip, bob.ip), 60);
  const auto edit = [&](size_t off, uint8_t v) {
    bytes f = good;
    f[ip_off + off] = v;
    return reason_of(f);
  };
  EXPECT_EQ(edit(wire::arp::htype + 1, 6), drop_reason::bad_arp_format);
  EXPECT_EQ(edit(wire::arp::ptype, 0x86), drop_reason::bad_arp_format);
  EXPECT_EQ(edit(wire::arp::hlen, 8), drop_reason::bad_arp_format);
  EXPECT_EQ(edit(wire::arp::plen, 16), drop_reason::bad_arp_format);
  EXPECT_EQ(edit(wire::arp::oper + 1, 0), drop_reason::unsupported_arp_op);
  EXPECT_EQ(edit(wire::arp::oper + 1, 3), drop_reason::unsupported_arp_op);  // RARP
  EXPECT_EQ(edit(wire::arp::oper, 1), drop_reason::unsupported_arp_op);
  EXPECT_EQ(edit(wire::arp::oper + 1, 2), drop_reason::none);
}

TEST(parse_frame, drop_bad_ip_version) {
  for (const uint8_t vihl : {0x65, 0x05, 0x35, 0xf5}) {
    bytes f = udp_frame(text("x"));
    f[ip_off] = vihl;
    fix_ip_checksum(f);
    EXPECT_EQ(reason_of(f), drop_reason::bad_ip_version) << int{vihl};
  }
}

TEST(parse_frame, drop_bad_ip_header_length) {
  for (const uint8_t ihl : {0, 1, 4}) {
    bytes f = udp_frame(text("x"));
    f[ip_off] = static_cast<uint8_t>(0x40 | ihl);
    EXPECT_EQ(reason_of(f), drop_reason::bad_ip_header_length) << int{ihl};
  }
  // IHL 15 (60 bytes) in a frame whose IP part is only 29 bytes.
  bytes f = udp_frame(text("x"));
  f[ip_off] = 0x4f;
  EXPECT_EQ(reason_of(f), drop_reason::bad_ip_header_length);
}

TEST(parse_frame, drop_bad_ip_total_length) {
  const bytes good = udp_frame(text("payload"));
  const size_t ip_len = good.size() - ip_off;
  for (const size_t total : {size_t{0}, size_t{19}, ip_len + 1, size_t{65535}}) {
    bytes f = good;
    store_be16(&f[ip_off + wire::ipv4::total_length], static_cast<uint16_t>(total));
    fix_ip_checksum(f);
    EXPECT_EQ(reason_of(f), drop_reason::bad_ip_total_length) << total;
  }
}

TEST(parse_frame, drop_bad_ip_checksum) {
  const bytes good = udp_frame(text("payload"));
  for (size_t i = ip_off; i < udp_off; ++i) {
    if (i == ip_off || i == ip_off + 2 || i == ip_off + 3) continue;  // checked before the sum
    bytes f = good;
    f[i] ^= 0x10;
    const drop_reason why = reason_of(f);
    EXPECT_EQ(why, drop_reason::bad_ip_checksum) << "byte " << i << ": " << to_string(why);
  }
  // The same header with options: the sum covers the options too.
  bytes f = with_ip_options(good, bytes{1, 1, 1, 0});
  f[udp_off + 2] ^= 0x01;
  EXPECT_EQ(reason_of(f), drop_reason::bad_ip_checksum);
}

TEST(parse_frame, drop_ip_fragment) {
  const bytes good = udp_frame(text("fragment"));
  for (const uint16_t frag : {0x2000, 0x0001, 0x1fff, 0x2001, 0x6000, 0x4001}) {
    bytes f = good;
    store_be16(&f[ip_off + wire::ipv4::frag], frag);
    fix_ip_checksum(f);
    EXPECT_EQ(reason_of(f), drop_reason::ip_fragment) << frag;
  }
  for (const uint16_t frag : {0x0000, 0x4000, 0x8000}) {  // DF and the reserved bit are fine
    bytes f = good;
    store_be16(&f[ip_off + wire::ipv4::frag], frag);
    fix_ip_checksum(f);
    EXPECT_EQ(reason_of(f), drop_reason::none) << frag;
  }
}

TEST(parse_frame, drop_unsupported_ip_protocol) {
  for (const uint8_t proto : {1, 6, 47, 50, 132, 255}) {
    bytes f = udp_frame(text("x"));
    f[ip_off + wire::ipv4::protocol] = proto;
    fix_ip_checksum(f);
    EXPECT_EQ(reason_of(f), drop_reason::unsupported_ip_protocol) << int{proto};
  }
}

TEST(parse_frame, drop_bad_udp_length) {
  const bytes good =
      udp_frame(text("payload"), udp_build_options{.udp_checksum = udp_checksum_mode::none});
  const size_t l4_len = good.size() - udp_off;
  for (const uint16_t ulen : {0, 1, 7, static_cast<int>(l4_len + 1), 65535}) {
    bytes f = good;
    store_be16(&f[udp_off + wire::udp::length], ulen);
    EXPECT_EQ(reason_of(f), drop_reason::bad_udp_length) << ulen;
  }
  // An IPv4 datagram whose payload cannot hold a UDP header.
  bytes f = good;
  store_be16(&f[ip_off + wire::ipv4::total_length], wire::ipv4::min_len + 7);
  fix_ip_checksum(f);
  EXPECT_EQ(reason_of(f), drop_reason::bad_udp_length);
}

TEST(parse_frame, drop_bad_udp_checksum) {
  const bytes good = udp_frame(text("checksummed payload"));
  for (size_t i = udp_off; i < good.size(); ++i) {
    if (i == udp_off + wire::udp::length || i == udp_off + wire::udp::length + 1) continue;
    bytes f = good;
    f[i] ^= 0x04;
    EXPECT_EQ(reason_of(f), drop_reason::bad_udp_checksum) << "byte " << i;
  }
  // The pseudo-header is covered: another source address breaks the sum.
  bytes f = good;
  f[ip_off + wire::ipv4::src + 3] ^= 1;
  fix_ip_checksum(f);
  EXPECT_EQ(reason_of(f), drop_reason::bad_udp_checksum);
}

// Every prefix of a valid frame is dropped, for the reason the missing bytes imply.
TEST(parse_frame, truncation_at_every_length) {
  const bytes plain = udp_frame(bytes(100, 0x42));
  const bytes optioned = with_ip_options(plain, bytes(8, 0x01));
  for (const bytes* full : {&plain, &optioned}) {
    const size_t ihl = static_cast<size_t>((*full)[ip_off] & 0x0f) * 4;
    for (size_t len = 0; len < full->size(); ++len) {
      const bytes f(full->begin(), full->begin() + static_cast<ptrdiff_t>(len));
      drop_reason want = drop_reason::bad_ip_total_length;
      if (len < ip_off + wire::ipv4::min_len) {
        want = drop_reason::too_short;
      } else if (len < ip_off + ihl) {
        want = drop_reason::bad_ip_header_length;
      }
      ASSERT_EQ(reason_of(f), want) << "ihl " << ihl << " len " << len;
    }
    EXPECT_TRUE(parse_frame(*full).is_udp());
  }
  bytes arp(arp_frame_len);
  ASSERT_EQ(build_arp(arp, mac_addr::broadcast(),
                      arp_packet{arp_op::request, alice.mac, alice.ip, {}, bob.ip}, false),
            static_cast<int>(arp_frame_len));
  for (size_t len = 0; len < arp.size(); ++len) {
    const bytes f(arp.begin(), arp.begin() + static_cast<ptrdiff_t>(len));
    ASSERT_EQ(reason_of(f), drop_reason::too_short) << len;
  }
  EXPECT_TRUE(parse_frame(arp).is_arp());
}

TEST(parse_frame, keeps_partial_fields_of_dropped_frames) {
  bytes f = udp_frame(text("x"));
  f[ip_off + wire::ipv4::protocol] = 6;
  fix_ip_checksum(f);
  const parse_result r = parse_frame(f);
  EXPECT_TRUE(r.is_drop());
  EXPECT_EQ(r.eth_dst, bob.mac);
  EXPECT_EQ(r.eth_src, alice.mac);
}

TEST(drop_reason, names_are_distinct) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < drop_reason_count; ++i) {
    const auto name = to_string(static_cast<drop_reason>(i));
    EXPECT_NE(name, "unknown") << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), drop_reason_count);
  EXPECT_EQ(to_string(drop_reason::bad_ip_checksum), "bad_ip_checksum");
  EXPECT_EQ(to_string(frame_kind::udp), "udp");
  EXPECT_EQ(to_string(frame_kind::arp), "arp");
  EXPECT_EQ(to_string(frame_kind::drop), "drop");
}

}  // namespace
}  // namespace tandem::dp
