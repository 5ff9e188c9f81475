// SPDX-License-Identifier: Apache-2.0
// A small blocking HTTP client over libcurl for the lease backends: JSON POSTs with deadlines.
//
// One curl easy handle, reused so that connections are kept alive between renewals. Not
// thread-safe: one owner (the lease runner's worker thread). Timeouts are hard: the whole
// exchange (connect, send, receive) ends by the deadline given to each call.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace tandem::ctl::quorum {

struct http_reply {
  long status = 0;    // HTTP status; 0 when there was no answer
  std::string body;   // at most max_reply_body bytes
  std::string error;  // transport problem (non-empty means no usable answer)
  [[nodiscard]] bool ok() const { return error.empty() && status != 0; }
};

struct tls_options {
  std::string ca_file;    // verify the server against this CA bundle (default: system store)
  std::string cert_file;  // client certificate (PEM)
  std::string key_file;   // its private key (PEM)
};

class http_client {
 public:
  static constexpr size_t max_reply_body = 1 << 20;

  explicit http_client(tls_options tls = {});
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // POSTs `body` (Content-Type: application/json) with the extra header lines given (e.g.
  // "Authorization: Bearer x"), giving up after `timeout` (at least 1 ms is used).
  [[nodiscard]] http_reply post_json(const std::string& url, const std::string& body,
                                     std::chrono::milliseconds timeout,
                                     const std::vector<std::string>& headers = {});
  [[nodiscard]] http_reply get(const std::string& url, std::chrono::milliseconds timeout,
                               const std::vector<std::string>& headers = {});

 private:
  http_reply perform(const std::string& url, const std::string* body,
                     std::chrono::milliseconds timeout, const std::vector<std::string>& headers);

  void* curl_ = nullptr;  // CURL*
  tls_options tls_;
};

// "https://user:secret@host/x" -> "https://host/x", for messages.
[[nodiscard]] std::string redact_url(const std::string& url);

}  // namespace tandem::ctl::quorum
