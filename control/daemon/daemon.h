// SPDX-License-Identifier: Apache-2.0
// tandemd's core: heartbeats on every interconnect, membership, quorum, events and the API.
//
// One io_context thread owns everything (membership and quorum are single-owner logic): UDP
// sockets per interconnect, one timer armed at the earliest of the next heartbeat round, the
// membership's and the quorum's deadlines; lease modes run under a quorum::lease_runner on the
// same io_context. Requests (the unix socket, HTTP) are answered on that thread too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "control/config/cluster_config.h"

namespace tandem::ctl::daemon {

inline constexpr std::string_view daemon_module = "tandemd";

// Event ids of the "tandemd" module (docs/tandemd.md has the messages).
namespace daemon_events {
inline constexpr uint32_t started = 1;          // info: the daemon runs
inline constexpr uint32_t stopping = 2;         // info: the daemon is shutting down
inline constexpr uint32_t cluster_started = 3;  // info: this node joined (start, cluster start)
inline constexpr uint32_t cluster_stopped = 4;  // info: this node left (cluster stop)
inline constexpr uint32_t groups_stop = 5;      // error: quorum lost, groups must stop
inline constexpr uint32_t fence = 6;            // warning: the fence command ran
inline constexpr uint32_t fence_failed = 7;     // error: the fence command failed
inline constexpr uint32_t config_reloaded = 8;  // info: a changed file was applied
inline constexpr uint32_t reload_refused = 9;   // warning: a reload needs a restart
inline constexpr uint32_t send_failed = 10;     // warning: heartbeats cannot be sent on a link
inline constexpr uint32_t alert_failed = 11;    // warning: a webhook could not be delivered
inline constexpr uint32_t lease_handoff = 12;   // info: the lease is given to a peer for a group
}  // namespace daemon_events

struct daemon_options {
  std::string config_file;
  std::string node;    // this node's name in the file
  std::string socket;  // the API socket; empty: api.socket of the file
  // Where the incarnation of the previous run is kept (so a restart is always recognised as a
  // new incarnation, even after the clock stepped back).
  std::string state_dir = "/var/lib/tandem";
  // This node's tandem-replicator socket when it is not mirrors.control_socket (several nodes on
  // one host, as in the lab); mirror resources and monitors use it.
  std::string replicator_socket;
  bool start_stopped = false;  // wait for `tandemctl cluster start` before joining
  // One line per event and per notable action; default: stderr with a timestamp.
  std::function<void(std::string_view)> log;
};

// Reads the cluster secret: a regular file, no permission for group or others, 16 bytes to
// 64 KiB, used as it is (no text decoding). Throws std::runtime_error naming the file.
[[nodiscard]] std::vector<uint8_t> load_cluster_secret(const std::string& path);

// Reads a bearer-token file: its first line, trimmed; refuses an empty one. Throws
// std::runtime_error naming the file.
[[nodiscard]] std::string load_token_file(const std::string& path);

// The cluster-wide configuration's digest that heartbeats carry: nodes running different
// files warn about it. The first 4 bytes of SHA-256 over the canonical JSON (to_json), so
// formatting and comments do not count; never 0.
[[nodiscard]] uint32_t config_digest(const config::cluster_config& cfg);

class cluster_daemon {
 public:
  // Loads and checks everything (file, node, secret, tokens, state dir), binds the heartbeat
  // sockets and the API. Throws std::runtime_error with a message for the operator.
  cluster_daemon(asio::io_context& io, daemon_options opts);
  ~cluster_daemon();
  cluster_daemon(const cluster_daemon&) = delete;
  cluster_daemon& operator=(const cluster_daemon&) = delete;

  // Starts heartbeats (unless start_stopped) and the API. On the io_context thread.
  void start();
  // Leaves the cluster cleanly (announces `leaving`, gives a lease back), then calls `done` on
  // the io_context. At most a few seconds.
  void shutdown(std::function<void()> done);

  // One API request ({"cmd": ...}); what it returns is the answer. On the io_context thread.
  nlohmann::json execute(const nlohmann::json& request);

  [[nodiscard]] const std::string& socket_path() const;

 private:
  struct impl;
  std::unique_ptr<impl> d_;
};

}  // namespace tandem::ctl::daemon
