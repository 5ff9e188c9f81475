// SPDX-License-Identifier: Apache-2.0
// lease_quorum (control/quorum/lease.h) under an injected clock: when it asks, what answers
// allow, and the exact instants at which quorum starts and ends.
#include "control/quorum/lease.h"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

const time_point t0 = time_point(1000s);

cluster_ref two_nodes() {
  return {0, {{0, "node-a"}, {1, "node-b"}}};
}

// ttl 9 s: renew every 3 s, margin 3 s, drift 90 ms, request timeout 1.5 s, retry 750 ms.
lease_config config_9s() {
  lease_config c;
  c.server = "witness test";
  c.ttl = 9s;
  return c;
}

lease_result granted(milliseconds expires_in, uint64_t epoch, std::string holder = "node-a") {
  lease_result r;
  r.outcome = lease_outcome::granted;
  r.holder = std::move(holder);
  r.expires_in = expires_in;
  r.epoch = epoch;
  return r;
}

lease_result other(std::string holder, milliseconds expires_in) {
  lease_result r;
  r.outcome = lease_outcome::held_by_other;
  r.holder = std::move(holder);
  r.expires_in = expires_in;
  return r;
}

lease_result failed(std::string error = "connection refused") {
  lease_result r;
  r.outcome = lease_outcome::failed;
  r.error = std::move(error);
  return r;
}

struct harness {
  std::vector<event> events;
  std::vector<loss> losses;
  lease_quorum q;

  explicit harness(lease_config cfg = config_9s(), mode m = mode::witness_lease)
      : q(m, two_nodes(), std::move(cfg), t0, [this](const event& e) { events.push_back(e); }) {
    q.on_lost([this](const loss& l) { losses.push_back(l); });
  }

  size_t count(uint32_t id) const {
    size_t n = 0;
    for (const auto& e : events)
      n += e.id == id ? 1 : 0;
    return n;
  }
  const event* last(uint32_t id) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it)
      if (it->id == id) return &*it;
    return nullptr;
  }

  // Sends the due request at `at` and answers it at `answer_at` with `r`.
  lease_request exchange(time_point at, time_point answer_at, const lease_result& r) {
    q.tick(at);
    auto req = q.next_request(at);
    EXPECT_TRUE(req.has_value()) << "no request due at " << (at - t0).count();
    if (!req) return {};
    q.tick(answer_at);
    q.on_result(req->id, r, answer_at);
    return *req;
  }

  // Drives the quorum like lease_runner: at each deadline up to `end`, tick, then answer any
  // request at once with `answer(req)`.
  template <typename F>
  void drive(time_point end, F answer) {
    for (int guard = 0; guard < 100000; ++guard) {
      const auto d = q.next_deadline();
      if (!d || *d > end) return;
      q.tick(*d);
      if (auto req = q.next_request(*d)) q.on_result(req->id, answer(*req), *d);
    }
    FAIL() << "drive() did not settle";
  }
};

TEST(lease_quorum, fills_the_documented_defaults) {
  harness h;
  const auto& c = h.q.config();
  EXPECT_EQ(c.renew_interval, 3s);
  EXPECT_EQ(c.safety_margin, 3s);
  EXPECT_EQ(c.drift_allowance, 90ms);
  EXPECT_EQ(c.request_timeout, 1500ms);
  EXPECT_EQ(c.retry_interval, 750ms);
  EXPECT_EQ(h.q.kind(), mode::witness_lease);
  EXPECT_EQ(h.q.takeover_delay(), duration::zero());
  EXPECT_FALSE(h.q.holds(t0));
  EXPECT_TRUE(h.events.empty());
}

