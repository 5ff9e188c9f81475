// SPDX-License-Identifier: Apache-2.0
// Lease quorum: when to ask the witness / etcd, and what its answers allow.
#include "control/quorum/lease.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace tandem::ctl::quorum {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string ms(duration d) {
  return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
}

[[noreturn]] void config_error(const std::string& what) {
  throw std::invalid_argument("lease quorum: " + what);
}

}  // namespace

std::string_view to_string(lease_op op) noexcept {
  switch (op) {
    case lease_op::acquire:
      return "acquire";
    case lease_op::renew:
      return "renew";
    case lease_op::release:
      return "release";
  }
  return "?";
}

std::string_view to_string(lease_outcome o) noexcept {
  switch (o) {
    case lease_outcome::granted:
      return "granted";
    case lease_outcome::held_by_other:
      return "held by another node";
    case lease_outcome::released:
      return "released";
    case lease_outcome::not_held:
      return "not held";
    case lease_outcome::failed:
      return "failed";
  }
  return "?";
}

lease_quorum::lease_quorum(mode m, cluster_ref cluster, lease_config cfg, time_point now,
                           event_sink sink, partition_config partition)
    : quorum(std::move(cluster), std::move(partition), duration::zero(), std::move(sink)),
      mode_(m),
      cfg_(std::move(cfg)),
      next_send_(now) {
  if (m != mode::witness_lease && m != mode::etcd_lease)
    config_error("mode must be witness or etcd, not " + std::string(to_string(m)));
  if (cfg_.ttl < milliseconds(1)) config_error("ttl must be at least 1 ms");
  cfg_.ttl = duration_cast<milliseconds>(cfg_.ttl);  // the servers count in whole ms
  if (cfg_.renew_interval == duration::zero()) cfg_.renew_interval = cfg_.ttl / 3;
  if (cfg_.safety_margin == duration::zero()) cfg_.safety_margin = cfg_.ttl / 3;
  if (cfg_.drift_allowance == duration::zero()) cfg_.drift_allowance = cfg_.ttl / 100;
  if (cfg_.request_timeout == duration::zero()) cfg_.request_timeout = cfg_.renew_interval / 2;
  if (cfg_.retry_interval == duration::zero()) cfg_.retry_interval = cfg_.renew_interval / 4;
  if (cfg_.drift_allowance <= duration::zero() || cfg_.drift_allowance >= cfg_.safety_margin) {
    config_error("drift allowance (" + ms(cfg_.drift_allowance) +
                 ") must be above 0 and below the safety margin (" + ms(cfg_.safety_margin) + ")");
  }
  if (cfg_.safety_margin >= cfg_.ttl) {
    config_error("safety margin (" + ms(cfg_.safety_margin) + ") must be below the lease ttl (" +
                 ms(cfg_.ttl) + ")");
  }
  if (cfg_.renew_interval <= duration::zero() || cfg_.request_timeout <= duration::zero() ||
      cfg_.retry_interval <= duration::zero())
    config_error("renew interval, request timeout and retry interval must be positive");
  if (cfg_.renew_interval + cfg_.request_timeout > cfg_.ttl - cfg_.safety_margin) {
    config_error("renew interval (" + ms(cfg_.renew_interval) + ") + request timeout (" +
                 ms(cfg_.request_timeout) + ") must not exceed ttl - safety margin (" +
                 ms(cfg_.ttl - cfg_.safety_margin) +
                 "): a renewal sent on time could not be answered before quorum lapses");
  }
  evaluate(now);
}

bool lease_quorum::mode_holds(time_point now) const {
  return contending_ && valid_until_ && now < *valid_until_;
}

std::optional<time_point> lease_quorum::next_deadline() const {
  std::optional<time_point> next = quorum::next_deadline();
  auto consider = [&](time_point t) {
    if (!next || t < *next) next = t;
  };
  if (valid_until_ && *valid_until_ > last_now_ && contending_) consider(*valid_until_);
  if (in_flight_) {
    consider(in_flight_->deadline);
  } else if (contending_ || (release_pending_ && epoch_ != 0)) {
    consider(next_send_);
  }
  return next;
}

void lease_quorum::time_passed(time_point now) {
  expire_request(now);
}

void lease_quorum::expire_request(time_point now) {
  if (!in_flight_ || now < in_flight_->deadline) return;
  const std::string what = "no answer to " + std::string(to_string(in_flight_->op)) + " within " +
                           ms(cfg_.request_timeout);
  in_flight_.reset();
  failure(what, std::nullopt, now);
}

