// SPDX-License-Identifier: Apache-2.0
// Incremental HTTP/1.1 request parsing with hard limits, and response serialisation.
#include "control/witness/http.h"

#include <algorithm>
#include <charconv>

namespace tandem::ctl::witness {
namespace {

// RFC 9110 token characters.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Field values: visible characters, space, tab and obs-text; no other control characters.
bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

// Request targets: visible ASCII only (no space, no control, no obs-text).
bool is_target(std::string_view s) {
  return !s.empty() && s[0] == '/' && std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Does a comma-separated field value list `token` (case-insensitively)?
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = trim(value.substr(0, comma));
    if (lower(item) == token) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::optional<std::string_view> http_request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::string_view http_request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

void request_parser::fail(int status, std::string message) {
  state_ = state::error;
  error_status_ = status;
  error_message_ = std::move(message);
}

size_t request_parser::feed(std::span<const char> data) {
  size_t used = 0;
  while (used < data.size() && (state_ == state::head || state_ == state::body)) {
    if (state_ == state::head) {
      // Copy up to the end of the head, one byte at a time past the limit check: the head
      // ends at the first CRLF CRLF.
      const char c = data[used++];
      if (head_.size() >= limits_.max_head) {
        fail(431, "request head larger than " + std::to_string(limits_.max_head) + " bytes");
        break;
      }
      head_.push_back(c);
      if (c == '\n') {
        if (head_.size() < 2 || head_[head_.size() - 2] != '\r') {
          fail(400, "line not ended by CRLF");
          break;
        }
        if (head_.size() == 2) {  // an empty line before the request line (RFC 9112 2.2)
          head_.clear();
          continue;
        }
        if (head_.size() >= 4 && head_.compare(head_.size() - 4, 4, "\r\n\r\n") == 0) parse_head();
      }
    } else {
      const size_t n = std::min(body_left_, data.size() - used);
      req_.body.append(data.data() + used, n);
      used += n;
      body_left_ -= n;
      if (body_left_ == 0) state_ = state::done;
    }
  }
  return used;
}

void request_parser::parse_head() {
  std::string_view rest(head_);
  rest.remove_suffix(2);  // the empty line's CRLF
  bool first = true;
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    if (first) {
      if (!parse_request_line(line)) return;
      first = false;
    } else if (!parse_field(line)) {
      return;
    }
  }
  if (req_.minor_version == 1 && !req_.header("host")) return fail(400, "no Host header");
  if (req_.header("transfer-encoding"))
    return fail(501, "Transfer-Encoding is not supported (send Content-Length)");
  size_t length = 0;
  std::optional<std::string_view> seen;
  for (const auto& [k, v] : req_.headers) {
    if (k != "content-length") continue;
    if (seen && *seen != v) return fail(400, "conflicting Content-Length headers");
    seen = v;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size())
      return fail(ec == std::errc::result_out_of_range ? 413 : 400, "bad Content-Length");
  }
  if (length > limits_.max_body)
    return fail(413, "body larger than " + std::to_string(limits_.max_body) + " bytes");
  const auto connection = req_.header("connection");
  if (req_.minor_version == 0) {
    req_.keep_alive = connection && has_token(*connection, "keep-alive");
  } else {
    req_.keep_alive = !(connection && has_token(*connection, "close"));
  }
  const auto expect = req_.header("expect");
  req_.expect_continue = expect && lower(trim(*expect)) == "100-continue";
  head_.clear();
  head_.shrink_to_fit();
  body_left_ = length;
  req_.body.reserve(length);
  state_ = length == 0 ? state::done : state::body;
}

bool request_parser::parse_request_line(std::string_view line) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return fail(400, "malformed request line"), false;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "malformed request line"), false;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed method"), false;
  if (!is_target(target)) return fail(400, "malformed request target"), false;
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "malformed HTTP version"), false;
  if (version[5] != '1') return fail(505, "only HTTP/1.x is supported"), false;
  req_.method = std::string(method);
  req_.target = std::string(target);
  req_.minor_version = version[7] == '0' ? 0 : 1;
  return true;
}

bool request_parser::parse_field(std::string_view line) {
  if (line.empty() || line[0] == ' ' || line[0] == '\t')
    return fail(400, "obsolete line folding"), false;
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "header field without ':'"), false;
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = trim(line.substr(colon + 1));
  if (!is_token(name)) return fail(400, "malformed header field name"), false;
  if (!is_field_value(value)) return fail(400, "control character in a header field"), false;
  if (req_.headers.size() >= limits_.max_headers)
    return fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields"), false;
  req_.headers.emplace_back(lower(name), std::string(value));
  return true;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string serialize(const http_response& r, bool keep_alive) {
  std::string out =
      "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(reason_phrase(r.status)) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\n";
  for (const auto& [k, v] : r.headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

}  // namespace tandem::ctl::witness
