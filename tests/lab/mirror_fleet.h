// SPDX-License-Identifier: Apache-2.0
// Several lab hosts running tandem-replicator from ONE shared mirrors file with many volumes,
// each mirrored between two of the hosts (N:1: several primaries, one standby), driven through
// the replicators' control sockets. mirror_pair.h is the two-host, one-volume case.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/lab/netns.h"

namespace tandem::lab {

struct fleet_volume {
  std::string name;
  std::string primary;  // the host that promotes it
  std::string standby;  // the host that holds its second replica
  std::string extra;    // more keys of the volume, one line each ("lcore: 1\n")
};

struct mirror_fleet_options {
  std::vector<std::string> hosts;  // lab host names, all on lan 0
  std::vector<fleet_volume> volumes;
  uint64_t mib = 4;  // each volume's size
  // The rest of the `mirrors.transport` map (port: socket).
  std::string transport;
  // Extra lines of the `mirrors:` section, each indented by two spaces ("  lcores: 2\n").
  std::string mirrors_extra;
  // Volume i's replicas listen on base_port + i on their host's address.
  uint16_t base_port = 7800;
  // Images and metadata; default: a directory in /dev/shm named after the lab (removed with it).
  std::string image_dir;
};

// Failures (a replicator that does not start, a refused command) throw std::runtime_error with
// the answer or the replicator's log.
class mirror_fleet {
 public:
  using json = nlohmann::json;
  using clock = std::chrono::steady_clock;

  explicit mirror_fleet(const mirror_fleet_options& o);

  lab& net() { return l_; }
  const std::string& config_path() const { return config_; }
  const std::vector<fleet_volume>& volumes() const { return o_.volumes; }
  std::string image(const std::string& host, const std::string& volume) const {
    return image_dir_ + "/" + host + "-" + volume + ".img";
  }
  std::string meta(const std::string& host, const std::string& volume) const {
    return image_dir_ + "/" + host + "-" + volume + ".meta";
  }
  std::string sock(const std::string& host) const { return l_.log_dir() + "/" + host + ".sock"; }
  uint64_t volume_bytes() const { return o_.mib << 20; }

  // Zeroed images of the volume size and no metadata, for every replica of every volume.
  void fresh_disks();
  // Starts the host's replicator (--config the shared file, --node host) and waits for READY.
  void start(const std::string& host);
  ctl::process& replicator(const std::string& host) { return *rep_.at(host); }
  std::string log(const std::string& host) const;
  json call(const std::string& host, const json& request);
  json ok(const std::string& host, const json& request);  // call() that must succeed
  // The host's status answer ({"cmd":"status"}) and its volumes by name.
  json status(const std::string& host);
  std::map<std::string, json> volumes_of(const std::string& host);
  // Polls the host's volumes every `interval` until `pred` holds for all of them; false after
  // `limit`.
  bool wait_all(const std::string& host, const std::function<bool(const json&)>& pred,
                std::chrono::milliseconds limit,
                std::chrono::milliseconds interval = std::chrono::milliseconds(100));
  void kill9(const std::string& host);
  // SIGTERM: the replicator shuts every volume down cleanly and must exit with 0.
  void stop(const std::string& host);
  // VmRSS of the host's replicator, in bytes.
  uint64_t rss_bytes(const std::string& host) const;

  // Connected, UpToDate, nothing left to resync.
  static bool in_sync(const json& v) {
    return v.value("connection", "") == "connected" && v.value("disk", "") == "up_to_date" &&
           v.value("dirty_bytes", uint64_t{1}) == 0;
  }

 private:
  mirror_fleet_options o_;
  lab l_;
  std::string image_dir_;
  std::string config_;
  std::map<std::string, ctl::process*> rep_;
  std::map<std::string, std::string> logs_;  // host -> the name of its replicator's log
  int starts_ = 0;
};

}  // namespace tandem::lab
