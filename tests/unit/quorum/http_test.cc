// SPDX-License-Identifier: Apache-2.0
// The witness's HTTP request parser and response writer (control/witness/http.h).
#include "control/witness/http.h"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace tandem::ctl::witness {
namespace {

// Feeds `text` in pieces of `step` bytes; returns the bytes used in total.
size_t feed(request_parser& p, std::string_view text, size_t step = 1 << 20) {
  size_t used = 0;
  while (used < text.size() && !p.done() && !p.failed()) {
    const size_t n = std::min(step, text.size() - used);
    const size_t u = p.feed(std::span<const char>(text.data() + used, n));
    used += u;
    if (u < n) break;
  }
  return used;
}

const std::string lease_post =
    "POST /v1/lease HTTP/1.1\r\nHost: w\r\nContent-Type: application/json\r\n"
    "Content-Length: 13\r\n\r\n{\"cluster\":1}";

TEST(request_parser, parses_a_request_in_one_piece_or_byte_by_byte) {
  for (size_t step : {size_t{1}, size_t{7}, size_t{1} << 20}) {
    request_parser p;
    EXPECT_EQ(feed(p, lease_post, step), lease_post.size());
    ASSERT_TRUE(p.done()) << p.error_message();
    const auto& r = p.request();
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/v1/lease");
    EXPECT_EQ(r.minor_version, 1);
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("host"), "w");
    EXPECT_EQ(r.body, "{\"cluster\":1}");
    EXPECT_TRUE(r.keep_alive);
    EXPECT_FALSE(r.expect_continue);
  }
}

TEST(request_parser, leaves_a_pipelined_request_unread) {
  const std::string two = lease_post + "GET /healthz HTTP/1.1\r\nHost: w\r\n\r\n";
  request_parser p;
  const size_t used = feed(p, two);
  EXPECT_EQ(used, lease_post.size());
  ASSERT_TRUE(p.done());
  request_parser q;
  EXPECT_EQ(feed(q, std::string_view(two).substr(used)), two.size() - used);
  ASSERT_TRUE(q.done());
  EXPECT_EQ(q.request().path(), "/healthz");
  EXPECT_TRUE(q.request().body.empty());
}

TEST(request_parser, connection_semantics_and_expect) {
  request_parser a;
  feed(a, "GET /x?y=1 HTTP/1.1\r\nHost: w\r\nConnection: keep-alive, Close\r\n\r\n");
  ASSERT_TRUE(a.done());
  EXPECT_FALSE(a.request().keep_alive);
  EXPECT_EQ(a.request().path(), "/x");
  request_parser b;
  feed(b, "GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(b.done()) << "HTTP/1.0 needs no Host";
  EXPECT_FALSE(b.request().keep_alive);
  request_parser c;
  feed(c, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_TRUE(c.request().keep_alive);
  request_parser d;
  feed(d, "POST / HTTP/1.1\r\nHost: w\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_TRUE(d.head_done());
  EXPECT_FALSE(d.done());
  EXPECT_TRUE(d.request().expect_continue);
  feed(d, "abc");
  EXPECT_TRUE(d.done());
  request_parser e;
  feed(e, "\r\n\r\nGET / HTTP/1.1\r\nHost: w\r\nX-Empty:\r\n\r\n");
  ASSERT_TRUE(e.done()) << "leading empty lines are skipped";
  EXPECT_EQ(e.request().header("x-empty"), "");
}

struct bad_case {
  std::string text;
  int status;
};

TEST(request_parser, refuses_what_it_does_not_accept_with_the_right_status) {
  static constexpr char with_nul[] = "GET / HTTP/1.1\r\nHost: w\0x\r\n\r\n";
  const bad_case cases[] = {
      {"GET / HTTP/1.1\nHost: w\r\n\r\n", 400},               // bare LF
      {"GET  / HTTP/1.1\r\nHost: w\r\n\r\n", 400},            // two spaces
      {"GET / HTTP/1.1 x\r\nHost: w\r\n\r\n", 400},           // extra field
      {"G(T / HTTP/1.1\r\nHost: w\r\n\r\n", 400},             // method not a token
      {"GET x HTTP/1.1\r\nHost: w\r\n\r\n", 400},             // not origin-form
      {"GET http://a/ HTTP/1.1\r\nHost: w\r\n\r\n", 400},     // absolute-form
      {"GET / HTTP/2.0\r\nHost: w\r\n\r\n", 505},             // other major version
      {"GET / HTTX/1.1\r\nHost: w\r\n\r\n", 400},             // not HTTP
      {"GET / HTTP/1.1\r\n\r\n", 400},                        // no Host
      {"GET / HTTP/1.1\r\nHost: w\r\n folded\r\n\r\n", 400},  // obs-fold
      {"GET / HTTP/1.1\r\nHost w\r\n\r\n", 400},              // no colon
      {"GET / HTTP/1.1\r\nHo st: w\r\n\r\n", 400},            // bad name
      {"GET / HTTP/1.1\r\nHost: w\x01x\r\n\r\n", 400},        // control byte
      {std::string(with_nul, sizeof(with_nul) - 1), 400},     // NUL
      {"POST / HTTP/1.1\r\nHost: w\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: w\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: w\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: w\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nHost: w\r\nContent-Length: 4097\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nHost: w\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
  };
  for (const auto& c : cases) {
    request_parser p;
    feed(p, c.text);
    EXPECT_TRUE(p.failed()) << c.text;
    EXPECT_EQ(p.error_status(), c.status) << c.text << ": " << p.error_message();
    EXPECT_FALSE(p.error_message().empty());
  }
}

TEST(request_parser, enforces_the_head_and_field_count_limits) {
  request_limits lim;
  lim.max_head = 100;
  lim.max_headers = 3;
  request_parser big(lim);
  const std::string huge = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\n";
  EXPECT_LE(feed(big, huge), 101u) << "stops reading at the limit";
  EXPECT_TRUE(big.failed());
  EXPECT_EQ(big.error_status(), 431);
  request_parser many(lim);
  feed(many, "GET / HTTP/1.1\r\nHost: w\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n");
  EXPECT_EQ(many.error_status(), 431);
  request_parser ok(lim);
  feed(ok, "GET / HTTP/1.1\r\nHost: w\r\na: 1\r\nb: 2\r\n\r\n");
  EXPECT_TRUE(ok.done());
  // Endless empty lines before a request never grow memory and never finish a request.
  request_parser blank(lim);
  std::string pairs;
  for (int i = 0; i < 5000; ++i)
    pairs += "\r\n";
  EXPECT_EQ(feed(blank, pairs), pairs.size());
  EXPECT_EQ(blank.current(), request_parser::state::head);
}

TEST(http_response, serializes_status_length_and_connection) {
  http_response r;
  r.status = 409;
  r.body = "{\"holder\":\"b\"}";
  r.headers.emplace_back("Retry-After", "3");
  const std::string s = serialize(r, false);
  EXPECT_EQ(s,
            "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 14\r\n"
            "Cache-Control: no-store\r\nRetry-After: 3\r\nConnection: close\r\n\r\n"
            "{\"holder\":\"b\"}");
  EXPECT_NE(serialize(r, true).find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
}

}  // namespace
}  // namespace tandem::ctl::witness
