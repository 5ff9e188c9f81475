// SPDX-License-Identifier: Apache-2.0
// Builders and the receive parser for Ethernet II / ARP / IPv4 / UDP frames.
#include "dataplane/net/headers.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tandem::dp {
namespace {

void put_mac(uint8_t* p, const mac_addr& mac) noexcept {
  std::memcpy(p, mac.bytes.data(), mac.bytes.size());
}

mac_addr get_mac(const uint8_t* p) noexcept {
  mac_addr mac;
  std::memcpy(mac.bytes.data(), p, mac.bytes.size());
  return mac;
}

void put_eth(uint8_t* p, const mac_addr& dst, const mac_addr& src, uint16_t type) noexcept {
  put_mac(p + wire::eth::dst, dst);
  put_mac(p + wire::eth::src, src);
  store_be16(p + wire::eth::type, type);
}

parse_result& drop(parse_result& r, drop_reason why) noexcept {
  r.kind = frame_kind::drop;
  r.reason = why;
  return r;
}

parse_result& parse_arp(std::span<const uint8_t> l3, parse_result& r) noexcept {
  using namespace wire::arp;
  if (l3.size() < len) return drop(r, drop_reason::too_short);
  const uint8_t* p = l3.data();
  if (load_be16(p + htype) != htype_ethernet || load_be16(p + ptype) != wire::eth::type_ipv4 ||
      p[hlen] != 6 || p[plen] != 4) {
    return drop(r, drop_reason::bad_arp_format);
  }
  const uint16_t op = load_be16(p + oper);
  if (op != static_cast<uint16_t>(arp_op::request) && op != static_cast<uint16_t>(arp_op::reply)) {
    return drop(r, drop_reason::unsupported_arp_op);
  }
  r.arp.op = static_cast<arp_op>(op);
  r.arp.sender_mac = get_mac(p + sender_mac);
  r.arp.sender_ip = ipv4_addr{load_be32(p + sender_ip)};
  r.arp.target_mac = get_mac(p + target_mac);
  r.arp.target_ip = ipv4_addr{load_be32(p + target_ip)};
  r.kind = frame_kind::arp;
  r.reason = drop_reason::none;
  return r;
}

parse_result& parse_ipv4_udp(std::span<const uint8_t> l3, const parse_options& opts,
                             parse_result& r) noexcept {
  namespace ip = wire::ipv4;
  if (l3.size() < ip::min_len) return drop(r, drop_reason::too_short);
  const uint8_t* p = l3.data();
  if ((p[ip::version_ihl] >> 4) != 4) return drop(r, drop_reason::bad_ip_version);
  const size_t ihl = static_cast<size_t>(p[ip::version_ihl] & 0x0f) * 4;
  if (ihl < ip::min_len || ihl > l3.size()) return drop(r, drop_reason::bad_ip_header_length);
  const size_t total = load_be16(p + ip::total_length);
  if (total < ihl || total > l3.size()) return drop(r, drop_reason::bad_ip_total_length);
  if (opts.verify_ip_checksum && ipv4_checksum(l3.first(ihl)) != 0) {
    return drop(r, drop_reason::bad_ip_checksum);
  }
  const uint16_t frag = load_be16(p + ip::frag);
  if ((frag & (ip::flag_more_fragments | ip::offset_mask)) != 0) {
    return drop(r, drop_reason::ip_fragment);
  }
  if (p[ip::protocol] != ip::proto_udp) return drop(r, drop_reason::unsupported_ip_protocol);

  const std::span<const uint8_t> l4 = l3.subspan(ihl, total - ihl);
  if (l4.size() < wire::udp::len) return drop(r, drop_reason::bad_udp_length);
  const uint8_t* u = l4.data();
  const uint16_t udp_len = load_be16(u + wire::udp::length);
  if (udp_len < wire::udp::len || udp_len > l4.size()) return drop(r, drop_reason::bad_udp_length);

  const ipv4_addr src_ip{load_be32(p + ip::src)};
  const ipv4_addr dst_ip{load_be32(p + ip::dst)};
  const std::span<const uint8_t> payload = l4.subspan(wire::udp::len, udp_len - wire::udp::len);
  const bool has_csum = load_be16(u + wire::udp::checksum) != 0;
  if (has_csum && opts.verify_udp_checksum) {
    // Pseudo-header from the values already loaded, then the whole segment in one pass.
    const uint32_t sum = checksum_add(
        l4.first(udp_len), udp4_pseudo_sum(checksum_add_addrs(0, src_ip, dst_ip), udp_len));
    if (checksum_finish(sum) != 0) return drop(r, drop_reason::bad_udp_checksum);
  }

  udp_datagram& d = r.udp;
  // Field by field: building whole endpoints in temporaries costs store-forwarding stalls.
  d.src.mac = r.eth_src;
  d.src.ip = src_ip;
  d.src.port = load_be16(u + wire::udp::src_port);
  d.dst.mac = r.eth_dst;
  d.dst.ip = dst_ip;
  d.dst.port = load_be16(u + wire::udp::dst_port);
  d.payload = payload;
  d.ttl = p[ip::ttl];
  d.tos = p[ip::tos];
  d.ip_id = load_be16(p + ip::id);
  d.dont_fragment = (frag & ip::flag_dont_fragment) != 0;
  d.has_udp_checksum = has_csum;
  d.ip_header_len = static_cast<uint8_t>(ihl);
  r.kind = frame_kind::udp;
  r.reason = drop_reason::none;
  return r;
}

// Writes the 42 header bytes at `e` for a payload of `payload_len` bytes whose one's-complement
// sum (checksum_add) is `payload_sum`. The checksums are summed from the field values rather
// than read back from the bytes just stored: narrow stores followed by wide loads of the same
// bytes stall store forwarding, which cost more than the rest of the build.
void write_udp_headers(uint8_t* e, const udp_endpoint& src, const udp_endpoint& dst,
                       size_t payload_len, uint32_t payload_sum,
                       const udp_build_options& opts) noexcept {
  put_eth(e, dst.mac, src.mac, wire::eth::type_ipv4);

  namespace ip = wire::ipv4;
  uint8_t* const p = e + wire::eth::len;
  const auto udp_len = static_cast<uint16_t>(wire::udp::len + payload_len);
  const auto total_len = static_cast<uint16_t>(ip::min_len + udp_len);
  const uint16_t frag = opts.dont_fragment ? ip::flag_dont_fragment : uint16_t{0};
  const auto ttl_proto = static_cast<uint16_t>(opts.ttl << 8 | ip::proto_udp);
  // src + dst addresses as 16-bit words: shared by the IPv4 header and the UDP pseudo-header.
  const uint32_t addrs = checksum_add_addrs(0, src.ip, dst.ip);

  p[ip::version_ihl] = 0x45;
  p[ip::tos] = opts.tos;
  store_be16(p + ip::total_length, total_len);
  store_be16(p + ip::id, opts.ip_id);
  store_be16(p + ip::frag, frag);
  store_be16(p + ip::ttl, ttl_proto);  // ttl, protocol
  store_be32(p + ip::src, src.ip.value);
  store_be32(p + ip::dst, dst.ip.value);
  uint16_t ip_csum = 0;
  if (opts.ip_checksum) {
    uint32_t sum = addrs;
    sum = checksum_add16(sum, static_cast<uint16_t>(0x4500 | opts.tos));
    sum = checksum_add16(sum, total_len);
    sum = checksum_add16(sum, opts.ip_id);
    sum = checksum_add16(sum, frag);
    sum = checksum_add16(sum, ttl_proto);
    ip_csum = checksum_finish(sum);
  }
  store_be16(p + ip::checksum, ip_csum);

  uint8_t* const u = p + ip::min_len;
  store_be16(u + wire::udp::src_port, src.port);
  store_be16(u + wire::udp::dst_port, dst.port);
  store_be16(u + wire::udp::length, udp_len);
  uint16_t udp_csum = 0;
  if (opts.udp_checksum != udp_checksum_mode::none) {
    uint32_t sum = udp4_pseudo_sum(addrs, udp_len);
    if (opts.udp_checksum == udp_checksum_mode::pseudo_header) {
      udp_csum = static_cast<uint16_t>(~checksum_finish(sum));
    } else {
      sum = checksum_add16(sum, src.port);  // UDP header (its checksum field counts as 0)
      sum = checksum_add16(sum, dst.port);
      sum = checksum_add16(sum, udp_len);
      sum = checksum_add16(sum, static_cast<uint16_t>(payload_sum));
      udp_csum = udp_checksum_for_wire(checksum_finish(sum));
    }
  }
  store_be16(u + wire::udp::checksum, udp_csum);
}

bool overlaps(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len) noexcept {
  const auto x = reinterpret_cast<uintptr_t>(a);
  const auto y = reinterpret_cast<uintptr_t>(b);
  return x < y + b_len && y < x + a_len;
}

}  // namespace

