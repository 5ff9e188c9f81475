// SPDX-License-Identifier: Apache-2.0
// Writes the seed corpus of fuzz_net_frame: valid UDP and ARP frames and a few broken ones.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/net/headers.h"

namespace {

using namespace tandem::dp;
using bytes = std::vector<uint8_t>;

constexpr size_t ip_off = wire::eth::len;

const udp_endpoint node_a{{{0x02, 0, 0, 0, 0, 0x01}}, ipv4_addr::from_octets(10, 0, 0, 1), 4791};
const udp_endpoint node_b{{{0x02, 0, 0, 0, 0, 0x02}}, ipv4_addr::from_octets(10, 0, 0, 2), 7000};

bytes udp(std::string_view text, const udp_build_options& opts = {}) {
  bytes out(udp_frame_overhead + text.size() + wire::eth::min_frame_len);
  const bytes payload(text.begin(), text.end());
  const int n = build_udp_frame(out, node_a, node_b, payload, opts);
  if (n < 0) std::abort();
  out.resize(static_cast<size_t>(n));
  return out;
}

bytes patterned(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + i % 26);
  bytes out(udp_frame_overhead + n);
  const bytes payload(s.begin(), s.end());
  if (build_udp_frame(out, node_a, node_b, payload) < 0) std::abort();
  return out;
}

void fix_ip_checksum(bytes& f) {
  const size_t ihl = static_cast<size_t>(f[ip_off] & 0x0f) * 4;
  store_be16(&f[ip_off + wire::ipv4::checksum], 0);
  store_be16(&f[ip_off + wire::ipv4::checksum], ipv4_checksum({&f[ip_off], ihl}));
}

bool write(const std::string& dir, const char* name, const bytes& b) {
  const std::string path = dir + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  const auto r = parse_frame(b);
  std::printf("%-28s %4zu bytes  %s %s\n", name, b.size(), to_string(r.kind).data(),
              to_string(r.reason).data());
  return f.good();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;

  ok &= write(dir, "udp_hello", udp("hello, tandem"));
  ok &= write(dir, "udp_empty", udp(""));
  ok &= write(dir, "udp_200", patterned(200));
  ok &=
      write(dir, "udp_no_checksum", udp("no checksum", {.udp_checksum = udp_checksum_mode::none}));
  ok &= write(dir, "udp_padded_60", udp("pad", {.pad_to_min_frame = true}));
  {
    bytes f = udp("options");  // IHL 7: two NOP words then end-of-options
    const bytes opts = {1, 1, 1, 1, 1, 1, 1, 0};
    f.insert(f.begin() + ip_off + 20, opts.begin(), opts.end());
    f[ip_off] = 0x47;
    store_be16(&f[ip_off + 2], static_cast<uint16_t>(load_be16(&f[ip_off + 2]) + opts.size()));
    fix_ip_checksum(f);
    ok &= write(dir, "udp_ip_options", f);
  }
  {
    bytes a(wire::eth::min_frame_len);
    if (build_arp_request(a, node_a.mac, node_a.ip, node_b.ip) < 0) return 1;
    ok &= write(dir, "arp_request", a);
    const arp_packet req = parse_frame(a).arp;
    bytes b(wire::eth::min_frame_len);
    if (build_arp_reply(b, node_b.mac, req) < 0) return 1;
    ok &= write(dir, "arp_reply", b);
    b.resize(arp_frame_len - 1);
    ok &= write(dir, "bad_arp_truncated", b);
  }
  {
    bytes f = udp("bad ip checksum");
    f[ip_off + wire::ipv4::checksum] ^= 0x01;
    ok &= write(dir, "bad_ip_checksum", f);
  }
  {
    bytes f = udp("first fragment");
    store_be16(&f[ip_off + wire::ipv4::frag], wire::ipv4::flag_more_fragments);
    fix_ip_checksum(f);
    ok &= write(dir, "bad_ip_fragment", f);
  }
  {
    bytes f = udp("bad udp checksum");
    f.back() ^= 0x20;
    ok &= write(dir, "bad_udp_checksum", f);
  }
  {
    bytes f = udp("bad udp length");
    store_be16(&f[ip_off + 20 + wire::udp::length], 0xffff);
    ok &= write(dir, "bad_udp_length", f);
  }
  {
    bytes f = udp("truncated");
    f.resize(f.size() - 4);
    ok &= write(dir, "bad_ip_truncated", f);
  }
  {
    bytes f = udp("tcp");
    f[ip_off + wire::ipv4::protocol] = 6;
    fix_ip_checksum(f);
    ok &= write(dir, "bad_ip_protocol_tcp", f);
  }
  {
    bytes f = udp("ipv6");
    store_be16(&f[wire::eth::type], 0x86dd);
    ok &= write(dir, "bad_ethertype_ipv6", f);
  }
  return ok ? 0 : 1;
}
