// SPDX-License-Identifier: Apache-2.0
// The transport between two lab hosts over real ports: kernel sockets, DPDK af_packet, memif,
// and DPDK on one side with a socket on the other. Messages of random sizes arrive exactly
// once, in order and byte-identical (each checked against its seeded content), with and
// without AES-GCM; a wrong key is refused with a clear line.
#include <algorithm>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dataplane/crypto/key_file.h"
#include "dataplane/port/eal_args.h"
#include "tests/lab/dpdk.h"
#include "tests/lab/netns.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct endpoint_spec {
  std::string port = "socket";  // or a vdev
  std::string key_file;
};

std::vector<std::string> args(lab& l, const std::string& host, const std::string& role,
                              const endpoint_spec& e, const std::string& peer, int lan,
                              uint64_t mib, const std::string& tag) {
  std::vector<std::string> a = {TANDEM_LAB_TRANSPORT_TOOL,
                                "--role",
                                role,
                                "--port",
                                e.port,
                                "--local",
                                l.address(host, lan) + ":7100",
                                "--peer",
                                l.address(peer, lan) + ":7100",
                                "--mib",
                                std::to_string(mib),
                                "--max-message",
                                std::to_string(256 * 1024),
                                "--timeout-ms",
                                "120000"};
  if (e.port != "socket") {
    const std::string prefix = "tdm-" + l.id() + "-" + tag + "-" + host;
    l.register_path(dp::eal_runtime_dir(prefix));
    a.insert(a.end(), {"--file-prefix", prefix});
  }
  if (!e.key_file.empty()) a.insert(a.end(), {"--key-file", e.key_file});
  return a;
}

std::string key_file(lab& l, const std::string& name, size_t bytes) {
  const std::string path = l.log_dir() + "/" + name + ".key";
  dp::generate_key_file(path, bytes);
  return path;
}

pair_result transfer(lab& l, const std::string& tag, const endpoint_spec& tx,
                     const endpoint_spec& rx, int lan, uint64_t mib) {
  return run_pair(l, {"node2", tag + "-recv", args(l, "node2", "recv", rx, "node1", lan, mib, tag)},
                  {"node1", tag + "-send", args(l, "node1", "send", tx, "node2", lan, mib, tag)},
                  180s);
}

void expect_complete(const pair_result& r, uint64_t mib, bool encrypted) {
  ASSERT_TRUE(r.ok()) << r.logs;
  const auto tx = json::parse(r.tx_json);
  const auto rx = json::parse(r.rx_json);
  EXPECT_EQ(rx["bytes"], tx["bytes"]) << r.logs;
  EXPECT_GE(rx["bytes"].get<uint64_t>(), mib << 20);
  EXPECT_EQ(rx["messages"], tx["messages"]);
  EXPECT_EQ(rx["bad"], 0);
  EXPECT_EQ(tx["crypto"], encrypted ? "aes-gcm" : "none");
  std::printf("%s\n%s\n", r.tx_json.c_str(), r.rx_json.c_str());
}

TEST(transport_netns, sockets_256_mib_integrity_only) {
  lab l(cluster_options(2, 1, false));
  expect_complete(transfer(l, "sock", {}, {}, 1, 256), 256, false);
}

TEST(transport_netns, sockets_with_aes_256_gcm) {
  lab l(cluster_options(2, 1, false));
  const auto key = key_file(l, "cluster", 32);
  expect_complete(transfer(l, "sockenc", {"socket", key}, {"socket", key}, 1, 64), 64, true);
}

TEST(transport_netns, dpdk_af_packet_on_one_side_socket_on_the_other) {
  lab l(cluster_options(2, 1, false));
  expect_complete(
      transfer(l, "mixed", {dp::af_packet_vdev(0, l.iface(1)), ""}, {"socket", ""}, 1, 64), 64,
      false);
}

TEST(transport_netns, dpdk_af_packet_both_sides_encrypted) {
  lab l(cluster_options(2, 1, false));
  const auto key = key_file(l, "cluster", 16);
  const std::string vdev = dp::af_packet_vdev(0, l.iface(1));
  expect_complete(transfer(l, "afp", {vdev, key}, {vdev, key}, 1, 64), 64, true);
}

TEST(transport_netns, dpdk_memif) {
  lab l(cluster_options(2, 0, false));
  const std::string sock = memif_socket(l, "transport");
  expect_complete(transfer(l, "memif", {dp::memif_vdev(0, "client", sock), ""},
                           {dp::memif_vdev(0, "server", sock), ""}, 0, 64),
                  64, false);
}

TEST(transport_netns, a_wrong_key_is_refused_and_named) {
  lab l(cluster_options(2, 1, false));
  auto rx = args(l, "node2", "recv", {"socket", key_file(l, "a", 32)}, "node1", 1, 1, "wk");
  auto tx = args(l, "node1", "send", {"socket", key_file(l, "b", 32)}, "node2", 1, 1, "wk");
  tx[std::find(tx.begin(), tx.end(), "--timeout-ms") - tx.begin() + 1] = "3000";
  rx[std::find(rx.begin(), rx.end(), "--timeout-ms") - rx.begin() + 1] = "3000";
  const auto r = run_pair(l, {"node2", "wk-recv", rx}, {"node1", "wk-send", tx}, 30s);
  EXPECT_FALSE(r.ok());
  const auto rx_json = json::parse(r.rx_json);
  EXPECT_EQ(rx_json["messages"], 0);
  // node1 (10.99.1.10) is the initiator: it names its peer and the reason.
  EXPECT_NE(r.logs.find("transport peer 10.99.1.11:7100: refused: wrong key"), std::string::npos)
      << r.logs;
}

}  // namespace
}  // namespace tandem::lab
