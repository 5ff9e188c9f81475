// SPDX-License-Identifier: Apache-2.0
// A whole tandem cluster in the lab: two nodes running tandem-replicator and tandemd with one
// cluster file, a tandem-witness and a client on the public lan. The failover group "web" holds
// the mirrored volume "db" (FUSE frontend, loop device), ext4 on it and tandem-lab-fileserver
// serving it on port 8080, then the floating IP 10.99.0.100 on the public lan (the address
// clients use). Shared by the failover-group tests, the failover benchmarks and the demo.
//
// Lans: 0 public (nodes, witness, client), 1 interconnect (heartbeats and replication).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/lab/tandemd_cluster.h"

namespace tandem::lab {

struct ha_cluster_options {
  uint64_t mib = 64;  // the volume
  std::string interval = "200ms";
  std::string timeout = "1s";
  std::string lease = "3s";  // the witness lease (its renewal: a third of it)
  std::string failback = "manual";
  // YAML list items appended under `monitors:` (indented by 2), e.g. a pid monitor of "http".
  std::string monitors;
  // More keys of the http resource's activation policy, e.g. "retries: 0, failovers: 1".
  std::string http_activation;
  // The floating IP resource "vip" (on eth0, /24, after http); empty: the group has none.
  std::string vip = "10.99.0.100";
};

class ha_cluster {
 public:
  using json = nlohmann::json;
  using clock = std::chrono::steady_clock;

  explicit ha_cluster(const ha_cluster_options& o = {});
  ~ha_cluster();
  ha_cluster(const ha_cluster&) = delete;
  ha_cluster& operator=(const ha_cluster&) = delete;

  static std::string node(int i) { return tandemd_cluster::node(i); }
  tandemd_cluster& daemons() { return c_; }
  lab& net() { return c_.net(); }
  const std::string& dir() const { return dir_; }
  std::string image(int i) const { return dir_ + "/" + node(i) + ".img"; }
  std::string meta(int i) const { return dir_ + "/" + node(i) + ".meta"; }
  std::string rep_sock(int i) const { return dir_ + "/" + node(i) + ".rep.sock"; }
  std::string fuse_mount(int i) const { return dir_ + "/" + node(i) + ".fuse"; }
  std::string mount_point(int i) const { return dir_ + "/" + node(i) + ".mnt"; }
  std::string public_address(int i) { return net().address(node(i), 0); }
  const std::string& vip() const { return vip_; }

  // Witness, both replicators (fresh volume, full sync, ext4 made on it), then both tandemd.
  void start();
  void start_replicator(int i);
  void start_daemon(int i) { c_.start(i); }
  // kill -9 of node i's tandemd and tandem-replicator (and so the service they ran).
  void kill_node(int i);
  // What a killed node left in this shared kernel (its ext4 mount, its loop device over the
  // dead FUSE file, the FUSE mount) removed, as a reboot would; call before restarting it.
  void clear_remains(int i) noexcept;

  json replicator(int i, const json& request);
  json group(int i);  // group "web" as node i's tandemd reports it
  // Where node i sees the group online ("" when nowhere).
  std::string online_on(int i);
  // Waits until node `watcher` sees the group online on node `where`.
  bool wait_online(int watcher, int where, std::chrono::milliseconds limit);

  // The client's HTTP requests to node i's service (curl in the client namespace): the status
  // code (0: no answer) and the body.
  std::pair<int, std::string> http(int i, const std::string& method, const std::string& file,
                                   const std::string& body = {},
                                   std::chrono::milliseconds timeout = std::chrono::seconds(2));
  // Which node's service answers GET / now ("" none): the client's view.
  std::string serving();
  // The same requests to the floating IP (a new TCP connection each): where clients go.
  std::pair<int, std::string> http_vip(const std::string& method, const std::string& file,
                                       const std::string& body = {},
                                       std::chrono::milliseconds timeout = std::chrono::seconds(2));
  // The node whose service answers GET / on the floating IP ("" none).
  std::string serving_vip();
  // The client's neighbour entry for the floating IP: the MAC it holds ("" none).
  std::string client_vip_mac();

  std::string logs();

 private:
  void cleanup() noexcept;
  void drop_vip(int i) noexcept;
  std::pair<int, std::string> http_to(const std::string& address, const std::string& method,
                                      const std::string& file, const std::string& body,
                                      std::chrono::milliseconds timeout);

  std::string dir_;
  tandemd_cluster c_;
  ctl::process* rep_[2] = {nullptr, nullptr};
  int rep_starts_ = 0;
  uint64_t mib_;
  std::string vip_;
};

}  // namespace tandem::lab