std::optional<lease_request> lease_quorum::next_request(time_point now) {
  expire_request(now);
  evaluate(now);  // a lapse at `now` is raised even if tick(now) was not called first
  if (in_flight_ || now < next_send_) return std::nullopt;
  lease_request req;
  if (!contending_) {
    if (!release_pending_ || epoch_ == 0) return std::nullopt;
    req.op = lease_op::release;
  } else {
    req.op = epoch_ != 0 ? lease_op::renew : lease_op::acquire;
  }
  req.id = next_id_++;
  req.ttl = duration_cast<milliseconds>(cfg_.ttl);
  if (epoch_ != 0) req.token = epoch_;
  req.sent_at = now;
  req.deadline = now + cfg_.request_timeout;
  in_flight_ = req;
  return req;
}

void lease_quorum::on_result(uint64_t id, const lease_result& r, time_point now) {
  expire_request(now);
  if (!in_flight_ || in_flight_->id != id) return;  // abandoned or unknown: never trusted
  const lease_request req = *in_flight_;
  in_flight_.reset();

  switch (r.outcome) {
    case lease_outcome::granted:
      if (req.op == lease_op::release) {
        failure("the server answered a release with a grant", std::nullopt, now);
      } else if (r.holder != node()) {
        held_by_other(r, now);
      } else {
        granted(req, r, now);
      }
      break;
    case lease_outcome::held_by_other:
      held_by_other(r, now);
      break;
    case lease_outcome::released:
      forget_lease();
      holder_.clear();
      release_pending_ = false;
      failures_ = 0;
      emit(quorum_events::released, severity::info, "lease given back to " + cfg_.server, now);
      next_send_ = now;
      break;
    case lease_outcome::not_held:
      failures_ = 0;
      if (mode_holds(now)) {
        revoke(cfg_.server + " reports this node's lease is gone (" + r.error + ")", now);
      } else {
        forget_lease();
      }
      if (req.op == lease_op::release) release_pending_ = false;
      next_send_ = now;
      break;
    case lease_outcome::failed:
      failure(r.error.empty() ? "failed" : r.error, r.retry_in, now);
      break;
  }
  evaluate(now);
}

void lease_quorum::granted(const lease_request& req, const lease_result& r, time_point now) {
  const bool was_holding = mode_holds(now);
  if (was_holding && epoch_ != 0 && r.epoch != epoch_) {
    emit(quorum_events::lease_anomaly, severity::warning,
         cfg_.server + " renewed the lease under a new epoch (" + std::to_string(r.epoch) +
             ", this node held " + std::to_string(epoch_) +
             "): its lease lapsed on the server while it was still valid here; check the " +
             "clocks and the server's ttl limit",
         now);
  }
  const duration expires_in = std::max<duration>(r.expires_in, duration::zero());
  epoch_ = r.epoch;
  holder_ = node();
  granted_sent_at_ = req.sent_at;
  lease_end_ = req.sent_at + expires_in;
  valid_until_ = *lease_end_ - cfg_.safety_margin;
  stop_by_ = *lease_end_ - cfg_.drift_allowance;
  revoke_reason_.clear();
  if (failures_ > 0 && was_holding) {
    emit(quorum_events::renew_recovered, severity::info,
         "lease renewed with " + cfg_.server + " again after " + std::to_string(failures_) +
             " failed attempt(s)",
         now);
  }
  failures_ = 0;
  if (expires_in <= cfg_.safety_margin && !short_grant_warned_) {
    short_grant_warned_ = true;
    emit(quorum_events::lease_anomaly, severity::warning,
         cfg_.server + " granted " + ms(expires_in) + ", not more than the safety margin (" +
             ms(cfg_.safety_margin) + "): such a lease never gives quorum (raise the server's " +
             "ttl limit or lower the lease ttl)",
         now);
  }
  next_send_ = req.sent_at + cfg_.renew_interval;
  if (!contending_) release_pending_ = true;  // answered after set_contending(false)
}