TEST(lease_quorum, refuses_unsafe_configurations) {
  auto make = [](lease_config c, mode m = mode::witness_lease) {
    lease_quorum q(m, two_nodes(), std::move(c), t0, {});
  };
  auto c = config_9s();
  c.safety_margin = 9s;
  EXPECT_THROW(make(c), std::invalid_argument);
  c = config_9s();
  c.renew_interval = 5s;  // 5 + 1.5 > 9 - 3
  c.request_timeout = 1500ms;
  EXPECT_THROW(make(c), std::invalid_argument);
  c = config_9s();
  c.drift_allowance = 3s;  // not below the margin
  EXPECT_THROW(make(c), std::invalid_argument);
  c = config_9s();
  c.ttl = 0s;
  EXPECT_THROW(make(c), std::invalid_argument);
  EXPECT_THROW(make(config_9s(), mode::majority), std::invalid_argument);
  EXPECT_NO_THROW(make(config_9s(), mode::etcd_lease));
}

TEST(lease_quorum, a_grant_counts_from_when_the_request_was_sent) {
  harness h;
  auto req = h.q.next_request(t0);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->op, lease_op::acquire);
  EXPECT_FALSE(req->token);
  EXPECT_EQ(req->ttl, 9000ms);
  EXPECT_EQ(req->sent_at, t0);
  EXPECT_EQ(req->deadline, t0 + 1500ms);
  EXPECT_FALSE(h.q.next_request(t0 + 1ms)) << "one request in flight at a time";

  // The answer takes 1.4 s: the lease still counts from t0, not from the answer.
  h.q.on_result(req->id, granted(9000ms, 7), t0 + 1400ms);
  EXPECT_TRUE(h.q.holds(t0 + 1400ms));
  EXPECT_EQ(h.q.lease_end(), t0 + 9s);
  EXPECT_EQ(h.q.valid_until(), t0 + 6s);
  EXPECT_EQ(h.q.stop_by(), t0 + 9s - 90ms);
  EXPECT_EQ(h.q.epoch(), 7u);
  EXPECT_EQ(h.q.holder(), "node-a");
  ASSERT_EQ(h.count(quorum_events::held), 1u);
  EXPECT_EQ(h.last(quorum_events::held)->module, "quorum");
  EXPECT_EQ(h.last(quorum_events::held)->level, severity::info);
  EXPECT_NE(h.last(quorum_events::held)->message.find("epoch 7"), std::string::npos);
  // The next renewal is due renew_interval after the grant's request went out.
  EXPECT_EQ(h.q.next_deadline(), t0 + 3s);
  EXPECT_FALSE(h.q.next_request(t0 + 3s - 1ns));

  const auto st = h.q.state(t0 + 2s);
  EXPECT_TRUE(st.holds);
  EXPECT_EQ(st.kind, mode::witness_lease);
  EXPECT_EQ(st.epoch, 7u);
  EXPECT_EQ(st.valid_until, t0 + 6s);
}

TEST(lease_quorum, renewals_carry_the_epoch_and_extend_from_their_own_send_time) {
  harness h;
  h.exchange(t0, t0 + 20ms, granted(9000ms, 7));
  const auto renew = h.exchange(t0 + 3s, t0 + 3s + 500ms, granted(9000ms, 7));
  EXPECT_EQ(renew.op, lease_op::renew);
  EXPECT_EQ(renew.token, 7u);
  EXPECT_EQ(h.q.valid_until(), t0 + 3s + 6s);
  EXPECT_EQ(h.q.next_deadline(), t0 + 6s);
  // The server may grant less than asked (its max ttl): the answer's figure is what counts.
  h.exchange(t0 + 6s, t0 + 6s + 10ms, granted(4000ms, 7));
  EXPECT_EQ(h.q.valid_until(), t0 + 6s + 4s - 3s);
  EXPECT_EQ(h.count(quorum_events::held), 1u) << "renewals raise no event";
  EXPECT_TRUE(h.losses.empty());
}

