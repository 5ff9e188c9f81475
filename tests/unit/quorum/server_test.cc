// SPDX-License-Identifier: Apache-2.0
// The witness's HTTP server (control/witness/server.h) on loopback: keep-alive, pipelining,
// 100-continue, timeouts, malformed requests, the connection limit; and the option parsers.
#include "control/witness/server.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <gtest/gtest.h>

namespace tandem::ctl::witness {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

// A server on 127.0.0.1 (ephemeral port) run by its own thread, echoing the request it got.
class running_server {
 public:
  explicit running_server(server_options opts = fast()) {
    opts.listen = "127.0.0.1:0";
    srv_ = std::make_unique<server>(io_, opts, [this](const http_request& r, time_point) {
      ++requests_;
      http_response resp;
      resp.body = "{\"method\":\"" + r.method + "\",\"path\":\"" + std::string(r.path()) +
                  "\",\"body\":" + std::to_string(r.body.size()) + "}";
      return resp;
    });
    srv_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~running_server() {
    io_.stop();
    thread_.join();
    srv_->stop();
  }
  static server_options fast() {
    server_options o;
    o.request_timeout = 300ms;
    o.idle_timeout = 600ms;
    o.max_connections = 4;
    return o;
  }
  unsigned short port() const { return srv_->local_endpoint().port(); }
  int requests() const { return requests_; }

 private:
  asio::io_context io_;
  std::unique_ptr<server> srv_;
  std::thread thread_;
  std::atomic<int> requests_{0};
};

struct client {
  asio::io_context io;
  tcp::socket sock{io};
  explicit client(unsigned short port) {
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void send(const std::string& s) { asio::write(sock, asio::buffer(s)); }
  // Everything until the server closes, or until `timeout`.
  std::string read_all(std::chrono::milliseconds timeout = 3s) {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + timeout;
    sock.non_blocking(true);
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      std::error_code ec;
      const size_t n = sock.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (ec) {
        closed = true;
        break;
      }
      out.append(buf, n);
    }
    return out;
  }
  // Reads until `count` responses have fully arrived (or the timeout).
  std::string read_responses(size_t count, std::chrono::milliseconds timeout = 3s) {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + timeout;
    sock.non_blocking(true);
    char buf[4096];
    auto complete = [&] {
      size_t found = 0, pos = 0;
      while (found < count) {
        const size_t head = out.find("\r\n\r\n", pos);
        if (head == std::string::npos) return false;
        const size_t cl = out.find("Content-Length: ", pos);
        if (cl == std::string::npos || cl > head) return false;
        const size_t len = std::stoul(out.substr(cl + 16));
        if (out.size() < head + 4 + len) return false;
        pos = head + 4 + len;
        ++found;
      }
      return true;
    };
    while (!complete() && std::chrono::steady_clock::now() < end) {
      std::error_code ec;
      const size_t n = sock.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        std::this_thread::sleep_for(2ms);
        continue;
      }
      if (ec) {
        closed = true;
        break;
      }
      out.append(buf, n);
    }
    return out;
  }
  bool closed = false;
};

size_t occurrences(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
    ++n;
  return n;
}

const std::string get_health = "GET /healthz HTTP/1.1\r\nHost: w\r\n\r\n";

TEST(witness_server, keeps_connections_alive_and_answers_pipelined_requests_in_order) {
  running_server s;
  client c(s.port());
  c.send(get_health + "POST /v1/lease HTTP/1.1\r\nHost: w\r\nContent-Length: 5\r\n\r\nhello" +
         get_health);
  const std::string out = c.read_responses(3);
  EXPECT_EQ(occurrences(out, "HTTP/1.1 200 OK"), 3u) << out;
  const size_t a = out.find("\"path\":\"/healthz\"");
  const size_t b = out.find("\"method\":\"POST\",\"path\":\"/v1/lease\",\"body\":5");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_EQ(occurrences(out, "Connection: keep-alive"), 3u);
  c.send(get_health);  // the same connection serves more
  EXPECT_EQ(occurrences(c.read_responses(1), "200 OK"), 1u);
  EXPECT_EQ(s.requests(), 4);
}

TEST(witness_server, closes_after_connection_close_and_http_1_0) {
  running_server s;
  client c(s.port());
  c.send("GET /healthz HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n");
  const std::string out = c.read_all(2s);
  EXPECT_TRUE(c.closed);
  EXPECT_NE(out.find("Connection: close"), std::string::npos);
  client d(s.port());
  d.send("GET /healthz HTTP/1.0\r\n\r\n");
  d.read_all(2s);
  EXPECT_TRUE(d.closed);
}

TEST(witness_server, answers_head_without_a_body) {
  running_server s;
  client c(s.port());
  c.send("HEAD /healthz HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n");
  const std::string out = c.read_all(2s);
  EXPECT_NE(out.find("Content-Length: "), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n") << out;
}

TEST(witness_server, sends_100_continue_before_the_body) {
  running_server s;
  client c(s.port());
  c.send("POST /v1/lease HTTP/1.1\r\nHost: w\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  std::string first;
  const auto end = std::chrono::steady_clock::now() + 2s;
  while (first.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < end)
    first += c.read_all(50ms);
  EXPECT_EQ(first, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("{}");
  EXPECT_NE(c.read_responses(1).find("\"body\":2"), std::string::npos);
}

TEST(witness_server, refuses_malformed_requests_and_closes) {
  running_server s;
  client c(s.port());
  c.send("GET / HTTP/1.1\r\nHost: w\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string out = c.read_all(2s);
  EXPECT_NE(out.find("HTTP/1.1 501 Not Implemented"), std::string::npos) << out;
  EXPECT_NE(out.find("Transfer-Encoding is not supported"), std::string::npos);
  EXPECT_TRUE(c.closed);
  client d(s.port());
  d.send("POST / HTTP/1.1\r\nHost: w\r\nContent-Length: 100000\r\n\r\n");
  EXPECT_NE(d.read_all(2s).find("413"), std::string::npos);
  EXPECT_EQ(s.requests(), 0);
}

TEST(witness_server, drops_a_slow_request_after_the_request_timeout) {
  running_server s;  // request timeout 300 ms
  client c(s.port());
  const auto start = std::chrono::steady_clock::now();
  c.send("GET /healthz HTTP/1.1\r\nHo");  // and never the rest
  c.read_all(3s);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(c.closed);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(s.requests(), 0);
}

TEST(witness_server, closes_idle_keep_alive_connections) {
  running_server s;  // idle timeout 600 ms
  client c(s.port());
  const auto start = std::chrono::steady_clock::now();  // before the server's idle clock starts
  c.send(get_health);
  c.read_responses(1);
  c.read_all(3s);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(c.closed);
  EXPECT_GE(took, 600ms);
  EXPECT_LT(took, 2500ms);
}

TEST(witness_server, closes_connections_beyond_the_limit) {
  running_server s;  // at most 4
  std::vector<std::unique_ptr<client>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<client>(s.port()));
    held.back()->send(get_health);
    held.back()->read_responses(1);
  }
  client extra(s.port());
  extra.read_all(1s);
  EXPECT_TRUE(extra.closed);
  held.clear();
  std::this_thread::sleep_for(100ms);  // the server notices the closes
  client again(s.port());
  again.send(get_health);
  EXPECT_NE(again.read_responses(1).find("200 OK"), std::string::npos);
}

TEST(witness_options, parse_listen_addresses) {
  EXPECT_EQ(parse_listen("10.0.0.3:29080"),
            tcp::endpoint(asio::ip::make_address("10.0.0.3"), 29080));
  EXPECT_EQ(parse_listen("[::1]:80"), tcp::endpoint(asio::ip::make_address("::1"), 80));
  EXPECT_EQ(parse_listen(":7"), tcp::endpoint(asio::ip::make_address("0.0.0.0"), 7));
  for (const char* bad : {"10.0.0.3", "10.0.0.3:", "10.0.0.3:70000", "host:80", "1.2.3.4:8x"})
    EXPECT_THROW((void)parse_listen(bad), std::invalid_argument) << bad;
}

TEST(witness_options, parse_durations) {
  EXPECT_EQ(parse_duration("60s"), 60s);
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("2m"), 120s);
  EXPECT_EQ(parse_duration("1500"), 1500ms);
  for (const char* bad : {"", "s", "10h", "-1s", "1.5s", "99999999999999999999s"})
    EXPECT_THROW((void)parse_duration(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace tandem::ctl::witness
