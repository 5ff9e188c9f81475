// SPDX-License-Identifier: Apache-2.0
// The DPDK harness passes frames between two namespaces: af_packet over the lab's bridge, and
// memif between two processes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/lab/dpdk.h"
#include "tests/lab/netns.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;

void expect_all_frames(const dpdk_frames_result& r, uint64_t count) {
  ASSERT_TRUE(r.ok()) << r.logs;
  const auto tx = json::parse(r.tx_json);
  const auto rx = json::parse(r.rx_json);
  EXPECT_EQ(tx["sent"], count) << r.logs;
  EXPECT_EQ(rx["valid"], count) << r.logs;
  EXPECT_EQ(rx["bad_payload"], 0) << r.logs;
  EXPECT_EQ(rx["duplicates"], 0) << r.logs;
  std::printf("tx %s\nrx %s\n", r.tx_json.c_str(), r.rx_json.c_str());
}

TEST(dpdk_harness, af_packet_frames_cross_between_namespaces) {
  lab l(cluster_options(2, 1, false));
  dpdk_frames_options o;
  o.lan = 1;  // the extra interconnect
  o.count = 10000;
  o.payload = 1024;
  // Raw frames have no retransmission: pace them so that the receiver's af_packet ring cannot
  // overflow even when the sanitizer build shares the 2 cores with other tests.
  o.pps = 20000;
  expect_all_frames(dpdk_frames(l, o), o.count);
}

TEST(dpdk_harness, memif_frames_between_two_processes) {
  lab l(cluster_options(2, 0, false));
  dpdk_frames_options o;
  o.kind = dpdk_vdev_kind::memif;
  o.count = 20000;
  o.payload = 1472;
  o.pps = 100000;
  expect_all_frames(dpdk_frames(l, o), o.count);
}

TEST(dpdk_harness, a_missing_interface_is_reported) {
  lab l(cluster_options(2, 0, false));
  dpdk_frames_options o;
  o.lan = 0;
  o.count = 10;
  l.exec_checked("node2", {"ip", "link", "set", "eth0", "name", "gone0"});
  try {
    dpdk_frames(l, o);
    FAIL() << "expected the receiver to fail";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("DPDK receiver in node2 did not get ready"), std::string::npos) << what;
    EXPECT_NE(what.find("eth0"), std::string::npos) << what;  // DPDK's own complaint is included
  }
}

}  // namespace
}  // namespace tandem::lab
