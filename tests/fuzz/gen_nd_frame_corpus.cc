// SPDX-License-Identifier: Apache-2.0
// Writes the seed corpus of fuzz_nd_frame: DAD solicitations and neighbour advertisements, valid
// and broken. Each seed is the fuzzer's input: 16 bytes target, 6 bytes our MAC, then the frame.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "netlink/nd_frame.h"

namespace {

using namespace tandem::nl::nd;
using bytes = std::vector<uint8_t>;

// fd00:99::100, the address probed; we are 02:..:02, the holder 02:..:01.
constexpr ip6 target{0xfd, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00};
constexpr mac own{0x02, 0, 0, 0, 0, 0x02};
constexpr mac holder{0x02, 0, 0, 0, 0, 0x01};
// fe80::1, the holder's link-local source; ff02::1, all nodes.
constexpr ip6 holder_ll{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr ip6 all_nodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};

// An ND message (`type`, `target`, then `options`) from `src_mac` / `src` to `dst`, with a
// correct checksum.
bytes nd_frame(uint8_t type, const mac& src_mac, const ip6& src, const ip6& dst,
               const bytes& options) {
  const size_t payload = nd_len + options.size();
  bytes f(eth_len + ip6_len + payload);
  const mac dst_mac{0x33, 0x33, dst[12], dst[13], dst[14], dst[15]};
  std::memcpy(&f[0], dst_mac.data(), 6);
  std::memcpy(&f[6], src_mac.data(), 6);
  f[12] = ethertype_ipv6 >> 8;
  f[13] = ethertype_ipv6 & 0xff;
  uint8_t* ip = &f[eth_len];
  ip[0] = 0x60;
  ip[4] = static_cast<uint8_t>(payload >> 8);
  ip[5] = static_cast<uint8_t>(payload);
  ip[6] = 58;  // ICMPv6
  ip[7] = hop_limit;
  std::memcpy(&ip[8], src.data(), 16);
  std::memcpy(&ip[24], dst.data(), 16);
  uint8_t* icmp = &ip[ip6_len];
  icmp[0] = type;
  if (type == 136) icmp[4] = 0x20;  // override
  std::memcpy(&icmp[8], target.data(), 16);
  std::copy(options.begin(), options.end(), &icmp[nd_len]);
  const uint16_t sum = icmp6_checksum(std::span<const uint8_t, 16>(&ip[8], 16),
                                      std::span<const uint8_t, 16>(&ip[24], 16),
                                      std::span<const uint8_t>(icmp, payload));
  icmp[2] = static_cast<uint8_t>(sum >> 8);
  icmp[3] = static_cast<uint8_t>(sum);
  return f;
}

bytes tlla(const mac& m) {
  return {2, 1, m[0], m[1], m[2], m[3], m[4], m[5]};
}

std::string to_string(const std::optional<mac>& m) {
  if (!m) return "no claim";
  char s[18];
  std::snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", (*m)[0], (*m)[1], (*m)[2], (*m)[3],
                (*m)[4], (*m)[5]);
  return s;
}

// Writes one seed and checks that it does what its name says.
bool write(const std::string& dir, const char* name, const bytes& frame,
           const std::optional<mac>& expect) {
  bytes seed(target.begin(), target.end());
  seed.insert(seed.end(), own.begin(), own.end());
  seed.insert(seed.end(), frame.begin(), frame.end());
  std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(seed.data()), static_cast<std::streamsize>(seed.size()));
  const auto r = claimant(frame, target, own);
  std::printf("%-22s %4zu bytes  %s\n", name, seed.size(), to_string(r).c_str());
  if (r != expect) std::fprintf(stderr, "%s: expected %s\n", name, to_string(expect).c_str());
  return f.good() && r == expect;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;

  const auto dad = dad_solicitation(holder, target);
  ok &= write(dir, "dad_ns", bytes(dad.begin(), dad.end()), holder);
  // The holder's answer names its MAC in the option; here a proxy (02:..:03) sends it.
  const mac proxy{0x02, 0, 0, 0, 0, 0x03};
  ok &= write(dir, "na_tlla", nd_frame(136, proxy, holder_ll, all_nodes, tlla(holder)), holder);
  ok &= write(dir, "na_no_options", nd_frame(136, holder, holder_ll, all_nodes, {}), holder);
  {
    bytes f = nd_frame(136, holder, holder_ll, all_nodes, tlla(holder));
    f.resize(f.size() - 4);
    ok &= write(dir, "bad_na_truncated", f, std::nullopt);
  }
  {
    bytes f = nd_frame(136, holder, holder_ll, all_nodes, tlla(holder));
    f[eth_len + ip6_len + 2] ^= 0x01;
    ok &= write(dir, "bad_na_checksum", f, std::nullopt);
  }
  {
    bytes opt = tlla(holder);
    opt[1] = 0;
    ok &= write(dir, "bad_na_zero_option", nd_frame(136, holder, holder_ll, all_nodes, opt),
                std::nullopt);
  }
  ok &= write(dir, "ns_from_real_source",
              nd_frame(135, holder, holder_ll, solicited_node(target), {}), std::nullopt);
  return ok ? 0 : 1;
}
