// SPDX-License-Identifier: Apache-2.0
// lease_runner: the lease quorum on an Asio timer, its requests on a worker thread.
#include "control/quorum/lease_runner.h"

#include <time.h>

#include <algorithm>
#include <utility>

#include <asio/post.hpp>

namespace tandem::ctl::quorum {
namespace {

int64_t ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A jump smaller than this is reading jitter between the two clocks, not a suspend.
constexpr int64_t suspend_threshold_ns = 20'000'000;
// Look at least this often, for the suspend check.
constexpr auto max_sleep = std::chrono::seconds(1);

}  // namespace

int64_t suspended_ns() {
  return ns(CLOCK_BOOTTIME) - ns(CLOCK_MONOTONIC);
}

lease_runner::lease_runner(asio::any_io_executor ex, lease_quorum& q, lease_backend& b)
    : ex_(std::move(ex)), q_(q), b_(b), timer_(ex_) {}

lease_runner::~lease_runner() {
  try {
    stop();
  } catch (...) {  // cancel() and join() only throw on broken invariants; never from here
  }
}

void lease_runner::start() {
  if (started_ || shared_->stopped) return;
  started_ = true;
  suspend_offset_ns_ = suspended_ns();
  drive();
}

void lease_runner::stop() {
  if (shared_->stopped.exchange(true)) return;
  timer_.cancel();
  worker_.join();
}

void lease_runner::poke() {
  if (started_ && !shared_->stopped) drive();
}

void lease_runner::check_suspend(time_point now) {
  const int64_t offset = suspended_ns();
  const int64_t jump = offset - suspend_offset_ns_;
  suspend_offset_ns_ = offset;
  if (jump > suspend_threshold_ns)
    q_.invalidate(now, "the machine was suspended for " + std::to_string(jump / 1'000'000) + " ms");
}

void lease_runner::drive() {
  const time_point now = clock::now();
  check_suspend(now);
  q_.tick(now);
  if (auto req = q_.next_request(now)) {
    asio::post(worker_, [this, s = shared_, req = *req] {
      lease_result r = b_.perform(req);
      asio::post(ex_, [this, s, id = req.id, r = std::move(r)] {
        if (s->stopped) return;
        const time_point at = clock::now();
        check_suspend(at);
        q_.on_result(id, r, at);
        drive();
      });
    });
  }
  arm();
}

void lease_runner::arm() {
  const time_point now = clock::now();
  time_point at = now + max_sleep;
  if (auto d = q_.next_deadline()) at = std::min(at, std::max(*d, now));
  timer_.expires_at(at);  // cancels a wait already pending
  timer_.async_wait([this, s = shared_](const std::error_code& ec) {
    if (ec || s->stopped) return;
    drive();
  });
}

}  // namespace tandem::ctl::quorum