TEST(lease_quorum, missed_renewals_give_quorum_up_exactly_at_lease_end_minus_margin) {
  harness h;
  h.exchange(t0, t0 + 50ms, granted(9000ms, 7));  // lease on the server ends >= t0 + 9 s
  std::vector<time_point> attempts;
  h.drive(t0 + 20s, [&](const lease_request& r) {
    attempts.push_back(r.sent_at);
    EXPECT_EQ(r.op, lease_op::renew);
    return failed();
  });
  // First renewal at 3 s, then retries every 750 ms.
  ASSERT_GE(attempts.size(), 5u);
  EXPECT_EQ(attempts[0], t0 + 3s);
  EXPECT_EQ(attempts[1], t0 + 3750ms);
  EXPECT_EQ(attempts[2], t0 + 4500ms);
  EXPECT_TRUE(h.q.holds(t0 + 6s - 1ns));
  EXPECT_FALSE(h.q.holds(t0 + 6s));
  ASSERT_EQ(h.losses.size(), 1u);
  EXPECT_EQ(h.losses[0].at, t0 + 6s) << "the timer fires at valid_until, not later";
  EXPECT_EQ(h.losses[0].stop_by, t0 + 9s - 90ms);
  EXPECT_LT(h.losses[0].stop_by, t0 + 9s) << "groups stop before the server can re-grant";
  EXPECT_EQ(h.count(quorum_events::renew_failed), 1u) << "one warning per failure streak";
  ASSERT_EQ(h.count(quorum_events::lost), 1u);
  const event* lost = h.last(quorum_events::lost);
  EXPECT_EQ(lost->level, severity::error);
  EXPECT_EQ(lost->time, t0 + 6s);
  EXPECT_NE(lost->message.find("connection refused"), std::string::npos) << lost->message;
  EXPECT_NE(lost->message.find("within 2910 ms"), std::string::npos) << lost->message;
}

TEST(lease_quorum, a_recovered_renewal_keeps_quorum_without_a_gap) {
  harness h;
  h.exchange(t0, t0 + 50ms, granted(9000ms, 7));
  h.exchange(t0 + 3s, t0 + 3100ms, failed("timeout after 1500 ms"));
  EXPECT_TRUE(h.q.holds(t0 + 3100ms));
  h.exchange(t0 + 3850ms, t0 + 3900ms, granted(9000ms, 7));
  EXPECT_EQ(h.q.valid_until(), t0 + 3850ms + 6s);
  EXPECT_EQ(h.count(quorum_events::renew_failed), 1u);
  EXPECT_EQ(h.count(quorum_events::renew_recovered), 1u);
  EXPECT_TRUE(h.losses.empty());
}

TEST(lease_quorum, answers_after_the_deadline_or_to_other_requests_are_ignored) {
  harness h;
  auto r1 = h.q.next_request(t0);
  ASSERT_TRUE(r1);
  // Given up at its deadline; the late grant must not count (the server may since have given
  // the lease to someone else, and a newer answer may have said so).
  h.q.tick(t0 + 1500ms);
  EXPECT_FALSE(h.q.in_flight());
  EXPECT_EQ(h.count(quorum_events::unreachable), 1u);
  h.q.on_result(r1->id, granted(9000ms, 7), t0 + 1600ms);
  EXPECT_FALSE(h.q.holds(t0 + 1600ms));
  auto r2 = h.q.next_request(t0 + 2250ms);
  ASSERT_TRUE(r2);
  EXPECT_NE(r2->id, r1->id);
  h.q.on_result(r1->id, granted(9000ms, 7), t0 + 2300ms);
  EXPECT_FALSE(h.q.holds(t0 + 2300ms));
  h.q.on_result(r2->id, other("node-b", 8000ms), t0 + 2300ms);
  EXPECT_FALSE(h.q.holds(t0 + 2300ms));
  EXPECT_EQ(h.q.holder(), "node-b");
  h.q.on_result(r2->id, granted(9000ms, 8), t0 + 2310ms);  // a duplicate: ignored
  EXPECT_FALSE(h.q.holds(t0 + 2310ms));
}

TEST(lease_quorum, an_answer_exactly_at_the_deadline_is_too_late) {
  harness h;
  auto r = h.q.next_request(t0);
  ASSERT_TRUE(r);
  h.q.on_result(r->id, granted(9000ms, 7), t0 + 1500ms);
  EXPECT_FALSE(h.q.holds(t0 + 1500ms));
  h.q.on_result(r->id, granted(9000ms, 7), t0 + 1499ms);
  EXPECT_FALSE(h.q.holds(t0 + 1500ms)) << "already abandoned";
}

