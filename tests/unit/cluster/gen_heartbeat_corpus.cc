// SPDX-License-Identifier: Apache-2.0
// Writes the seed corpus of fuzz_heartbeat (tests/fuzz/heartbeat_fuzz.cc): a mode byte, then a
// heartbeat signed with the fuzz target's fixed key, valid or broken in one way.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "control/cluster/heartbeat_packet.h"

namespace {

using namespace tandem::ctl::cluster;
using bytes = std::vector<uint8_t>;

// The same key as tests/fuzz/heartbeat_fuzz.cc.
constexpr std::string_view fuzz_secret = "tandem heartbeat fuzz secret v1!";
constexpr std::string_view fuzz_cluster = "fuzz";

heartbeat_codec codec(std::string_view cluster) {
  return heartbeat_codec({reinterpret_cast<const uint8_t*>(fuzz_secret.data()), fuzz_secret.size()},
                         cluster_id_of(cluster));
}

heartbeat typical(uint8_t nodes, uint8_t groups) {
  heartbeat hb;
  hb.flags = flag_echo;
  hb.incarnation = 1'700'000'000'000'000'000;
  hb.seq = 17;
  hb.sender_time_ns = 123'456'789'000;
  hb.echo_incarnation = 1'700'000'000'000'000'001;
  hb.echo_time_ns = 123'000'000'000;
  hb.echo_hold_ns = 400'000'000;
  hb.sender_name_hash = node_name_hash("n1");
  hb.sender = 1;
  hb.dest = 0;
  hb.link = 1;
  hb.status.state = node_state::online;
  hb.status.quorum = true;
  hb.status.config_digest = 0x01020304;
  for (uint8_t i = 0; i < nodes; ++i)
    hb.status.nodes[i] = {i, peer_state::up, 0x0003};
  hb.status.node_count = nodes;
  for (uint8_t i = 0; i < groups; ++i)
    hb.status.groups[i] = {static_cast<uint16_t>(i * 3), group_state::online};
  hb.status.group_count = groups;
  return hb;
}

bytes encode(const heartbeat_codec& c, const heartbeat& hb, uint8_t mode) {
  bytes out(1 + max_heartbeat_size);
  out[0] = mode;
  const int n = c.encode(hb, {out.data() + 1, max_heartbeat_size});
  if (n < 0) std::abort();
  out.resize(1 + static_cast<size_t>(n));
  return out;
}

bool write(const std::string& dir, const char* name, const bytes& b) {
  const std::string path = dir + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) std::fprintf(stderr, "cannot write %s\n", path.c_str());
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const heartbeat_codec c = codec(fuzz_cluster);
  heartbeat no_echo = typical(0, 0);
  no_echo.flags = 0;
  no_echo.echo_incarnation = no_echo.echo_time_ns = no_echo.echo_hold_ns = 0;
  bytes bad_tag = encode(c, typical(3, 1), 0);
  bad_tag.back() ^= 1;
  bytes bad_counts = encode(c, typical(3, 2), 1);  // re-signed by the target: payload rules only
  bad_counts[1 + 74] = 9;
  bool ok = true;
  ok &= write(dir, "raw_minimal", encode(c, no_echo, 0));
  ok &= write(dir, "raw_three_nodes", encode(c, typical(3, 2), 0));
  ok &= write(dir, "raw_full", encode(c, typical(max_nodes, max_groups), 0));
  ok &= write(dir, "raw_other_cluster", encode(codec("other"), typical(3, 0), 0));
  ok &= write(dir, "raw_bad_tag", bad_tag);
  ok &= write(dir, "signed_three_nodes", encode(c, typical(3, 2), 1));
  ok &= write(dir, "signed_fix_counts", encode(c, typical(5, 4), 3));
  ok &= write(dir, "signed_bad_counts", bad_counts);
  return ok ? 0 : 1;
}
