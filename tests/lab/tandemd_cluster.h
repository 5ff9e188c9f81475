// SPDX-License-Identifier: Apache-2.0
// N lab hosts each running tandemd with one cluster file: shared by the tandemd netns tests,
// the failover benchmark and the demo.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/lab/netns.h"

namespace tandem::lab {

struct tandemd_cluster_options {
  int nodes = 3;
  int interconnects = 2;  // lans 0..n-1 (1..n with public_lan), every node on each
  std::string interval = "200ms";
  std::string timeout = "1s";
  std::string quorum = "{mode: majority}";  // the quorum: map, as YAML flow
  std::string extra;                        // more top-level YAML (api:, alerts: ...)
  // Lan 0 is a public network that carries no heartbeats (every node and the extra hosts are
  // on it, e.g. to reach a witness); the interconnects are then lans 1..n.
  bool public_lan = false;
  // More lab hosts next to the nodes (a witness, an etcd server), on the lans they list.
  std::vector<host_spec> extra_hosts;
  // When set, makes the quorum: map (replacing `quorum`) once the lab exists, so that it can
  // name the extra hosts' addresses.
  std::function<std::string(const lab&)> quorum_of;
  // When set, more top-level YAML made once the lab exists (added after `extra`).
  std::function<std::string(const lab&)> extra_of;
  // "NAME=value" entries added to every tandemd's environment (cloud credentials, a CA bundle).
  std::vector<std::string> env;
};

class tandemd_cluster {
 public:
  using json = nlohmann::json;
  using clock = std::chrono::steady_clock;

  explicit tandemd_cluster(const tandemd_cluster_options& o = {});

  static std::string node(int i) { return "node" + std::to_string(i + 1); }
  int size() const { return n_; }
  // The lab lan that carries interconnect k (0-based, in the order of the cluster file).
  int interconnect_lan(int k) const { return k + (public_lan_ ? 1 : 0); }
  lab& net() { return l_; }
  const std::string& config() const { return config_; }
  const std::string& secret() const { return secret_; }
  std::string sock(int i) const { return dir_ + "/" + node(i) + ".sock"; }
  std::string state_dir(int i) const { return dir_ + "/" + node(i) + ".state"; }

  // Starts node i's tandemd (with `args` added) and waits for READY. `config` replaces the
  // cluster file for this start (e.g. one with another secret).
  void start(int i, std::vector<std::string> args = {}, const std::string& config = {});
  // Arguments added to every start of node i (e.g. --replicator-socket).
  void set_args(int i, std::vector<std::string> args);
  // "NAME=value" entries added to the environment of every later start (replacing
  // options.env), e.g. once a fake cloud's CA exists.
  void set_env(std::vector<std::string> env) { env_ = std::move(env); }
  void kill9(int i);      // SIGKILL: a crash
  void terminate(int i);  // SIGTERM: a clean stop; waits for the exit
  bool running(int i);
  ctl::process& daemon(int i) { return *procs_.at(static_cast<size_t>(i)); }
  std::string log(int i) const;

  json call(int i, const json& request);
  json status(int i);
  // node j's state ("up", "down", "unknown") as node i sees it.
  std::string state_of(int i, int j);
  bool holds_quorum(int i);
  // Polls every `every` until pred() holds; false after `limit`.
  static bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit,
                         std::chrono::milliseconds every = std::chrono::milliseconds(10));
  // Every running node sees every running node up.
  bool wait_all_up(std::chrono::milliseconds limit = std::chrono::seconds(20));
  // The events of node i (all kept).
  json events(int i, uint64_t since = 0);
  // Logs of every node, for failure messages.
  std::string logs();

 private:
  lab l_;
  int n_;
  bool public_lan_;
  std::string dir_, config_, secret_;
  std::vector<ctl::process*> procs_;
  std::vector<std::string> names_;              // the current log name per node
  std::vector<std::vector<std::string>> args_;  // per node, added to every start
  std::vector<std::string> env_;
  int starts_ = 0;
};

}  // namespace tandem::lab