TEST(lease_quorum, another_holder_while_holding_ends_quorum_at_once) {
  harness h;
  h.exchange(t0, t0 + 50ms, granted(9000ms, 7));
  h.exchange(t0 + 3s, t0 + 3010ms, other("node-b", 8000ms));
  EXPECT_FALSE(h.q.holds(t0 + 3010ms));
  ASSERT_EQ(h.losses.size(), 1u);
  EXPECT_EQ(h.losses[0].at, t0 + 3010ms);
  EXPECT_EQ(h.losses[0].stop_by, t0 + 3010ms) << "someone else may already run the groups";
  EXPECT_EQ(h.count(quorum_events::lease_revoked), 1u);
  EXPECT_EQ(h.q.epoch(), 0u);
  // The next attempt is an acquire, just after the other lease can have expired... capped at
  // the renew interval.
  EXPECT_EQ(h.q.next_deadline(), t0 + 3010ms + 3s);
  auto next = h.q.next_request(t0 + 6010ms);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->op, lease_op::acquire);
  EXPECT_FALSE(next->token);
}

TEST(lease_quorum, a_standby_asks_again_just_after_the_holders_lease_can_expire) {
  harness h;
  h.exchange(t0, t0 + 10ms, other("node-b", 1200ms));
  EXPECT_FALSE(h.q.holds(t0 + 10ms));
  ASSERT_EQ(h.count(quorum_events::held_elsewhere), 1u);
  EXPECT_NE(h.last(quorum_events::held_elsewhere)->message.find("node-b"), std::string::npos);
  EXPECT_EQ(h.q.next_deadline(), t0 + 10ms + 1201ms);
  h.exchange(t0 + 1211ms, t0 + 1220ms, other("node-b", 9000ms));  // node-b renewed
  EXPECT_EQ(h.count(quorum_events::held_elsewhere), 1u) << "same holder: no new event";
  EXPECT_EQ(h.q.next_deadline(), t0 + 1220ms + 3s);
  h.exchange(t0 + 4220ms, t0 + 4230ms, granted(9000ms, 9));
  EXPECT_TRUE(h.q.holds(t0 + 4230ms));
  EXPECT_EQ(h.q.valid_until(), t0 + 4220ms + 6s);
  EXPECT_TRUE(h.losses.empty());
}

TEST(lease_quorum, the_same_name_under_another_epoch_is_reported_and_waited_out) {
  harness h;
  h.exchange(t0, t0 + 10ms, other("node-a", 5000ms));
  EXPECT_FALSE(h.q.holds(t0 + 10ms));
  const event* e = h.last(quorum_events::held_elsewhere);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->level, severity::warning);
  EXPECT_NE(e->message.find("this node's name"), std::string::npos) << e->message;
}

TEST(lease_quorum, a_grant_naming_another_holder_is_not_trusted) {
  harness h;
  h.exchange(t0, t0 + 10ms, granted(9000ms, 3, "node-b"));
  EXPECT_FALSE(h.q.holds(t0 + 10ms));
  EXPECT_EQ(h.q.holder(), "node-b");
}

TEST(lease_quorum, the_servers_retry_hint_is_followed_within_the_renew_interval) {
  harness h;
  lease_result quiet = failed("HTTP 503: starting");
  quiet.retry_in = 1200ms;
  h.exchange(t0, t0 + 10ms, quiet);
  EXPECT_EQ(h.q.next_deadline(), t0 + 1210ms);
  quiet.retry_in = 60s;
  h.exchange(t0 + 1210ms, t0 + 1220ms, quiet);
  EXPECT_EQ(h.q.next_deadline(), t0 + 1220ms + 3s);
  EXPECT_EQ(h.count(quorum_events::unreachable), 1u);
}

