// SPDX-License-Identifier: Apache-2.0
// The test lab: hosts as network namespaces on private bridges, their processes, logs and faults.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/exec/process.h"
#include "tests/lab/janitor.h"

namespace tandem::lab {

// One host of the lab (a cluster node, a client, a witness...). lans lists the networks it is
// plugged into; lan 0 is the public network, the others are extra interconnects.
struct host_spec {
  std::string name;
  std::vector<int> lans = {0};
};

struct lab_options {
  std::vector<host_spec> hosts;
  int lans = 1;
  std::string log_dir;  // default: <build>/lab-logs/<lab id>
};

// node1..nodeN on every lan, plus a "client" on lan 0 when asked.
lab_options cluster_options(int nodes, int extra_interconnects = 0, bool client = true);

// Everything a lab creates lives in namespaces named "tdm-<id>-<host>" and one switch namespace
// "tdm-<id>-sw" holding the bridges, so nothing is ever added to the host's own namespace. Each
// resource is registered with a janitor process before it is made; the janitor removes it when
// the lab is destroyed or, if the test process dies (even by SIGKILL), when it notices.
class lab {
 public:
  explicit lab(lab_options opts);
  ~lab();
  lab(const lab&) = delete;
  lab& operator=(const lab&) = delete;

  const std::string& id() const { return id_; }
  std::vector<std::string> hosts() const;
  std::string netns(const std::string& host) const;
  std::string switch_netns() const { return "tdm-" + id_ + "-sw"; }
  // Address, MAC and interface name of a host on a lan (10.99.<lan>.<10+index>/24).
  std::string address(const std::string& host, int lan = 0) const;
  std::string mac(const std::string& host, int lan = 0) const;
  std::string iface(int lan) const { return "eth" + std::to_string(lan); }
  int prefix_len() const { return 24; }

  // Starts a process inside a host; stdout+stderr go to log_path(host, name). The lab owns it
  // and stops it on destruction; the reference stays valid for the lab's lifetime.
  ctl::process& spawn(const std::string& host, const std::string& name,
                      std::vector<std::string> argv, std::vector<std::string> env = {});
  // spawn(), then waits until the process's log has a line with READY (the daemons' start-up
  // signal). A process that exits or stays silent for `limit` is stopped and reported with
  // std::runtime_error("<host>: <what> did not start:\n<its log>").
  ctl::process& spawn_ready(const std::string& host, const std::string& name,
                            std::vector<std::string> argv, const std::string& what,
                            std::chrono::milliseconds limit = std::chrono::seconds(20),
                            std::vector<std::string> env = {});
  // Runs a command inside a host to completion.
  ctl::run_result exec(const std::string& host, std::vector<std::string> argv,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::string exec_checked(const std::string& host, std::vector<std::string> argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // One ICMP echo from a host to an address, waiting at most a second for the answer.
  bool ping(const std::string& host, const std::string& address);

  // Cuts or restores a host's link to a lan (its switch port goes down: the host sees no carrier).
  void set_link(const std::string& host, int lan, bool up);
  // Drops this percentage of the host's incoming and outgoing packets at random (nftables
  // numgen); 0 removes the rule.
  void random_drop(const std::string& host, int percent);

  // Registers something a test made (mount point, loop device, directory) for removal.
  void register_mount(const std::string& path) { janitor_->add("mount", path); }
  void register_loop(const std::string& device) { janitor_->add("loop", device); }
  void register_path(const std::string& path) { janitor_->add("path", path); }

  const std::string& log_dir() const { return log_dir_; }
  std::string log_path(const std::string& host, const std::string& name) const;
  std::string read_log(const std::string& host, const std::string& name) const;
  // All logs of the run, concatenated with headers, for failure reports.
  std::string collect_logs() const;

 private:
  struct host_state {
    host_spec spec;
    int index;
  };
  const host_state& host(const std::string& name) const;
  void build();
  void add_netns(const std::string& name);
  void teardown() noexcept;

  lab_options opts_;
  std::string id_;
  std::string log_dir_;
  std::unique_ptr<janitor> janitor_;  // started once the options are known to be valid
  std::map<std::string, host_state> hosts_;
  std::vector<std::string> order_;
  std::vector<std::pair<std::string, std::unique_ptr<ctl::process>>> procs_;
};

// A unique short id for this run (hex, 6 characters): interface and namespace names derive from it.
std::string unique_id();

// Kernel TCP goodput from `client` to `server` over lan `lan`, one iperf3 run of `seconds`, in
// Gbit/s: the socket port's ceiling in the benchmarks. Throws std::runtime_error with iperf3's
// output when it fails.
double iperf3_gbps(lab& l, const std::string& server, const std::string& client, int lan,
                   int seconds);

}  // namespace tandem::lab