int build_udp_headers(std::span<uint8_t> out, const udp_endpoint& src, const udp_endpoint& dst,
                      std::span<const uint8_t> payload, const udp_build_options& opts) noexcept {
  if (payload.size() > udp_max_payload) return -EMSGSIZE;
  if (out.size() < udp_frame_overhead) return -ENOSPC;
  const uint32_t payload_sum =
      opts.udp_checksum == udp_checksum_mode::full ? checksum_add(payload) : 0;
  write_udp_headers(out.data(), src, dst, payload.size(), payload_sum, opts);
  return static_cast<int>(udp_frame_overhead);
}

int build_udp_frame(std::span<uint8_t> out, const udp_endpoint& src, const udp_endpoint& dst,
                    std::span<const uint8_t> payload, const udp_build_options& opts) noexcept {
  if (payload.size() > udp_max_payload) return -EMSGSIZE;
  const size_t used = udp_frame_overhead + payload.size();
  const size_t frame_len = opts.pad_to_min_frame ? std::max(used, wire::eth::min_frame_len) : used;
  if (out.size() < frame_len) return -ENOSPC;
  uint8_t* const body = out.data() + udp_frame_overhead;
  const bool sum = opts.udp_checksum == udp_checksum_mode::full;
  uint32_t payload_sum = 0;
  if (payload.empty()) {
    // Nothing to copy or sum.
  } else if (!overlaps(body, payload.size(), payload.data(), payload.size())) {
    if (sum) {
      payload_sum = checksum_copy(body, payload);
    } else {
      std::memcpy(body, payload.data(), payload.size());
    }
  } else {
    if (payload.data() != body) std::memmove(body, payload.data(), payload.size());
    if (sum) payload_sum = checksum_add({body, payload.size()});
  }
  std::memset(out.data() + used, 0, frame_len - used);
  write_udp_headers(out.data(), src, dst, payload.size(), payload_sum, opts);
  return static_cast<int>(frame_len);
}

