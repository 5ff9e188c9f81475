// SPDX-License-Identifier: Apache-2.0
// tandem-replicator's core: the mirrored volumes of one node, spread over one or more lcore
// threads (mirrors.lcores), driven by JSON commands from the control thread (the unix control
// socket) or in-process (tests, benchmarks).
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/mirrors_config.h"
#include "dataplane/frontend/fuse_frontend.h"

namespace tandem::dp::app {

struct replicator_options {
  ctl::config::mirrors_config config;
  // This node's name: which replica of each volume is local. Volumes without a replica here are
  // not served (one config file can describe several primaries mirrored to one standby).
  std::string node;
  uint32_t node_id = 0;  // non-zero; default: 1 + the node's index among each volume's replicas
  // One line per event (commands, volume state changes, errors); default: stderr. Called from
  // every lcore thread and the control thread: it must be thread-safe.
  std::function<void(std::string_view)> log;
  // transport.port dpdk: the EAL's --file-prefix unless transport.dpdk.eal_args name one;
  // default "tandem-replicator-<node>". Replicators sharing a host need their own.
  std::string eal_file_prefix;
  // The FUSE frontend's mountpoint (overrides mirrors.fuse_mount; both empty: no FUSE mount).
  std::string fuse_mount;
  // Serve each attached volume as /dev/tandem<index> through tandem.ko (or mirrors.kernel_devices);
  // index: the volume's position in mirrors.volumes, served here or not.
  bool kernel_devices = false;
  // Where the kernel shim's control and device nodes are (tests: a devtmpfs elsewhere).
  std::string dev_dir = "/dev";
};

// The EAL command line of a replicator on `node` (transport.port dpdk). With no configured
// eal_args: --no-huge -m 256 and a floating main lcore, --no-pci unless a local device is a PCI
// address (then -a for each), --no-shconf unless a device is net_memif (memif needs DPDK's
// multi-process channel). Configured eal_args replace those defaults; the file prefix is added
// when they do not name one. Devices are not on the command line: volumes plug them on attach.
std::vector<std::string> replicator_eal_arguments(const ctl::config::mirrors_config& config,
                                                  const std::string& node,
                                                  const std::string& file_prefix);

// Commands (JSON objects with "cmd"; every answer has "ok", and "error" when ok is false):
//   status [volume]            every volume's roles, states, generation ids, counters, its lcore
//   create volume [force]      initialises the volume's metadata (refuses valid metadata unless
//                              force); the volume must not be attached
//   attach volume              opens data and metadata, starts the engine, connects to the peer
//   detach volume              clean shutdown (demotes a primary first; refused with I/O in flight)
//   promote volume [force]     demote volume
//   connect volume             disconnect volume
//   resync volume [full]       pause volume   resume volume
//   workload volume ...        an in-process load generator for tests and benchmarks (see
//                              docs/replicator.md): random writes, every acknowledged one logged
//   loop volume                binds a loop device over the volume's FUSE file and answers its
//                              name ("device"); an existing one is answered as it is
//   unloop volume              unbinds it (refused while it is mounted)
// Unknown commands, unknown volumes and bad arguments are refused and change nothing.
//
// Threads: each lcore owns the volumes placed on it (a volume's `lcore`, else round-robin over
// the served volumes in config order) and is the only thread that touches them; it polls them and
// runs the commands that name them, between polls. Commands reach an lcore through its own queue;
// `status` without a volume asks every lcore and merges the answers in config order.
class replicator {
 public:
  // Serves the volumes that have a replica on `node` (the others are skipped with one log line;
  // none at all, or a served volume without exactly one peer: std::invalid_argument), checks that
  // mirrors.lcore_cpus name CPUs this process may run on (std::invalid_argument naming the CPU),
  // initialises DPDK's EAL for transport.port dpdk (throws std::runtime_error with DPDK's
  // reason), mounts the FUSE frontend when configured (throws std::runtime_error naming the
  // mountpoint) and starts the lcore threads. Nothing is attached yet: a volume's file appears
  // in the mount when it attaches.
  explicit replicator(replicator_options opts);
  // Detaches every volume cleanly (a primary with I/O in flight is left as after a crash), each
  // lcore its own, and unmounts the FUSE frontend (a loop device over a file sees I/O errors from
  // then on).
  ~replicator();
  replicator(const replicator&) = delete;
  replicator& operator=(const replicator&) = delete;

  // Runs one command on the lcore that owns the volume it names (commands naming no served
  // volume: lcore 0; status without a volume: every lcore) and returns its answer. Thread-safe;
  // blocks the caller until the answer is there. loop / unloop run on the caller's thread (the
  // kernel's loop driver calls back into the FUSE file, which an lcore serves).
  nlohmann::json execute(const nlohmann::json& command);

  const replicator_options& options() const { return opts_; }

 private:
  struct volume_slot;
  struct lcore;
  struct pending {
    nlohmann::json command;
    std::promise<nlohmann::json> answer;
  };

  void run(lcore& l);
  void nap(lcore& l, bool long_nap);
  int pump(volume_slot& v, uint64_t now);
  void drain(volume_slot& v, bool workload);
  void shut_down(volume_slot& v);
  void release(volume_slot& v);
  std::future<nlohmann::json> post(lcore& l, const nlohmann::json& command);
  nlohmann::json status_all(const nlohmann::json& command);
  nlohmann::json dispatch(lcore& l, const nlohmann::json& command);
  nlohmann::json volume_status(volume_slot& v);
  nlohmann::json loop_command(const nlohmann::json& command);
  volume_slot* find(const std::string& name) const;
  volume_slot& slot(const lcore& l, const nlohmann::json& command);
  void log(const std::string& line) const;

  replicator_options opts_;
  std::vector<std::unique_ptr<volume_slot>> volumes_;  // the served ones, in config order
  std::vector<std::unique_ptr<lcore>> lcores_;
  std::atomic<bool> stop_{false};
  bool dpdk_ = false;
  // DPDK hotplug and ethdev set-up are not safe from several threads at once: lcores attaching
  // or detaching volumes at the same time take turns (control path only).
  std::mutex dpdk_mu_;
  std::unique_ptr<frontend::fuse_frontend> fuse_;
};

}  // namespace tandem::dp::app
