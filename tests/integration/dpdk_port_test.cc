// SPDX-License-Identifier: Apache-2.0
// The DPDK port between two lab hosts: datagrams of random sizes arrive exactly once and
// intact, with the peer's MAC resolved by ARP or configured statically, over af_packet and memif.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dataplane/port/eal_args.h"
#include "tests/lab/dpdk.h"
#include "tests/lab/netns.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct port_run {
  json send, recv;
};

// node1 sends `count` datagrams to node2 over `lan` with the given vdevs.
port_run exchange(lab& l, const std::string& tag, const std::string& tx_vdev,
                  const std::string& rx_vdev, int lan, uint64_t count, bool static_mac) {
  auto rx = port_tool_args(l, "node2", "recv", rx_vdev, tag);
  rx.insert(rx.end(), {"--local", l.address("node2", lan) + ":7000", "--count",
                       std::to_string(count), "--seed", "7"});
  auto tx = port_tool_args(l, "node1", "send", tx_vdev, tag);
  tx.insert(tx.end(), {"--local", l.address("node1", lan) + ":7000", "--peer",
                       l.address("node2", lan) + ":7000", "--count", std::to_string(count),
                       "--seed", "7", "--pps", "20000"});
  if (static_mac) tx.insert(tx.end(), {"--peer-mac", l.mac("node2", lan)});
  const auto r = run_pair(l, {"node2", tag + "-recv", rx}, {"node1", tag + "-send", tx}, 90s);
  EXPECT_TRUE(r.ok()) << r.logs;
  port_run out;
  if (r.tx_json.empty() || r.rx_json.empty()) {
    ADD_FAILURE() << "no summary\n" << r.logs;
    return out;
  }
  out.send = json::parse(r.tx_json);
  out.recv = json::parse(r.rx_json);
  EXPECT_EQ(out.send["sent"], count) << r.logs;
  EXPECT_EQ(out.recv["valid"], count) << r.logs;
  EXPECT_EQ(out.recv["bad"], 0) << r.logs;
  EXPECT_EQ(out.recv["duplicates"], 0) << r.logs;
  return out;
}

TEST(dpdk_port, af_packet_resolves_the_peer_by_arp) {
  lab l(cluster_options(2, 1, false));
  const auto r = exchange(l, "arp", dp::af_packet_vdev(0, l.iface(1)),
                          dp::af_packet_vdev(0, l.iface(1)), 1, 10000, false);
  EXPECT_GE(r.send["arp_requests"].get<int>(), 1);
}

TEST(dpdk_port, af_packet_with_a_static_neighbour_sends_no_arp) {
  lab l(cluster_options(2, 1, false));
  const auto r = exchange(l, "static", dp::af_packet_vdev(0, l.iface(1)),
                          dp::af_packet_vdev(0, l.iface(1)), 1, 5000, true);
  EXPECT_EQ(r.send["arp_requests"], 0);
}

TEST(dpdk_port, memif_between_two_hosts) {
  lab l(cluster_options(2, 0, false));
  const std::string sock = memif_socket(l, "port");
  exchange(l, "memif", dp::memif_vdev(0, "client", sock), dp::memif_vdev(0, "server", sock), 0,
           10000, false);
}

}  // namespace
}  // namespace tandem::lab
