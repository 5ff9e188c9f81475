// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the heartbeat decoder (control/cluster/heartbeat_packet.h) on any bytes, and
// the membership logic on every packet that decodes.
//
// The first input byte picks the mode, the rest is the datagram:
//   even  the datagram as is, with the fixed fuzz key (only seeds signed with it pass the MAC)
//   odd   the datagram patched into a plausible header (magic, version, length, cluster id),
//         then signed with the fuzz key, so the payload parser is reached; with bit 1 set the
//         node / group counts are also made to match the length
// Invariants: a packet that decodes re-encodes to the same bytes; decode never reads past the
// input (ASan); membership never throws on a received datagram.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "control/cluster/heartbeat_packet.h"
#include "control/cluster/membership.h"

namespace tandem::fuzz {
namespace {

using namespace tandem::ctl::cluster;

// The same key as tests/unit/cluster/gen_heartbeat_corpus.cc, which signs the seeds.
constexpr std::string_view fuzz_secret = "tandem heartbeat fuzz secret v1!";
constexpr std::string_view fuzz_cluster = "fuzz";

[[noreturn]] void fail(const char* what, size_t size) {
  std::fprintf(stderr, "fuzz_heartbeat: invariant broken: %s (input of %zu bytes)\n", what, size);
  std::abort();
}

#define TANDEM_FUZZ_CHECK(cond, size) \
  do {                                \
    if (!(cond)) fail(#cond, size);   \
  } while (0)

std::span<const uint8_t> secret() {
  return {reinterpret_cast<const uint8_t*>(fuzz_secret.data()), fuzz_secret.size()};
}

const heartbeat_codec& codec() {
  static const heartbeat_codec c(secret(), cluster_id_of(fuzz_cluster));
  return c;
}

// A node 0 of a 32-node cluster on 16 links, so that every sender id and link is plausible.
membership& receiver() {
  static membership m = [] {
    membership_config cfg;
    cfg.self = 0;
    for (uint8_t id = 0; id < max_nodes; ++id)
      cfg.nodes.push_back({id, "n" + std::to_string(id)});
    for (size_t l = 0; l < max_links; ++l)
      cfg.link_names.push_back("l" + std::to_string(l));
    return membership(cfg, heartbeat_codec(secret(), cluster_id_of(fuzz_cluster)), 1,
                      membership::time_point(std::chrono::seconds(1)), nullptr);
  }();
  return m;
}

void sign(std::vector<uint8_t>& b, bool fix_counts) {
  if (b.size() < min_heartbeat_size) b.resize(min_heartbeat_size);
  if (b.size() > max_heartbeat_size) b.resize(max_heartbeat_size);
  if (fix_counts) {
    const size_t entries = (b.size() - heartbeat_fixed_size) / 4;
    b.resize(heartbeat_fixed_size + entries * 4);
    const size_t nodes = std::min<size_t>(entries, b[74] % (max_nodes + 1));
    const size_t groups = std::min<size_t>(entries - nodes, max_groups);
    b.resize(heartbeat_fixed_size + (nodes + groups) * 4);
    b[74] = static_cast<uint8_t>(nodes);
    b[75] = static_cast<uint8_t>(groups);
  }
  std::memcpy(b.data(), heartbeat_magic.data(), heartbeat_magic.size());
  b[4] = heartbeat_version;
  b[6] = static_cast<uint8_t>(b.size());
  b[7] = static_cast<uint8_t>(b.size() >> 8);
  const uint64_t id = codec().cluster_id();
  for (size_t i = 0; i < 8; ++i)
    b[8 + i] = static_cast<uint8_t>(id >> (8 * i));
  const size_t body = b.size() - heartbeat_tag_size;
  codec().mac({b.data(), body},
              std::span<uint8_t, heartbeat_tag_size>(b.data() + body, heartbeat_tag_size));
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::vector<uint8_t> b(data + 1, data + size);
  if ((mode & 1) != 0) sign(b, (mode & 2) != 0);

  heartbeat hb;
  const decode_result r = codec().decode(b, hb);
  if (r == decode_result::ok) {
    TANDEM_FUZZ_CHECK(b.size() == heartbeat_size(hb), size);
    std::vector<uint8_t> again(max_heartbeat_size);
    const int n = codec().encode(hb, again);
    TANDEM_FUZZ_CHECK(n == static_cast<int>(b.size()), size);
    TANDEM_FUZZ_CHECK(std::memcmp(again.data(), b.data(), b.size()) == 0, size);
  } else if ((mode & 1) != 0) {
    // A signed packet with a consistent header fails only on its payload.
    TANDEM_FUZZ_CHECK(r == decode_result::malformed, size);
  }

  // The membership logic on the same datagram, on the link it claims (or 0), time moving on.
  static auto now = membership::time_point(std::chrono::seconds(1));
  now += std::chrono::milliseconds(100 + mode);
  const uint8_t link = r == decode_result::ok ? hb.link : 0;
  receiver().receive(b, link, now, "fuzz");
  receiver().tick(now);
  return 0;
}
