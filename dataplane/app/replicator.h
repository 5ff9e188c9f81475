// SPDX-License-Identifier: Apache-2.0
// tandem-replicator's core: the mirrored volumes of one node, polled by one lcore thread, driven
// by JSON commands from the control thread (the unix control socket) or in-process (tests,
// benchmarks).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/mirrors_config.h"

namespace tandem::dp::app {

struct replicator_options {
  ctl::config::mirrors_config config;
  std::string node;      // this node's name: which replica of each volume is local
  uint32_t node_id = 0;  // non-zero; default: 1 + the node's index among each volume's replicas
  // One line per event (commands, volume state changes, errors); default: stderr.
  std::function<void(std::string_view)> log;
};

// Commands (JSON objects with "cmd"; every answer has "ok", and "error" when ok is false):
//   status [volume]            every volume's roles, states, generation ids, counters
//   create volume [force]      initialises the volume's metadata (refuses valid metadata unless
//                              force); the volume must not be attached
//   attach volume              opens data and metadata, starts the engine, connects to the peer
//   detach volume              clean shutdown (demotes a primary first; refused with I/O in flight)
//   promote volume [force]     demote volume
//   connect volume             disconnect volume
//   resync volume [full]       pause volume   resume volume
//   workload volume ...        an in-process load generator for tests and benchmarks (see
//                              docs/replicator.md): random writes, every acknowledged one logged
// Unknown commands, unknown volumes and bad arguments are refused and change nothing.
class replicator {
 public:
  // Validates that every volume has a replica on `node` (throws std::invalid_argument naming the
  // volume otherwise) and starts the lcore thread. Nothing is attached yet.
  explicit replicator(replicator_options opts);
  // Detaches every volume cleanly (a primary with I/O in flight is left as after a crash).
  ~replicator();
  replicator(const replicator&) = delete;
  replicator& operator=(const replicator&) = delete;

  // Runs one command on the lcore thread and returns its answer. Thread-safe; blocks the caller
  // until the lcore has answered.
  nlohmann::json execute(const nlohmann::json& command);

  const replicator_options& options() const { return opts_; }

 private:
  struct volume_slot;
  struct pending {
    nlohmann::json command;
    std::promise<nlohmann::json> answer;
  };

  void run();
  nlohmann::json dispatch(const nlohmann::json& command);
  volume_slot& slot(const nlohmann::json& command);
  void log(const std::string& line) const;

  replicator_options opts_;
  std::vector<std::unique_ptr<volume_slot>> volumes_;
  std::mutex mu_;
  std::deque<pending> queue_;
  std::atomic<bool> has_work_{false};
  std::atomic<bool> stop_{false};
  std::thread lcore_;
};

}  // namespace tandem::dp::app
