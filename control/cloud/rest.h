// SPDX-License-Identifier: Apache-2.0
// What every cloud API call shares, whatever the provider: the retry loop (exponential backoff
// with jitter, bounded by the caller's deadline, one credential refresh), the failure kinds a
// caller tells apart, and the error that carries the provider's code, message and request id.
// aws_api (SigV4) and bearer_api (Google, Azure) build on it.
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "control/cloud/http.h"

namespace tandem::ctl::cloud {

struct retry_policy {
  int max_attempts = 5;                  // botocore's default (Azure's guidance says the same)
  std::chrono::milliseconds base{100};   // the first backoff; doubles with each retry
  std::chrono::milliseconds cap{2'000};  // no single backoff is longer
};

// Why a call failed, as far as the caller needs to tell cases apart.
enum class cloud_failure {
  network,       // no answer (refused, reset, DNS, TLS) after every attempt
  timeout,       // no answer in time
  throttled,     // still throttled (RequestLimitExceeded, Throttling, 429) at the deadline
  server,        // still 5xx at the deadline
  unauthorized,  // 401/403: not authorized, bad signature, unknown or expired key or token
  not_found,     // a named resource does not exist (*.NotFound, NoSuch*, 404)
  client,        // any other 4xx: the provider refused the request itself (409, 412, 400...)
  malformed,     // a 2xx whose body is not the expected document
};
std::string_view to_string(cloud_failure f) noexcept;

class cloud_error : public std::runtime_error {
 public:
  cloud_error(cloud_failure kind, long http_status, std::string code, std::string message,
              std::string request_id, int attempts);

  [[nodiscard]] cloud_failure kind() const noexcept { return kind_; }
  [[nodiscard]] long http_status() const noexcept { return http_status_; }
  [[nodiscard]] const std::string& code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  [[nodiscard]] const std::string& request_id() const noexcept { return request_id_; }
  [[nodiscard]] int attempts() const noexcept { return attempts_; }
  // Whether nothing can be concluded from it: no answer, still throttled or failing on the
  // provider's side (a monitor's check is then inconclusive rather than failed).
  [[nodiscard]] bool unanswered() const noexcept;

 private:
  cloud_failure kind_;
  long http_status_;
  std::string code_, message_, request_id_;
  int attempts_;
};

struct api_reply {
  long status = 0;
  std::string body;
  std::string request_id;  // the provider's request id header, "" if none
  int attempts = 0;
};

// How one error reply is to be treated.
struct error_class {
  cloud_failure kind;
  bool retry;
  bool refresh_credentials;  // expired credentials or token: fetch them again, then retry once
};

// What the retry loop needs from the provider layer.
struct rest_exchange {
  std::string endpoint;  // for messages: "no answer from <endpoint>"
  // The request of one attempt (signed or with a fresh token), with `left` as its timeout.
  std::function<http_call(std::chrono::milliseconds left)> build;
  // The provider's reading of an error reply (status != 0, not 2xx): fills code, message and
  // request_id (which holds the header's id on entry) and returns the class.
  std::function<error_class(const http_reply& r, std::string& code, std::string& message,
                            std::string& request_id)>
      classify;
  // Fetch credentials or the token again (once per call, when classify says so).
  std::function<void()> refresh;
  // The reply's request id header, if the provider has one.
  std::function<std::string(const http_reply&)> request_id;
};

using rest_clock = std::chrono::steady_clock;
using sleep_fn = std::function<void(std::chrono::milliseconds)>;

// Sends the exchange until a 2xx comes, a failure that must not be retried comes, the attempts
// are spent or the next attempt would start after `deadline`; then throws cloud_error. Each
// attempt's timeout is cut to what is left. `sleep` empty: std::this_thread::sleep_for.
api_reply call_with_retries(http_client& http, const retry_policy& policy, const sleep_fn& sleep,
                            const rest_exchange& ex, rest_clock::time_point deadline);

}  // namespace tandem::ctl::cloud
