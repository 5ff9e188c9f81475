// SPDX-License-Identifier: Apache-2.0
// Alert webhooks: events as JSON POSTs, filtered per webhook, queued and retried off the executor.
//
// The dispatcher lives on an Asio executor (tandemd's io_context): post() and stats() are
// called there and never block. Deliveries run on one worker thread per dispatcher (libcurl
// blocks), one at a time, in order per webhook; results and backoff timers come back on the
// executor. docs/alerts.md describes the payload, the filtering and the retries.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "control/cluster/event.h"
#include "control/config/cluster_config.h"

namespace tandem::ctl::quorum {
class http_client;
}

namespace tandem::ctl::alerts {

// What one webhook POST carries: one event, with where it comes from.
struct alert {
  uint64_t serial = 0;  // the daemon's event counter: 1, 2, ... (gaps: events nobody sent)
  std::string cluster;  // the cluster's name
  std::string node;     // the node reporting the event (this daemon's node)
  std::string module;   // "heartbeat", "quorum", "tandemd", ...
  uint32_t id = 0;      // the event's id within its module
  std::string name;     // "<module>.<short name>", e.g. "heartbeat.node_down"
  cluster::severity level = cluster::severity::info;
  std::string message;
  std::string time;                  // RFC 3339, UTC, milliseconds: "2025-01-31T12:00:00.250Z"
  std::optional<std::string> about;  // the node the event is about, by name
  std::optional<uint8_t> link;       // the interconnect it is about
};

// The payload: {"serial", "cluster", "node", "time", "severity", "module", "id", "name",
// "message"} and "about" / "link" when set.
[[nodiscard]] nlohmann::json to_json(const alert& a);

// Does the event name match the pattern? '*' matches any run of characters (dots included, and
// none), everything else matches itself: "heartbeat.node_down", "group.*", "*", "*.lost".
[[nodiscard]] bool name_matches(std::string_view pattern, std::string_view name) noexcept;

// Should this webhook get this alert? Its severity is at least min_severity, and the webhook
// lists no events or one of its patterns matches the alert's name.
[[nodiscard]] bool matches(const config::webhook_config& w, const alert& a) noexcept;

// Reads a token file: its content with surrounding whitespace trimmed. Throws
// std::runtime_error naming the file when it cannot be read.
[[nodiscard]] std::string read_token_file(const std::string& path);

struct dispatch_options {
  size_t queue_limit = 256;  // alerts waiting per webhook; when full the oldest is dropped
  int retries = 3;           // after a failed attempt; an alert gets at most retries + 1
  std::chrono::milliseconds first_backoff{1'000};  // before the first retry, doubled for each
};

// One webhook's counters since the dispatcher started.
struct webhook_stats {
  std::string url;               // as configured, without user:password
  uint64_t sent = 0;             // alerts delivered (a 2xx answer)
  uint64_t failed_attempts = 0;  // attempts that failed (transport error or non-2xx)
  uint64_t failed = 0;           // alerts given up after retries + 1 failed attempts
  uint64_t dropped = 0;          // alerts pushed out of a full queue (the oldest goes)
  uint64_t queued = 0;           // alerts waiting or in delivery now
  std::string last_error;        // why the last attempt failed; empty when it succeeded
  long last_status = 0;          // HTTP status of the last attempt; 0: no answer (or none yet)
};

// An alert given up (after its last attempt), reported on the executor.
struct delivery_failure {
  size_t webhook = 0;  // index in alerts_config::webhooks
  std::string url;     // without user:password
  uint64_t serial = 0;
  std::string name;
  int attempts = 0;
  std::string error;  // the last attempt's
};

class webhook_dispatcher {
 public:
  using token_reader = std::function<std::string(const std::string& path)>;
  using failure_handler = std::function<void(const delivery_failure&)>;

  // Reads every webhook's token_file with `read_token` at once; throws std::runtime_error
  // naming the file when one cannot be read, is empty or holds control characters.
  webhook_dispatcher(asio::any_io_executor ex, const config::alerts_config& cfg,
                     dispatch_options opts = {}, token_reader read_token = read_token_file);
  ~webhook_dispatcher();  // stop()
  webhook_dispatcher(const webhook_dispatcher&) = delete;
  webhook_dispatcher& operator=(const webhook_dispatcher&) = delete;

  // Queues the alert for every webhook it matches; returns how many that is. On the executor;
  // never blocks. Ignored after stop().
  size_t post(const alert& a);

  // Called on the executor for every alert given up. Must not destroy the dispatcher.
  void on_failure(failure_handler h) { on_failure_ = std::move(h); }

  // One entry per configured webhook, in configuration order. On the executor.
  [[nodiscard]] std::vector<webhook_stats> stats() const;

  // Sends nothing further (queued alerts are discarded), cancels backoffs and waits for the
  // request in flight, which its webhook's timeout bounds. On the executor, or while it does
  // not run; idempotent.
  void stop();
  // Sends nothing further and cancels backoffs at once, without waiting for the request in
  // flight (its answer is dropped): for replacing the dispatcher on the executor, which must
  // not block. stop() (or the destructor) later waits for it. On the executor.
  void retire();

 private:
  struct target;  // a webhook's immutable settings, shared with the worker
  struct pending {
    uint64_t serial = 0;
    std::string name;
    std::shared_ptr<const std::string> body;
  };
  struct hook;
  struct shared_state;

  void kick(size_t i);
  void attempt(size_t i);
  void on_reply(size_t i, long status, const std::string& error);

  asio::any_io_executor ex_;
  dispatch_options opts_;
  std::vector<std::unique_ptr<hook>> hooks_;
  failure_handler on_failure_;
  std::shared_ptr<shared_state> shared_;
  std::unique_ptr<quorum::http_client> client_;  // used on the worker only
  bool joined_ = false;
  std::unique_ptr<asio::thread_pool> worker_;  // one thread; absent without webhooks
};

}  // namespace tandem::ctl::alerts
