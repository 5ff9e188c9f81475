// SPDX-License-Identifier: Apache-2.0
// The transport between two lab hosts over real ports: kernel sockets, DPDK af_packet, memif,
// and DPDK on one side with a socket on the other, each with and without AES-GCM, and sockets
// through fault ports (10% drop, 5% duplicates, reordering, 1% corruption). 256 MiB of messages
// of random sizes per transfer (16 MiB through the faults; TANDEM_TRANSPORT_MIB overrides, and
// the `long` label runs 1 GiB) arrive exactly once, in order and byte-identical (each checked
// against its seeded content); a wrong key is refused with a clear line.
#include <algorithm>
#include <cstdlib>
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
  std::string faults;  // --faults of tandem-lab-transport, on this side's transmissions
};

// MiB per transfer: 256, or TANDEM_TRANSPORT_MIB (the long runs set 1024).
uint64_t transfer_mib() {
  const char* v = std::getenv("TANDEM_TRANSPORT_MIB");
  return v && *v ? std::strtoull(v, nullptr, 10) : 256;
}

std::vector<std::string> args(lab& l, const std::string& host, const std::string& role,
                              const endpoint_spec& e, const std::string& peer, int lan,
                              uint64_t mib, const std::string& tag) {
  std::vector<std::string> a = transport_tool_args(l, host, role, e.port, peer, lan, 7100, tag);
  a.insert(a.end(), {"--mib", std::to_string(mib), "--max-message", std::to_string(256 * 1024),
                     "--timeout-ms", "540000"});
  if (!e.key_file.empty()) a.insert(a.end(), {"--key-file", e.key_file});
  if (!e.faults.empty()) a.insert(a.end(), {"--faults", e.faults});
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
                  600s);
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

// One transfer per port combination, integrity only and encrypted.
enum class pair_kind { sockets, af_packet, memif, af_packet_to_socket };

struct transfer_case {
  pair_kind kind;
  bool encrypted;
};

std::string case_name(const testing::TestParamInfo<transfer_case>& i) {
  static const char* const names[] = {"sockets", "af_packet", "memif", "af_packet_to_socket"};
  return std::string(names[static_cast<int>(i.param.kind)]) +
         (i.param.encrypted ? "_aes_gcm" : "_integrity_only");
}

class transport_pair : public testing::TestWithParam<transfer_case> {};

TEST_P(transport_pair, every_message_arrives_once_in_order_and_intact) {
  const transfer_case c = GetParam();
  const bool memif = c.kind == pair_kind::memif;
  lab l(cluster_options(2, memif ? 0 : 1, false));
  const int lan = memif ? 0 : 1;
  // Key sizes vary across the cases: 16, 24 and 32 bytes all reach AES-GCM.
  const size_t key_bytes = 16 + 8 * (static_cast<size_t>(c.kind) % 3);
  const std::string key = c.encrypted ? key_file(l, "cluster", key_bytes) : "";
  endpoint_spec tx{"socket", key, ""};
  endpoint_spec rx{"socket", key, ""};
  switch (c.kind) {
    case pair_kind::sockets:
      break;
    case pair_kind::af_packet:
      tx.port = rx.port = dp::af_packet_vdev(0, l.iface(1));
      break;
    case pair_kind::memif: {
      const std::string sock = memif_socket(l, "transport");
      tx.port = dp::memif_vdev(0, "client", sock);
      rx.port = dp::memif_vdev(0, "server", sock);
      break;
    }
    case pair_kind::af_packet_to_socket:
      tx.port = dp::af_packet_vdev(0, l.iface(1));
      break;
  }
  const uint64_t mib = transfer_mib();
  expect_complete(transfer(l, "t", tx, rx, lan, mib), mib, c.encrypted);
}

INSTANTIATE_TEST_SUITE_P(ports, transport_pair,
                         testing::Values(transfer_case{pair_kind::sockets, false},
                                         transfer_case{pair_kind::sockets, true},
                                         transfer_case{pair_kind::af_packet, false},
                                         transfer_case{pair_kind::af_packet, true},
                                         transfer_case{pair_kind::memif, false},
                                         transfer_case{pair_kind::memif, true},
                                         transfer_case{pair_kind::af_packet_to_socket, false},
                                         transfer_case{pair_kind::af_packet_to_socket, true}),
                         case_name);

// Both directions through fault ports: data and acks are dropped, duplicated, reordered and
// corrupted (the CRC32C catches every corruption; the receiver counts them). A sixteenth of the
// clean transfers' volume (16 MiB; 64 MiB in the long runs): at 10% loss AIMD keeps the window
// at a few packets, so goodput is tens of Mbit/s (docs/transport.md).
TEST(transport_netns, faults_both_ways_exactly_once_in_order) {
  lab l(cluster_options(2, 1, false));
  const std::string key = key_file(l, "cluster", 32);
  const std::string faults = "drop=0.1,duplicate=0.05,reorder=0.05,corrupt=0.01";
  const uint64_t mib = std::max<uint64_t>(1, transfer_mib() / 16);
  const auto r = transfer(l, "faults", {"socket", key, faults + ",seed=1"},
                          {"socket", key, faults + ",seed=2"}, 1, mib);
  expect_complete(r, mib, true);
  if (!r.ok()) return;
  const auto tx = json::parse(r.tx_json);
  const auto rx = json::parse(r.rx_json);
  EXPECT_GT(tx["retransmitted"].get<uint64_t>(), 0u);
  // Corrupted frames: the CRC32C drops them before the AEAD sees them.
  EXPECT_GT(rx["dropped_bad_crc"].get<uint64_t>(), 0u);
  EXPECT_EQ(rx["dropped_auth"], 0);
}

TEST(transport_netns, a_wrong_key_is_refused_and_named) {
  lab l(cluster_options(2, 1, false));
  auto rx = args(l, "node2", "recv", {"socket", key_file(l, "a", 32), ""}, "node1", 1, 1, "wk");
  auto tx = args(l, "node1", "send", {"socket", key_file(l, "b", 32), ""}, "node2", 1, 1, "wk");
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
