// SPDX-License-Identifier: Apache-2.0
// The retry loop every cloud call goes through; its rules follow botocore's _retry.json and
// Azure's guidance (at most 5 attempts, exponential backoff) with equal jitter, so that two
// nodes retrying the same throttled account do not stay in step.
#include "control/cloud/rest.h"

#include <algorithm>
#include <random>
#include <thread>

namespace tandem::ctl::cloud {

std::string_view to_string(cloud_failure f) noexcept {
  switch (f) {
    case cloud_failure::network:
      return "network";
    case cloud_failure::timeout:
      return "timeout";
    case cloud_failure::throttled:
      return "throttled";
    case cloud_failure::server:
      return "server";
    case cloud_failure::unauthorized:
      return "unauthorized";
    case cloud_failure::not_found:
      return "not_found";
    case cloud_failure::client:
      return "client";
    case cloud_failure::malformed:
      return "malformed";
  }
  return "?";
}

namespace {

std::string error_text(cloud_failure kind, long status, const std::string& code,
                       const std::string& message, const std::string& request_id, int attempts) {
  std::string s;
  if (kind == cloud_failure::timeout) {
    s = "Timeout occurred";
    if (!message.empty()) s += ": " + message;
  } else if (!code.empty()) {
    s = code + ": " + message;
  } else {
    s = message;
  }
  std::string detail;
  if (status != 0) detail = "HTTP " + std::to_string(status);
  if (!request_id.empty()) detail += (detail.empty() ? "" : ", ") + ("request id " + request_id);
  if (attempts > 1) detail += (detail.empty() ? "" : ", ") + std::to_string(attempts) + " attempts";
  if (!detail.empty()) s += " (" + detail + ")";
  return s;
}

}  // namespace

cloud_error::cloud_error(cloud_failure kind, long http_status, std::string code,
                         std::string message, std::string request_id, int attempts)
    : std::runtime_error(error_text(kind, http_status, code, message, request_id, attempts)),
      kind_(kind),
      http_status_(http_status),
      code_(std::move(code)),
      message_(std::move(message)),
      request_id_(std::move(request_id)),
      attempts_(attempts) {}

bool cloud_error::unanswered() const noexcept {
  switch (kind_) {
    case cloud_failure::network:
    case cloud_failure::timeout:
    case cloud_failure::throttled:
    case cloud_failure::server:
      return true;
    default:
      return false;
  }
}

api_reply call_with_retries(http_client& http, const retry_policy& policy, const sleep_fn& sleep,
                            const rest_exchange& ex, rest_clock::time_point deadline) {
  using std::chrono::milliseconds;
  thread_local std::minstd_rand jitter{std::random_device{}()};
  bool refreshed = false;
  int attempt = 0;
  for (;;) {
    ++attempt;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - rest_clock::now());
    if (left <= milliseconds(0))
      throw cloud_error(cloud_failure::timeout, 0, "",
                        "no time left before the deadline for " + ex.endpoint, "", attempt - 1);

    http_reply r = http.send(ex.build(left));
    std::string request_id = ex.request_id ? ex.request_id(r) : std::string();
    if (r.status >= 200 && r.status < 300)
      return {r.status, std::move(r.body), std::move(request_id), attempt};

    error_class cls{};
    std::string code, message;
    if (r.status == 0) {
      cls = {r.timed_out ? cloud_failure::timeout : cloud_failure::network, true, false};
      message = r.timed_out ? "no answer from " + ex.endpoint + " in time: " + r.error
                            : "no answer from " + ex.endpoint + ": " + r.error;
    } else {
      cls = ex.classify(r, code, message, request_id);
    }

    if (cls.refresh_credentials && !refreshed && ex.refresh) {
      refreshed = true;
      ex.refresh();
      continue;  // at once: nothing to wait for
    }
    if (cls.retry && attempt < policy.max_attempts) {
      // Equal jitter: half the exponential step for sure, the other half at random.
      const milliseconds step = std::min<milliseconds>(
          policy.cap, policy.base * (int64_t{1} << std::min(attempt - 1, 20)));
      const auto half = std::max<milliseconds::rep>(step.count() / 2, 0);
      const milliseconds wait =
          milliseconds(half + std::uniform_int_distribution<milliseconds::rep>(0, half)(jitter));
      // Retry only if an attempt still fits after the backoff; a timeout already spent `left`.
      if (rest_clock::now() + wait < deadline) {
        if (sleep)
          sleep(wait);
        else
          std::this_thread::sleep_for(wait);
        continue;
      }
    }
    throw cloud_error(cls.kind, r.status, std::move(code), std::move(message),
                      std::move(request_id), attempt);
  }
}

}  // namespace tandem::ctl::cloud
