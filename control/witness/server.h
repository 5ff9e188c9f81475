// SPDX-License-Identifier: Apache-2.0
// A small HTTP/1.1 server on Asio (C++20 coroutines): one coroutine per connection, a watchdog
// per connection for the timeouts, the request handed to a synchronous handler.
//
// Limits: request_limits (head, fields, body), request_timeout for a whole request from its
// first byte (and for writing the answer), idle_timeout between keep-alive requests,
// max_connections (more are closed at once). Malformed requests get the parser's status and the
// connection is closed. Runs on one thread: the handler needs no locking.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "control/witness/http.h"
#include "control/witness/lease_table.h"

namespace tandem::ctl::witness {

struct server_options {
  std::string listen = "0.0.0.0:29080";  // ADDR:PORT, [V6ADDR]:PORT; port 0 picks one
  request_limits limits;
  std::chrono::milliseconds request_timeout{5'000};
  std::chrono::milliseconds idle_timeout{60'000};
  size_t max_connections = 256;
};

using request_handler = std::function<http_response(const http_request&, time_point)>;

class server {
 public:
  // Binds and listens at once; throws std::system_error (address in use...) or
  // std::invalid_argument (malformed listen address).
  server(asio::io_context& io, server_options opts, request_handler handler);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  [[nodiscard]] asio::ip::tcp::endpoint local_endpoint() const;
  void start();  // the accept loop, on the io_context
  void stop();   // closes the listener and every connection
  [[nodiscard]] size_t connections() const noexcept { return sockets_.size(); }

 private:
  using socket_ptr = std::shared_ptr<asio::ip::tcp::socket>;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(socket_ptr sock);
  asio::awaitable<void> serve(asio::ip::tcp::socket& sock, time_point& deadline);
  asio::awaitable<void> exchange(asio::ip::tcp::socket& sock, time_point& deadline);

  asio::io_context& io_;
  server_options opts_;
  request_handler handler_;
  asio::ip::tcp::acceptor acceptor_;
  std::set<socket_ptr> sockets_;
  bool stopped_ = false;
};

// "10.0.0.3:29080", "[::1]:80", ":29080" (every IPv4 address). Throws std::invalid_argument.
[[nodiscard]] asio::ip::tcp::endpoint parse_listen(const std::string& s);

// "60s", "500ms", "2m", "1500" (ms). Throws std::invalid_argument.
[[nodiscard]] std::chrono::milliseconds parse_duration(const std::string& s);

}  // namespace tandem::ctl::witness
