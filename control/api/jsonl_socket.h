// SPDX-License-Identifier: Apache-2.0
// JSON-lines request/response over a unix socket: the server side of a daemon's control socket
// (tandem-replicator, tandemd) on Asio, and the blocking client tandemctl and tests use.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

namespace tandem::ctl::api {

struct jsonl_server_options {
  std::string path;                   // the socket; its directory must exist
  mode_t mode = 0600;                 // the socket file's permissions (only its owner may connect)
  size_t max_line = size_t{1} << 20;  // longer requests are refused and the connection closed
  size_t max_clients = 64;            // more connections are closed at once
  // A client that sends nothing for this long is disconnected (0: never).
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
};

// One request per line, one response per line, in order, per connection. The handler runs on
// the io_context's thread; what it returns is sent back. A line that is not a JSON object gets
// {"ok":false,"error":"bad request: ..."}; an exception from the handler gets
// {"ok":false,"error":<what()>} and the connection stays open.
//
// Start-up: a socket file left by a dead process is replaced; a live server on the path makes
// the constructor throw ("already running"), so two daemons never share a socket.
class jsonl_server {
 public:
  using handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Binds and starts accepting on `io`. Throws std::system_error naming the path.
  jsonl_server(asio::io_context& io, const jsonl_server_options& opts, handler h);
  // Stops accepting, closes every connection and removes the socket file.
  ~jsonl_server();
  jsonl_server(const jsonl_server&) = delete;
  jsonl_server& operator=(const jsonl_server&) = delete;

  const std::string& path() const;
  size_t clients() const;

 private:
  struct impl;
  std::shared_ptr<impl> d_;
};

// The daemon is not there: no socket, or nobody listening on it.
class unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Blocking client: one connection, requests answered in order.
class jsonl_client {
 public:
  // Throws `unavailable` ("no daemon is listening on PATH (is it running?)") or
  // std::system_error for other failures (e.g. permission denied).
  explicit jsonl_client(const std::string& path,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~jsonl_client();
  jsonl_client(const jsonl_client&) = delete;
  jsonl_client& operator=(const jsonl_client&) = delete;

  // Sends one request and waits for its response (throws std::runtime_error on timeout, a
  // closed connection or a response that is not JSON).
  nlohmann::json call(const nlohmann::json& request);

 private:
  int fd_ = -1;
  std::string path_;
  std::chrono::milliseconds timeout_;
  std::string buffered_;
};

}  // namespace tandem::ctl::api