TEST(lease_quorum, a_grant_shorter_than_the_margin_never_gives_quorum) {
  harness h;
  h.exchange(t0, t0 + 10ms, granted(2000ms, 7));
  EXPECT_FALSE(h.q.holds(t0 + 10ms));
  EXPECT_EQ(h.count(quorum_events::lease_anomaly), 1u);
  EXPECT_EQ(h.count(quorum_events::held), 0u);
}

TEST(lease_quorum, giving_up_releases_the_lease_with_its_epoch) {
  harness h;
  h.exchange(t0, t0 + 10ms, granted(9000ms, 7));
  h.q.set_contending(false, t0 + 1s);
  EXPECT_FALSE(h.q.holds(t0 + 1s));
  ASSERT_EQ(h.losses.size(), 1u);
  EXPECT_NE(h.losses[0].reason.find("gave the lease up"), std::string::npos);
  auto rel = h.q.next_request(t0 + 1s);
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->op, lease_op::release);
  EXPECT_EQ(rel->token, 7u);
  lease_result done;
  done.outcome = lease_outcome::released;
  h.q.on_result(rel->id, done, t0 + 1010ms);
  EXPECT_EQ(h.count(quorum_events::released), 1u);
  EXPECT_EQ(h.q.epoch(), 0u);
  EXPECT_FALSE(h.q.next_request(t0 + 10s)) << "not competing: nothing more to ask";
  EXPECT_FALSE(h.q.next_deadline());
  h.q.set_contending(true, t0 + 11s);
  auto again = h.q.next_request(t0 + 11s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->op, lease_op::acquire);
}

TEST(lease_quorum, a_suspend_invalidates_the_lease_at_once) {
  harness h;
  h.exchange(t0, t0 + 10ms, granted(9000ms, 7));
  h.q.invalidate(t0 + 2s, "the machine was suspended for 30000 ms");
  EXPECT_FALSE(h.q.holds(t0 + 2s));
  EXPECT_EQ(h.count(quorum_events::suspended), 1u);
  ASSERT_EQ(h.losses.size(), 1u);
  EXPECT_EQ(h.losses[0].stop_by, t0 + 2s);
  auto req = h.q.next_request(t0 + 2s);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->op, lease_op::renew) << "the server may still have it";
  EXPECT_EQ(req->token, 7u);
}

TEST(lease_quorum, a_vanished_lease_ends_quorum_and_is_acquired_again) {
  harness h(config_9s(), mode::etcd_lease);
  h.exchange(t0, t0 + 10ms, granted(9000ms, 41));
  lease_result gone;
  gone.outcome = lease_outcome::not_held;
  gone.error = "etcd lease not found";
  h.exchange(t0 + 3s, t0 + 3010ms, gone);
  EXPECT_FALSE(h.q.holds(t0 + 3010ms));
  EXPECT_EQ(h.count(quorum_events::lease_revoked), 1u);
  auto req = h.q.next_request(t0 + 3010ms);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->op, lease_op::acquire);
}

TEST(lease_quorum, partition_resolution_can_only_take_a_lease_away) {
  std::vector<event> events;
  partition_config pc;
  pc.targets = {{probe_kind::ping, "10.0.0.1"}};
  lease_quorum q(
      mode::witness_lease, two_nodes(), config_9s(), t0,
      [&](const event& e) { events.push_back(e); }, pc);
  const std::vector<uint8_t> both = {0, 1};
  q.update_membership(both, t0);
  auto req = q.next_request(t0);
  ASSERT_TRUE(req);
  q.on_result(req->id, granted(9000ms, 7), t0 + 10ms);
  EXPECT_TRUE(q.holds(t0 + 10ms)) << "all nodes up: resolution not needed";
  const std::vector<uint8_t> only_me = {0};
  q.update_membership(only_me, t0 + 1s);
  EXPECT_FALSE(q.holds(t0 + 1s)) << "peer lost and no target ever answered";
  const probe_result ok{0, true, t0 + 1100ms, "reply"};
  q.update_reachability(std::span(&ok, 1), t0 + 1100ms);
  EXPECT_TRUE(q.holds(t0 + 1100ms));
}

}  // namespace
}  // namespace tandem::ctl::quorum
