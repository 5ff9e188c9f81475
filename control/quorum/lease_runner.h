// SPDX-License-Identifier: Apache-2.0
// Drives a lease_quorum with a lease_backend on an Asio executor: a timer at the quorum's next
// deadline, requests carried out on one worker thread (libcurl blocks), answers handed back on
// the executor. Everything the quorum does (events, on_lost) happens on the executor.
//
// It also watches for a suspended machine: CLOCK_MONOTONIC (steady_clock) stops during suspend
// while the lease server's time goes on, so when CLOCK_BOOTTIME - CLOCK_MONOTONIC grows the
// lease's remaining time is void and the quorum is invalidated at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include "control/quorum/lease.h"

namespace tandem::ctl::quorum {

class lease_runner {
 public:
  // `q` and `b` must outlive the runner. Call start(), stop() and poke() on the executor (or
  // while it is not running).
  lease_runner(asio::any_io_executor ex, lease_quorum& q, lease_backend& b);
  ~lease_runner();
  lease_runner(const lease_runner&) = delete;
  lease_runner& operator=(const lease_runner&) = delete;

  void start();
  // Stops driving the quorum and waits for a request in flight (its deadline bounds the wait).
  void stop();
  // The owner changed the quorum (set_contending, update_membership...): look again now.
  void poke();

 private:
  struct shared_state {
    std::atomic<bool> stopped{false};
  };
  void drive();
  void arm();
  void check_suspend(time_point now);

  asio::any_io_executor ex_;
  lease_quorum& q_;
  lease_backend& b_;
  asio::steady_timer timer_;
  asio::thread_pool worker_{1};
  std::shared_ptr<shared_state> shared_ = std::make_shared<shared_state>();
  bool started_ = false;
  int64_t suspend_offset_ns_ = 0;  // CLOCK_BOOTTIME - CLOCK_MONOTONIC at the last look
};

// CLOCK_BOOTTIME - CLOCK_MONOTONIC in ns: grows by the time the machine was suspended.
[[nodiscard]] int64_t suspended_ns();

}  // namespace tandem::ctl::quorum