void lease_quorum::held_by_other(const lease_result& r, time_point now) {
  failures_ = 0;
  if (mode_holds(now)) {
    revoke(cfg_.server + " reports that " + (r.holder.empty() ? "another node" : r.holder) +
               " holds the lease this node believed it held",
           now);
  } else {
    forget_lease();
  }
  if (r.holder != holder_) {
    if (r.holder == node()) {
      emit(quorum_events::held_elsewhere, severity::warning,
           "the lease is held under this node's name (" + node() +
               ") by another process, or by this node's previous run: waiting " + ms(r.expires_in) +
               " for it to expire (two nodes with one name?)",
           now);
    } else {
      emit(quorum_events::held_elsewhere, severity::info,
           "the lease is held by " + r.holder + " (expires in " + ms(r.expires_in) +
               " unless renewed)",
           now);
    }
  }
  holder_ = r.holder;
  // The other lease expires on the server no later than now + expires_in: try just after.
  const duration wait = std::min<duration>(
      cfg_.renew_interval, std::max<duration>(r.expires_in, duration::zero()) + milliseconds(1));
  next_send_ = now + wait;
}

void lease_quorum::failure(const std::string& error,
                           std::optional<std::chrono::milliseconds> retry_in, time_point now) {
  ++failures_;
  last_error_ = error;
  if (failures_ == 1) {
    if (mode_holds(now)) {
      emit(quorum_events::renew_failed, severity::warning,
           "lease renewal with " + cfg_.server + " failed (" + error + "); quorum held for " +
               ms(*valid_until_ - now) + " more unless a renewal succeeds",
           now);
    } else {
      emit(quorum_events::unreachable, severity::warning,
           "cannot get the lease from " + cfg_.server + " (" + error + "): quorum not held", now);
    }
  }
  duration wait = cfg_.retry_interval;
  if (retry_in) wait = std::clamp<duration>(*retry_in, milliseconds(1), cfg_.renew_interval);
  next_send_ = now + wait;
  // A release that cannot be delivered is moot once the lease has expired anyway.
  if (release_pending_ && (!lease_end_ || now >= *lease_end_)) forget_lease();
}

void lease_quorum::revoke(std::string reason, time_point now) {
  revoke_reason_ = std::move(reason);
  emit(quorum_events::lease_revoked, severity::error, revoke_reason_ + ": quorum given up at once",
       now);
  forget_lease();
  stop_by_ = now;
}

void lease_quorum::forget_lease() {
  epoch_ = 0;
  release_pending_ = false;  // nothing left to give back
  lease_end_.reset();
  valid_until_.reset();
  stop_by_.reset();
}

void lease_quorum::set_contending(bool contend, time_point now) {
  if (contend == contending_) return;
  contending_ = contend;
  if (!contend) {
    revoke_reason_ = "this node gave the lease up (shutdown or demotion)";
    release_pending_ = epoch_ != 0;
  } else {
    revoke_reason_.clear();
    release_pending_ = false;
  }
  next_send_ = now;
  evaluate(now);
}

void lease_quorum::invalidate(time_point now, std::string reason) {
  if (valid_until_) {
    emit(quorum_events::suspended, severity::error,
         reason + ": the lease's remaining time cannot be trusted, quorum given up at once", now);
    revoke_reason_ = std::move(reason);
    lease_end_.reset();
    valid_until_.reset();
    stop_by_ = now;
  }
  next_send_ = now;
  evaluate(now);
}

std::string lease_quorum::loss_reason(time_point now) const {
  if (!revoke_reason_.empty()) return revoke_reason_;
  std::string r = "lease from " + cfg_.server + " not renewed in time: the last grant (epoch " +
                  std::to_string(epoch_) + ") answered a request sent " +
                  ms(now - granted_sent_at_) + " ago; quorum ends " + ms(cfg_.safety_margin) +
                  " before that lease can expire";
  if (!last_error_.empty() && failures_ > 0) r += " (last error: " + last_error_ + ")";
  return r;
}

time_point lease_quorum::stop_deadline(time_point now) const {
  return stop_by_.value_or(now);
}

std::string lease_quorum::held_detail(time_point now) const {
  return "lease from " + cfg_.server + ", epoch " + std::to_string(epoch_) + ", valid for " +
         ms(valid_until_ ? *valid_until_ - now : duration::zero()) + " (renewed every " +
         ms(cfg_.renew_interval) + ")";
}

status lease_quorum::state(time_point now) const {
  status s = quorum::state(now);
  s.holder = holder_;
  s.epoch = epoch_;
  s.valid_until = valid_until_;
  s.stop_by = stop_by_;
  if (mode_holds(now)) {
    s.detail = held_detail(now);
  } else if (!contending_) {
    s.detail = "not competing for the lease";
  } else if (!holder_.empty() && holder_ != node()) {
    s.detail = "lease held by " + holder_;
  } else if (failures_ > 0) {
    s.detail = "no lease: " + last_error_;
  } else {
    s.detail = "no lease";
  }
  return s;
}

}  // namespace tandem::ctl::quorum