int build_arp(std::span<uint8_t> out, const mac_addr& eth_dst, const arp_packet& arp,
              bool pad) noexcept {
  const size_t frame_len = pad ? wire::eth::min_frame_len : arp_frame_len;
  if (out.size() < frame_len) return -ENOSPC;
  uint8_t* const e = out.data();
  put_eth(e, eth_dst, arp.sender_mac, wire::eth::type_arp);

  using namespace wire::arp;
  uint8_t* const p = e + wire::eth::len;
  store_be16(p + htype, htype_ethernet);
  store_be16(p + ptype, wire::eth::type_ipv4);
  p[hlen] = 6;
  p[plen] = 4;
  store_be16(p + oper, static_cast<uint16_t>(arp.op));
  put_mac(p + sender_mac, arp.sender_mac);
  store_be32(p + sender_ip, arp.sender_ip.value);
  put_mac(p + target_mac, arp.target_mac);
  store_be32(p + target_ip, arp.target_ip.value);
  std::memset(e + arp_frame_len, 0, frame_len - arp_frame_len);
  return static_cast<int>(frame_len);
}

int build_arp_request(std::span<uint8_t> out, const mac_addr& sender_mac, ipv4_addr sender_ip,
                      ipv4_addr target_ip) noexcept {
  const arp_packet req{arp_op::request, sender_mac, sender_ip, mac_addr{}, target_ip};
  return build_arp(out, mac_addr::broadcast(), req);
}

int build_arp_reply(std::span<uint8_t> out, const mac_addr& my_mac,
                    const arp_packet& request) noexcept {
  const arp_packet rep{arp_op::reply, my_mac, request.target_ip, request.sender_mac,
                       request.sender_ip};
  return build_arp(out, request.sender_mac, rep);
}

std::string_view to_string(drop_reason reason) noexcept {
  switch (reason) {
    case drop_reason::none:
      return "none";
    case drop_reason::too_short:
      return "too_short";
    case drop_reason::unsupported_ethertype:
      return "unsupported_ethertype";
    case drop_reason::bad_arp_format:
      return "bad_arp_format";
    case drop_reason::unsupported_arp_op:
      return "unsupported_arp_op";
    case drop_reason::bad_ip_version:
      return "bad_ip_version";
    case drop_reason::bad_ip_header_length:
      return "bad_ip_header_length";
    case drop_reason::bad_ip_total_length:
      return "bad_ip_total_length";
    case drop_reason::bad_ip_checksum:
      return "bad_ip_checksum";
    case drop_reason::ip_fragment:
      return "ip_fragment";
    case drop_reason::unsupported_ip_protocol:
      return "unsupported_ip_protocol";
    case drop_reason::bad_udp_length:
      return "bad_udp_length";
    case drop_reason::bad_udp_checksum:
      return "bad_udp_checksum";
  }
  return "unknown";
}

std::string_view to_string(frame_kind kind) noexcept {
  switch (kind) {
    case frame_kind::drop:
      return "drop";
    case frame_kind::udp:
      return "udp";
    case frame_kind::arp:
      return "arp";
  }
  return "unknown";
}

parse_result parse_frame(std::span<const uint8_t> frame, const parse_options& opts) noexcept {
  parse_result r;
  if (frame.size() < wire::eth::len) {
    drop(r, drop_reason::too_short);
    return r;
  }
  const uint8_t* const e = frame.data();
  r.eth_dst = get_mac(e + wire::eth::dst);
  r.eth_src = get_mac(e + wire::eth::src);
  r.ethertype = load_be16(e + wire::eth::type);
  const std::span<const uint8_t> l3 = frame.subspan(wire::eth::len);
  switch (r.ethertype) {
    case wire::eth::type_ipv4:
      parse_ipv4_udp(l3, opts, r);
      break;
    case wire::eth::type_arp:
      parse_arp(l3, r);
      break;
    default:
      drop(r, drop_reason::unsupported_ethertype);
      break;
  }
  return r;
}

}  // namespace tandem::dp
