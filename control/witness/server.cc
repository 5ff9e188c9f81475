// SPDX-License-Identifier: Apache-2.0
// The witness's HTTP server: Asio coroutines, a watchdog per connection, hard limits.
#include "control/witness/server.h"

#include <array>
#include <charconv>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <nlohmann/json.hpp>

namespace tandem::ctl::witness {
namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

// Completes when `deadline` (which the connection moves forward) has passed.
asio::awaitable<void> watchdog(const time_point& deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto now = clock::now();
  while (deadline > now) {
    timer.expires_at(deadline);
    co_await timer.async_wait(asio::use_awaitable);
    now = clock::now();
  }
}

}  // namespace

tcp::endpoint parse_listen(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos)
    throw std::invalid_argument("listen address '" + s + "': no port");
  std::string host = s.substr(0, colon);
  const std::string port_s = s.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
  if (port_s.empty() || ec != std::errc() || end != port_s.data() + port_s.size() || port > 65535)
    throw std::invalid_argument("listen address '" + s + "': bad port");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  std::error_code err;
  const auto addr = asio::ip::make_address(host, err);
  if (err) throw std::invalid_argument("listen address '" + s + "': bad address");
  return {addr, static_cast<unsigned short>(port)};
}

std::chrono::milliseconds parse_duration(const std::string& s) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end == s.data())
    throw std::invalid_argument("duration '" + s + "': expected a number with ms, s or m");
  const std::string unit(end, s.data() + s.size());
  uint64_t factor = 0;
  if (unit.empty() || unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60'000;
  } else {
    throw std::invalid_argument("duration '" + s + "': unknown unit '" + unit + "'");
  }
  if (n > (uint64_t{1} << 40) / factor)
    throw std::invalid_argument("duration '" + s + "': too long");
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(n * factor));
}

server::server(asio::io_context& io, server_options opts, request_handler handler)
    : io_(io), opts_(std::move(opts)), handler_(std::move(handler)), acceptor_(io) {
  const tcp::endpoint ep = parse_listen(opts_.listen);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
}

server::~server() {
  stop();
}

tcp::endpoint server::local_endpoint() const {
  return acceptor_.local_endpoint();
}

void server::start() {
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

void server::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& s : sockets_)
    s->close(ignored);
}

asio::awaitable<void> server::accept_loop() {
  while (!stopped_) {
    auto sock = std::make_shared<tcp::socket>(io_);
    std::error_code ec;
    co_await acceptor_.async_accept(*sock, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopped_ || ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. EMFILE: try again
    }
    if (sockets_.size() >= opts_.max_connections) {
      sock->close(ec);
      continue;
    }
    sockets_.insert(sock);
    asio::co_spawn(io_, session(sock), asio::detached);
  }
}

asio::awaitable<void> server::session(socket_ptr sock) {
  time_point deadline = clock::now() + opts_.request_timeout;
  try {
    co_await (serve(*sock, deadline) || watchdog(deadline));
  } catch (const std::exception&) {
    // Only the watchdog's timer could throw here (it never does but on cancellation).
  }
  std::error_code ignored;
  sock->shutdown(tcp::socket::shutdown_both, ignored);
  sock->close(ignored);
  sockets_.erase(sock);
}

asio::awaitable<void> server::serve(tcp::socket& sock, time_point& deadline) {
  // `||` in session() waits for one side to SUCCEED: a read error must end this coroutine
  // normally, or the watchdog would keep a closed connection until its deadline.
  try {
    co_await exchange(sock, deadline);
  } catch (const std::exception&) {
    // The peer closed or reset, a timeout cancelled us, or the server stops.
  }
}

asio::awaitable<void> server::exchange(tcp::socket& sock, time_point& deadline) {
  std::array<char, 4096> buf{};
  std::string pending;  // bytes of the next request(s), read along with the current one
  bool first = true;
  for (;;) {
    request_parser parser(opts_.limits);
    bool started = !pending.empty();
    deadline = clock::now() + (first || started ? opts_.request_timeout : opts_.idle_timeout);
    bool continued = false;
    size_t used = parser.feed(pending);
    pending.erase(0, used);
    while (!parser.done() && !parser.failed()) {
      const size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
      if (!started) {
        started = true;
        deadline = clock::now() + opts_.request_timeout;
      }
      used = parser.feed(std::span<const char>(buf.data(), n));
      pending.append(buf.data() + used, n - used);
      if (parser.head_done() && !parser.done() && !parser.failed() &&
          parser.request().expect_continue && !continued) {
        continued = true;
        static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(sock, asio::buffer(cont), asio::use_awaitable);
      }
    }
    if (parser.failed()) {
      http_response r;
      r.status = parser.error_status();
      r.body = nlohmann::json{{"error", parser.error_message()}}.dump();
      deadline = clock::now() + opts_.request_timeout;
      co_await asio::async_write(sock, asio::buffer(serialize(r, false)), asio::use_awaitable);
      co_return;
    }
    const http_request& req = parser.request();
    http_response r;
    try {
      r = handler_(req, clock::now());
    } catch (const std::exception&) {
      r.status = 500;
      r.body = "{\"error\":\"internal error\"}";
    }
    const bool keep = req.keep_alive && !stopped_;
    std::string out = serialize(r, keep);
    if (req.method == "HEAD") out.resize(out.size() - r.body.size());
    deadline = clock::now() + opts_.request_timeout;
    co_await asio::async_write(sock, asio::buffer(out), asio::use_awaitable);
    if (!keep) co_return;
    first = false;
  }
}

}  // namespace tandem::ctl::witness
