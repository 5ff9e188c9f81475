// SPDX-License-Identifier: Apache-2.0
// lease_runner (control/quorum/lease_runner.h): a lease quorum driven on a real Asio executor
// with a fake backend on the worker thread, in real (short) time.
#include "control/quorum/lease_runner.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;

// Grants every request (or fails it), after `delay`; records what it was asked.
class fake_backend final : public lease_backend {
 public:
  lease_result perform(const lease_request& req) override {
    std::this_thread::sleep_for(delay.load());
    std::lock_guard lock(mu_);
    seen_.push_back(req);
    lease_result r;
    if (req.op == lease_op::release) {
      r.outcome = lease_outcome::released;
      return r;
    }
    if (failing) {
      r.outcome = lease_outcome::failed;
      r.error = "injected";
      return r;
    }
    r.outcome = lease_outcome::granted;
    r.holder = "node-a";
    r.expires_in = req.ttl;
    r.epoch = 5;
    return r;
  }
  std::string describe() const override { return "fake"; }
  std::vector<lease_request> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::atomic<bool> failing{false};
  std::atomic<std::chrono::milliseconds> delay{1ms};

 private:
  std::mutex mu_;
  std::vector<lease_request> seen_;
};

lease_config fast() {
  lease_config c;
  c.server = "fake";
  c.ttl = 600ms;  // renew 200 ms, margin 200 ms, drift 6 ms, timeout 100 ms, retry 50 ms
  return c;
}

TEST(lease_runner, acquires_renews_and_gives_quorum_up_on_time) {
  asio::io_context io;
  fake_backend backend;
  std::vector<event> events;
  std::vector<loss> losses;
  lease_quorum q(mode::witness_lease, {0, {{0, "node-a"}, {1, "node-b"}}}, fast(), clock::now(),
                 [&](const event& e) { events.push_back(e); });
  q.on_lost([&](const loss& l) { losses.push_back(l); });
  lease_runner runner(io.get_executor(), q, backend);
  runner.start();
  io.run_for(1100ms);
  EXPECT_TRUE(q.holds(clock::now()));
  const auto seen = backend.seen();
  ASSERT_GE(seen.size(), 4u) << "an acquire and renewals every 200 ms";
  EXPECT_EQ(seen[0].op, lease_op::acquire);
  EXPECT_EQ(seen[1].op, lease_op::renew);
  EXPECT_EQ(seen[1].token, 5u);
  for (size_t i = 2; i < seen.size(); ++i) {
    const auto gap = seen[i].sent_at - seen[i - 1].sent_at;
    EXPECT_GE(gap, 200ms);
    EXPECT_LT(gap, 350ms) << "renewals follow the renew interval";
  }
  EXPECT_TRUE(losses.empty());

  // The server goes away: quorum ends 400 ms after the last granted request was sent.
  backend.failing = true;
  const auto before = backend.seen().size();
  io.run_for(900ms);
  ASSERT_EQ(losses.size(), 1u);
  ASSERT_TRUE(q.lease_end());
  const time_point last_grant_sent = *q.lease_end() - 600ms;
  const auto all = backend.seen();
  bool found = false;
  for (const auto& r : all)
    found = found || r.sent_at == last_grant_sent;
  EXPECT_TRUE(found) << "the lease counts from a request's own sent_at";
  EXPECT_GE(losses[0].at, last_grant_sent + 400ms);
  EXPECT_LT(losses[0].at, last_grant_sent + 400ms + 150ms) << "the timer fires on time";
  EXPECT_EQ(losses[0].stop_by, last_grant_sent + 600ms - 6ms);
  EXPECT_FALSE(q.holds(clock::now()));
  // Retries every 50 ms after a failure.
  EXPECT_GE(all.size() - before, 6u);
  runner.stop();
}

TEST(lease_runner, stop_waits_for_the_request_in_flight_and_nothing_runs_after_it) {
  asio::io_context io;
  fake_backend backend;
  backend.delay = 80ms;  // below the 100 ms request timeout
  lease_quorum q(mode::witness_lease, {0, {{0, "node-a"}}}, fast(), clock::now(), {});
  {
    lease_runner runner(io.get_executor(), q, backend);
    runner.start();
    io.run_for(20ms);  // the acquire is on the worker now
    const auto start = std::chrono::steady_clock::now();
    runner.stop();
    EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms);
    EXPECT_EQ(backend.seen().size(), 1u);
  }
  io.run_for(100ms);  // the completion posted by the worker finds the runner stopped
  EXPECT_FALSE(q.holds(clock::now()));
  EXPECT_TRUE(q.in_flight()) << "the answer was never handed to the quorum";
}

TEST(lease_runner, poke_makes_a_change_take_effect_at_once) {
  asio::io_context io;
  fake_backend backend;
  lease_quorum q(mode::witness_lease, {0, {{0, "node-a"}}}, fast(), clock::now(), {});
  lease_runner runner(io.get_executor(), q, backend);
  runner.start();
  io.run_for(100ms);
  ASSERT_TRUE(q.holds(clock::now()));
  q.set_contending(false, clock::now());
  runner.poke();
  io.run_for(50ms);
  const auto seen = backend.seen();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.back().op, lease_op::release);
  runner.stop();
}

TEST(lease_runner, measures_suspend_time) {
  const int64_t a = suspended_ns();
  const int64_t b = suspended_ns();
  EXPECT_GT(a, -1'000'000) << "BOOTTIME never behind MONOTONIC but for read jitter";
  EXPECT_LT(std::abs(b - a), 1'000'000) << "no suspend between two reads";
}

}  // namespace
}  // namespace tandem::ctl::quorum
