// SPDX-License-Identifier: Apache-2.0
// The witness's HTTP/1.1 subset: an incremental request parser with hard limits, and responses.
//
// Accepted: origin-form targets, HTTP/1.0 and 1.1, bodies with Content-Length only (a
// Transfer-Encoding gets 501), keep-alive and pipelining. Refused with the status to send:
// malformed syntax (400), a head over max_head bytes (431), more than max_headers fields (431),
// a body over max_body bytes (413), another HTTP major version (505), 1.1 without Host (400),
// obsolete line folding, bare LF line ends, NUL or control bytes (400). The parser never reads
// past what it was fed and copies at most max_head + max_body bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::ctl::witness {

struct request_limits {
  size_t max_head = 8192;  // request line + header fields + the empty line
  size_t max_headers = 32;
  size_t max_body = 4096;
};

struct http_request {
  std::string method;
  std::string target;  // path and query, as sent
  int minor_version = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::string body;
  bool keep_alive = true;        // HTTP/1.1 without "Connection: close"
  bool expect_continue = false;  // "Expect: 100-continue"

  // The first field with this (lower-case) name.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
  [[nodiscard]] std::string_view path() const;  // target without the query
};

class request_parser {
 public:
  enum class state : uint8_t { head, body, done, error };

  explicit request_parser(request_limits limits = {}) : limits_(limits) {}

  // Feeds bytes; returns how many were used. Bytes after a complete request are not used
  // (they begin the next one, for pipelining): feed them to a fresh parser.
  size_t feed(std::span<const char> data);

  [[nodiscard]] state current() const noexcept { return state_; }
  [[nodiscard]] bool done() const noexcept { return state_ == state::done; }
  [[nodiscard]] bool failed() const noexcept { return state_ == state::error; }
  // The head is complete (a body may still be expected): time for "100 Continue".
  [[nodiscard]] bool head_done() const noexcept { return state_ != state::head; }
  // On error: the status to answer with, and why.
  [[nodiscard]] int error_status() const noexcept { return error_status_; }
  [[nodiscard]] const std::string& error_message() const noexcept { return error_message_; }
  [[nodiscard]] const http_request& request() const noexcept { return req_; }
  [[nodiscard]] http_request& request() noexcept { return req_; }

 private:
  void fail(int status, std::string message);
  void parse_head();
  bool parse_request_line(std::string_view line);
  bool parse_field(std::string_view line);

  request_limits limits_;
  state state_ = state::head;
  std::string head_;
  size_t body_left_ = 0;
  http_request req_;
  int error_status_ = 0;
  std::string error_message_;
};

struct http_response {
  int status = 200;
  std::string body;  // JSON unless content_type says otherwise
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra fields
};

[[nodiscard]] std::string_view reason_phrase(int status) noexcept;
// The response on the wire, with Content-Length and Connection fields.
[[nodiscard]] std::string serialize(const http_response& r, bool keep_alive);

}  // namespace tandem::ctl::witness
