// SPDX-License-Identifier: Apache-2.0
// Two lab hosts, each running tandem-replicator with a data image and a metadata file, driven
// through the replicators' control sockets: shared by the replicator netns tests and the
// mirror benchmark.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/lab/netns.h"

namespace tandem::lab {

struct mirror_pair_options {
  uint64_t mib = 32;  // volume size
  // The replicators' port: socket | memif (DPDK net_memif between the two hosts, MTU 9000) |
  // af_packet (DPDK net_af_packet on each host's veth).
  std::string port = "socket";
  // The rest of the `mirrors.transport` map (its port key follows from `port`).
  std::string transport = "keepalive: 100ms, dead_peer: 1s";
  std::string volume_extra;  // extra volume keys, e.g. "resync_rate: 0"
  std::string image_dir;     // where data images go; default: the lab's log directory
  // Each replicator serves the volume as a FUSE file under fuse_mount(i) (--fuse-mount).
  bool fuse = false;
  // Each replica has an async history file, history(i) (its size: volume_extra's
  // `async: {history_size: ...}`).
  bool history = false;
};

// Failures (a replicator that does not start, a refused command, a state not reached) throw
// std::runtime_error with the replicator's log or the answer: a test fails with the message,
// the benchmark stops.
class mirror_pair {
 public:
  using json = nlohmann::json;
  using clock = std::chrono::steady_clock;

  explicit mirror_pair(const mirror_pair_options& o = {});

  static std::string node(int i) { return "node" + std::to_string(i + 1); }
  std::string image(int i) const { return image_dir_ + "/" + node(i) + ".img"; }
  std::string meta(int i) const { return dir_ + "/" + node(i) + ".meta"; }
  std::string sock(int i) const { return dir_ + "/" + node(i) + ".sock"; }
  std::string history(int i) const { return dir_ + "/" + node(i) + ".history"; }
  // Node i's FUSE mountpoint (options.fuse) and the volume's file in it.
  std::string fuse_mount(int i) const { return dir_ + "/" + node(i) + ".fuse"; }
  std::string fuse_file(int i) const { return fuse_mount(i) + "/db"; }
  const std::string& dir() const { return dir_; }
  uint64_t volume_bytes() const { return volume_bytes_; }
  lab& net() { return l_; }
  ctl::process& replicator(int i) { return *rep_[i]; }

  // Empty data images of the volume's size and no metadata, on both nodes.
  void fresh_disks();
  // Starts node i's replicator and waits for its READY line.
  void start(int i);
  json call(int i, const json& request);
  // call() that must succeed; returns the answer.
  json ok(int i, const json& request);
  // The status of volume "db" on node i.
  json volume(int i);
  // Polls node i's volume status every `interval` until `pred` holds; false after `limit`.
  bool wait_for(int i, const std::function<bool(const json&)>& pred,
                std::chrono::milliseconds limit = std::chrono::seconds(20),
                std::chrono::milliseconds interval = std::chrono::milliseconds(20));
  // A counter of a volume status (status["counters"][name]).
  static uint64_t counter(const json& v, const char* name) {
    return v["counters"][name].get<uint64_t>();
  }
  // A volume status that is connected, UpToDate and has nothing left to resync.
  static bool in_sync(const json& v) {
    return v["connection"] == "connected" && v["disk"] == "up_to_date" && v["dirty_bytes"] == 0;
  }
  // Both replicators up on fresh disks, volumes created and attached, node1 primary, in sync.
  void bring_up();
  void kill9(int i);
  // The failover after the other node died: node i lets go of the dead peer, is promoted, shuts
  // its volume down cleanly and its replicator stops, so that its image can be read.
  void take_over_and_stop(int i);

 private:
  lab l_;
  std::string dir_;
  std::string image_dir_;
  std::string config_;
  std::string port_;
  bool fuse_ = false;
  ctl::process* rep_[2] = {nullptr, nullptr};
  int starts_ = 0;
  uint64_t volume_bytes_;
};

}  // namespace tandem::lab
