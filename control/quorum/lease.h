// SPDX-License-Identifier: Apache-2.0
// Lease quorum (witness or etcd): held only while this node holds an unexpired lease.
//
// Sans-I/O: this class decides WHEN to ask and WHAT the answers mean; a lease_backend (the
// witness client, the etcd client) carries the requests, and lease_runner (or a test) connects
// the two on a timer:
//
//   if (auto req = q.next_request(now)) backend.perform(*req) -> q.on_result(req->id, r, now2)
//   q.tick(now) at q.next_deadline()
//
// Safety contract (docs/quorum.md has the timeline):
// - A request is stamped with `sent_at`, this node's steady clock BEFORE it goes out. A server
//   that grants a lease for E ms counts from when it received the request, later than sent_at,
//   and answers with the time it has left (expires_in <= E), so on this node's clock the lease
//   cannot expire before lease_end = sent_at + expires_in.
// - This node holds quorum while now < valid_until = lease_end - safety_margin, and its groups
//   must be stopped (or the node fenced) by stop_by = lease_end - drift_allowance (clock-rate
//   differences between this node and the server). A node that cannot renew therefore gives
//   quorum up safety_margin before the server could grant the lease to anybody else.
// - Renewals go out every renew_interval counted from the last grant's sent_at; a failed one is
//   retried every retry_interval. Only one request is in flight; an answer that comes after
//   its request's deadline, or to another request, is ignored (an old grant must never extend
//   a lease the server has since given away).
// - A server saying someone else holds the lease, or that this node's lease is gone, ends
//   quorum at once (stop_by = now).
// Not thread-safe: one owner (the daemon's strand; lease_runner calls it on its executor).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "control/quorum/quorum.h"

namespace tandem::ctl::quorum {

enum class lease_op : uint8_t { acquire, renew, release };

[[nodiscard]] std::string_view to_string(lease_op op) noexcept;

struct lease_request {
  uint64_t id = 0;
  lease_op op = lease_op::acquire;
  std::chrono::milliseconds ttl{0};  // the lease asked for
  std::optional<uint64_t> token;     // the epoch this node believes it holds (renew, release)
  time_point sent_at;                // what the answer proves counts from here
  time_point deadline;               // the answer is ignored after this
};

enum class lease_outcome : uint8_t {
  granted,        // this node holds the lease (new or renewed)
  held_by_other,  // another holder (possibly under this node's name: another process)
  released,       // the lease was given back
  not_held,       // this node's lease is gone on the server (expired, revoked, key deleted)
  failed,         // no usable answer: unreachable, timeout, refused, malformed
};

[[nodiscard]] std::string_view to_string(lease_outcome o) noexcept;

struct lease_result {
  lease_outcome outcome = lease_outcome::failed;
  std::string holder;                       // granted / held_by_other
  std::chrono::milliseconds expires_in{0};  // what the server has left of the holder's lease
  uint64_t epoch = 0;                       // granted: the lease's epoch (fencing token)
  std::string error;                        // failed / not_held: what happened
  std::optional<std::chrono::milliseconds> retry_in;  // failed: the server's hint
};

// Carries lease requests to a server. The runner calls perform() on a worker thread, one
// request at a time; it must return by req.deadline (curl timeouts) and never throw.
class lease_backend {
 public:
  virtual ~lease_backend() = default;
  [[nodiscard]] virtual lease_result perform(const lease_request& req) = 0;
  [[nodiscard]] virtual std::string describe() const = 0;  // "witness http://10.0.0.3:29080"
};

struct lease_config {
  std::string server;                       // for messages, e.g. "witness http://10.0.0.3:29080"
  duration ttl = std::chrono::seconds(10);  // asked of the server (whole ms)
  duration renew_interval{0};               // 0: ttl / 3
  duration safety_margin{0};                // 0: ttl / 3 (the stop budget, see above)
  duration drift_allowance{0};              // 0: ttl / 100
  duration request_timeout{0};              // 0: renew_interval / 2
  duration retry_interval{0};               // 0: renew_interval / 4
};

class lease_quorum final : public quorum {
 public:
  // `m` is witness_lease or etcd_lease; the holder name is this node's name in `cluster`.
  // Fills the defaults, then checks 0 < drift_allowance < safety_margin < ttl and
  // renew_interval + request_timeout <= ttl - safety_margin (a renewal sent on time is
  // answered or given up before quorum lapses); throws std::invalid_argument otherwise.
  lease_quorum(mode m, cluster_ref cluster, lease_config cfg, time_point now, event_sink sink,
               partition_config partition = {});

