// SPDX-License-Identifier: Apache-2.0
// JSON-lines request/response over a unix socket: Asio server, blocking client.
#include "control/api/jsonl_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>
#include <utility>

#include <asio/local/stream_protocol.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

namespace tandem::ctl::api {
namespace {

using json = nlohmann::json;
using stream = asio::local::stream_protocol;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) {
    throw std::system_error(ENAMETOOLONG, std::generic_category(),
                            "control socket path \"" + path + "\" (at most " +
                                std::to_string(sizeof a.sun_path - 1) + " bytes)");
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// 0 when something accepts connections on `path`, else the connect() errno.
int probe(const std::string& path) {
  const sockaddr_un a = unix_address(path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  const int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

json error_response(const std::string& why) {
  return {{"ok", false}, {"error", why}};
}

}  // namespace

struct jsonl_server::impl : std::enable_shared_from_this<jsonl_server::impl> {
  struct session : std::enable_shared_from_this<session> {
    std::shared_ptr<impl> server;
    stream::socket sock;
    asio::streambuf in;
    std::string out;
    asio::steady_timer idle;

    session(std::shared_ptr<impl> s, stream::socket so)
        : server(std::move(s)),
          sock(std::move(so)),
          in(server->opts.max_line + 1),
          idle(sock.get_executor()) {}

    void start() {
      arm_idle();
      read();
    }

    void arm_idle() {
      if (server->opts.idle_timeout.count() == 0) return;
      idle.expires_after(server->opts.idle_timeout);
      idle.async_wait([self = shared_from_this()](const std::error_code& ec) {
        if (!ec) self->stop();
      });
    }

    void read() {
      asio::async_read_until(
          sock, in, '\n', [self = shared_from_this()](const std::error_code& ec, size_t n) {
            if (ec) {
              // Includes a line longer than max_line (asio::error::not_found): say why, close.
              if (ec == asio::error::not_found) {
                self->reply(error_response("bad request: longer than " +
                                           std::to_string(self->server->opts.max_line) + " bytes"),
                            false);
                return;
              }
              self->stop();
              return;
            }
            std::string line(asio::buffers_begin(self->in.data()),
                             asio::buffers_begin(self->in.data()) + static_cast<ptrdiff_t>(n));
            self->in.consume(n);
            self->arm_idle();
            self->reply(self->server->answer(line), true);
          });
    }

    void reply(const json& response, bool keep) {
      // Invalid UTF-8 (a command's output quoted in a message) is replaced, never thrown.
      out = response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      asio::async_write(sock, asio::buffer(out),
                        [self = shared_from_this(), keep](const std::error_code& ec, size_t) {
                          if (ec || !keep) {
                            self->stop();
                          } else {
                            self->read();
                          }
                        });
    }

    void stop() {
      std::error_code ignored;
      idle.cancel();
      sock.shutdown(stream::socket::shutdown_both, ignored);
      sock.close(ignored);
      server->sessions.erase(shared_from_this());
    }
  };

  asio::io_context& io;
  jsonl_server_options opts;
  handler on_request;
  stream::acceptor acceptor;
  std::set<std::shared_ptr<session>> sessions;
  bool closed = false;

  impl(asio::io_context& i, const jsonl_server_options& o, handler h)
      : io(i), opts(o), on_request(std::move(h)), acceptor(i) {}

  json answer(const std::string& line) {
    json request;
    try {
      request = json::parse(line);
    } catch (const json::exception& e) {
      return error_response(std::string("bad request: not JSON (") + e.what() + ")");
    }
    if (!request.is_object()) return error_response("bad request: not a JSON object");
    try {
      return on_request(request);
    } catch (const std::exception& e) {
      return error_response(e.what());
    }
  }

  void bind() {
    const std::string& path = opts.path;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        throw std::system_error(EEXIST, std::generic_category(),
                                "control socket " + path + " exists and is not a socket");
      }
      const int err = probe(path);
      if (err == 0) {
        throw std::system_error(EADDRINUSE, std::generic_category(),
                                "control socket " + path + ": another daemon is already running");
      }
      if (err != ECONNREFUSED) throw_errno(err, "control socket " + path);
      ::unlink(path.c_str());  // left by a process that died
    }
    std::error_code ec;
    acceptor.open(stream(), ec);
    if (ec) throw std::system_error(ec, "control socket " + path);
    // The socket file is created by bind(): create it with no permissions for others at all,
    // then open it up to `mode`, so there is no moment when others could connect.
    const mode_t old = ::umask(0177);
    acceptor.bind(stream::endpoint(path), ec);
    ::umask(old);
    if (ec) throw std::system_error(ec, "control socket " + path);
    if (::chmod(path.c_str(), opts.mode) != 0) throw_errno(errno, "chmod " + path);
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, "control socket " + path);
  }

  void accept() {
    acceptor.async_accept(
        [self = shared_from_this()](const std::error_code& ec, stream::socket sock) {
          if (self->closed) return;
          if (!ec) {
            if (self->sessions.size() >= self->opts.max_clients) {
              std::error_code ignored;
              sock.close(ignored);
            } else {
              auto s = std::make_shared<session>(self, std::move(sock));
              self->sessions.insert(s);
              s->start();
            }
          }
          self->accept();
        });
  }

  void close() {
    if (closed) return;
    closed = true;
    std::error_code ignored;
    acceptor.close(ignored);
    for (auto s : std::set<std::shared_ptr<session>>(sessions))
      s->stop();
    ::unlink(opts.path.c_str());
  }
};

jsonl_server::jsonl_server(asio::io_context& io, const jsonl_server_options& opts, handler h)
    : d_(std::make_shared<impl>(io, opts, std::move(h))) {
  d_->bind();
  d_->accept();
}

jsonl_server::~jsonl_server() {
  d_->close();
}

const std::string& jsonl_server::path() const {
  return d_->opts.path;
}

size_t jsonl_server::clients() const {
  return d_->sessions.size();
}

// ---- client ------------------------------------------------------------------------------

jsonl_client::jsonl_client(const std::string& path, std::chrono::milliseconds timeout)
    : path_(path), timeout_(timeout) {
  const sockaddr_un a = unix_address(path);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw_errno(errno, "socket");
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == ENOENT || err == ECONNREFUSED) {
      throw unavailable("no daemon is listening on " + path + " (is it running?)");
    }
    throw_errno(err, "connect to " + path);
  }
}

jsonl_client::~jsonl_client() {
  if (fd_ >= 0) ::close(fd_);
}

nlohmann::json jsonl_client::call(const nlohmann::json& request) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  auto wait_for = [&](short events) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        throw std::runtime_error("no answer from " + path_ + " within " +
                                 std::to_string(timeout_.count()) + " ms");
      }
      pollfd p{fd_, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc > 0) return;
      if (rc < 0 && errno != EINTR) throw_errno(errno, "poll " + path_);
    }
  };
  const std::string line =
      request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    wait_for(POLLOUT);
    const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw_errno(errno, "send to " + path_);
    }
    sent += static_cast<size_t>(n);
  }
  for (;;) {
    const size_t nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      const std::string response = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      try {
        return json::parse(response);
      } catch (const json::exception&) {
        throw std::runtime_error(path_ + " answered something that is not JSON");
      }
    }
    wait_for(POLLIN);
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) throw std::runtime_error(path_ + " closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw_errno(errno, "recv from " + path_);
    }
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace tandem::ctl::api
