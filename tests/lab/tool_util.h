// SPDX-License-Identifier: Apache-2.0
// What the lab's traffic tools (tandem-lab-dpdk-frames, -port, -transport) share.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "dataplane/port/eal.h"
#include "dataplane/port/port.h"

namespace tandem::lab::tool {

// splitmix64: sizes and bytes of test traffic follow from (seed, index) through it, so a
// receiver can check every byte without being told anything.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// "10.99.1.10:7100", or nullopt.
inline std::optional<dp::udp_addr> parse_udp_addr(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  auto ip = dp::ipv4_addr::parse(s.substr(0, colon));
  char* end = nullptr;
  const unsigned long port = std::strtoul(s.c_str() + colon + 1, &end, 10);
  if (!ip || *end != '\0' || port == 0 || port > 65535) return std::nullopt;
  return dp::udp_addr{*ip, static_cast<uint16_t>(port)};
}

// The EAL as the tools start it: --no-huge --no-pci, one vdev, a unique file prefix; memif
// keeps DPDK's multi-process channel, which it needs. 0, or a negative errno with `error`.
inline int start_eal(const std::string& vdev, const std::string& file_prefix, std::string& error) {
  dp::eal_options eal;
  eal.file_prefix = file_prefix;
  eal.vdevs = {vdev};
  eal.no_shconf = vdev.rfind("net_memif", 0) != 0;
  return dp::eal_init(dp::eal_arguments(eal), error);
}

}  // namespace tandem::lab::tool