  [[nodiscard]] mode kind() const noexcept override { return mode_; }
  [[nodiscard]] status state(time_point now) const override;
  [[nodiscard]] duration takeover_delay() const noexcept override { return duration::zero(); }
  [[nodiscard]] std::optional<time_point> next_deadline() const override;

  // The request to send now, if one is due (at most one in flight). Call it after tick() at
  // next_deadline(). The request's sent_at is `now`: send it right away.
  [[nodiscard]] std::optional<lease_request> next_request(time_point now);
  // The answer to request `id` (or `failed` when it could not be carried out). Answers to
  // anything but the request in flight, or after its deadline, are ignored.
  void on_result(uint64_t id, const lease_result& r, time_point now);

  // Stop competing for the lease: quorum ends at once and, if this node may still hold it, the
  // next request gives it back. Stop the groups first. set_contending(true) competes again.
  void set_contending(bool contend, time_point now);
  // Drop the lease at once (e.g. the clock jumped: the machine was suspended). The next
  // request renews it if the server still has it.
  void invalidate(time_point now, std::string reason);

  [[nodiscard]] const lease_config& config() const noexcept { return cfg_; }
  [[nodiscard]] const std::string& node() const { return name_of(cluster_.self); }
  [[nodiscard]] uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] const std::string& holder() const noexcept { return holder_; }
  [[nodiscard]] std::optional<time_point> valid_until() const noexcept { return valid_until_; }
  [[nodiscard]] std::optional<time_point> stop_by() const noexcept { return stop_by_; }
  [[nodiscard]] std::optional<time_point> lease_end() const noexcept { return lease_end_; }
  [[nodiscard]] bool in_flight() const noexcept { return in_flight_.has_value(); }

 protected:
  [[nodiscard]] bool mode_holds(time_point now) const override;
  void time_passed(time_point now) override;
  [[nodiscard]] std::string loss_reason(time_point now) const override;
  [[nodiscard]] time_point stop_deadline(time_point now) const override;
  [[nodiscard]] std::string held_detail(time_point now) const override;

 private:
  void expire_request(time_point now);
  void failure(const std::string& error, std::optional<std::chrono::milliseconds> retry_in,
               time_point now);
  void granted(const lease_request& req, const lease_result& r, time_point now);
  void held_by_other(const lease_result& r, time_point now);
  void revoke(std::string reason, time_point now);  // quorum ends now, stop at once
  void forget_lease();

  mode mode_;
  lease_config cfg_;
  bool contending_ = true;
  bool release_pending_ = false;
  uint64_t next_id_ = 1;
  std::optional<lease_request> in_flight_;
  time_point next_send_;
  // This node's lease, as far as the answers prove it.
  uint64_t epoch_ = 0;  // 0: none
  std::optional<time_point> lease_end_, valid_until_, stop_by_;
  time_point granted_sent_at_{};  // sent_at of the request behind the current lease
  std::string revoke_reason_;     // why quorum ended early, for the loss event
  bool short_grant_warned_ = false;
  // What the server said about others, and failures.
  std::string holder_;
  uint32_t failures_ = 0;  // consecutive failed requests
  std::string last_error_;
};

}  // namespace tandem::ctl::quorum
