// SPDX-License-Identifier: Apache-2.0
// tandem-witness's logic: one lease per cluster, served as JSON over HTTP. Pure: the handler
// takes a parsed request and `now` and returns the response; the server only moves bytes.
//
//   POST /v1/lease          {cluster, node, ttl_ms, token?}
//        200 {holder, expires_in_ms, epoch}   granted or renewed to `node`
//        409 {holder, expires_in_ms}          another holder (or this name under another epoch)
//   POST /v1/lease/release  {cluster, node, token}
//        200 {released: true|false}           409 as above when someone else holds it
//   GET  /v1/lease/<cluster>  200 {holder, expires_in_ms, epoch} | 404
//   GET  /healthz             200 {status: "ok"|"starting", quiet_ms}   (no auth)
//   errors: 400 bad request, 401 missing/wrong bearer token, 404, 405, 415,
//           503 {error, retry_in_ms} during the start-up quiet period or when full.
//
// Rules:
// - A lease is granted for min(ttl_ms, max_ttl), counted from when the request is handled.
//   Every new grant gets a fresh epoch; epochs only grow, also across restarts (they start
//   from the wall clock in microseconds at start-up).
// - The holder renews with token = the epoch it was granted; the same node name with no token
//   or another token is refused (409) while the lease runs: a second process configured with
//   the same name, or a restarted daemon, waits for the lease to expire instead of sharing it.
// - The witness keeps its state in memory. After a start it grants nothing for quiet_period
//   (default max_ttl): every lease an earlier run granted has expired by then, so it can never
//   grant a lease twice.
// Not thread-safe: the server calls it from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "control/witness/http.h"

namespace tandem::ctl::witness {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

struct witness_config {
  std::chrono::milliseconds max_ttl{60'000};   // longest lease granted
  std::chrono::milliseconds quiet_period{-1};  // grants refused after start; <0: max_ttl
  std::string token;                           // bearer token; empty: no authentication
  size_t max_clusters = 4096;                  // leases kept at once
  uint64_t first_epoch = 0;                    // 0: wall clock in µs at start
};

// A lease change or a refused request, for the log.
using log_sink = std::function<void(std::string_view line)>;

class lease_table {
 public:
  // Throws std::invalid_argument for max_ttl < 1 ms or max_clusters == 0.
  lease_table(witness_config cfg, time_point start, log_sink log = {});

  // The response to a complete, well-formed HTTP request.
  [[nodiscard]] http_response handle(const http_request& req, time_point now);

  struct lease {
    std::string holder;
    uint64_t epoch = 0;
    time_point expires;
  };
  // The lease of a cluster, if one runs at `now`.
  [[nodiscard]] std::optional<lease> find(std::string_view cluster, time_point now) const;
  [[nodiscard]] time_point quiet_until() const noexcept { return quiet_until_; }
  [[nodiscard]] size_t size() const noexcept { return leases_.size(); }
  // Logs every request, not only changes.
  void set_verbose(bool v) noexcept { verbose_ = v; }

 private:
  http_response post_lease(const http_request& req, time_point now);
  http_response post_release(const http_request& req, time_point now);
  [[nodiscard]] http_response get_lease(std::string_view cluster, time_point now) const;
  [[nodiscard]] http_response health(time_point now) const;
  [[nodiscard]] bool authorized(const http_request& req) const;
  void log(const std::string& line) const;
  void sweep(time_point now);

  witness_config cfg_;
  time_point quiet_until_;
  uint64_t next_epoch_;
  std::map<std::string, lease, std::less<>> leases_;
  log_sink log_;
  bool verbose_ = false;
};

// A cluster or node name: 1..128 characters of [A-Za-z0-9._-].
[[nodiscard]] bool valid_name(std::string_view s) noexcept;

}  // namespace tandem::ctl::witness
