// SPDX-License-Identifier: Apache-2.0
// The JSON-lines control socket: requests answered in order, bad input answered with an error,
// one daemon per socket, stale sockets replaced, 0600 permissions, a helpful client error.
#include "control/api/jsonl_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace tandem::ctl::api {
namespace {

using json = nlohmann::json;

// A temp directory for the socket, removed at the end.
struct temp_dir : test::temp_dir {
  temp_dir() : test::temp_dir("tandem-api") {}
};

// A server answering {"op":"echo",...} with the request, {"op":"fail"} with an exception.
struct running_server {
  asio::io_context io;
  std::unique_ptr<jsonl_server> server;
  std::thread thread;
  int calls = 0;

  explicit running_server(const std::string& path) {
    jsonl_server_options o;
    o.path = path;
    o.max_line = 4096;
    server = std::make_unique<jsonl_server>(io, o, [this](const json& r) {
      ++calls;
      if (r.value("op", "") == "fail") throw std::runtime_error("volume db: not found");
      return json{{"ok", true}, {"echo", r}};
    });
    thread = std::thread([this] { io.run(); });
  }
  ~running_server() {
    io.stop();
    thread.join();
  }
};

TEST(jsonl_socket, requests_are_answered_in_order_on_one_connection) {
  temp_dir d;
  running_server s(d.path() + "/ctl.sock");
  jsonl_client c(d.path() + "/ctl.sock");
  for (int i = 0; i < 50; ++i) {
    const json r = c.call({{"op", "echo"}, {"i", i}});
    ASSERT_TRUE(r["ok"].get<bool>());
    EXPECT_EQ(r["echo"]["i"], i);
  }
  EXPECT_EQ(s.calls, 50);
}

TEST(jsonl_socket, bad_requests_get_an_error_and_the_connection_stays) {
  temp_dir d;
  const std::string path = d.path() + "/ctl.sock";
  running_server s(path);
  jsonl_client c(path);
  const json failed = c.call({{"op", "fail"}});
  EXPECT_FALSE(failed["ok"].get<bool>());
  EXPECT_EQ(failed["error"], "volume db: not found");
  const json not_object = c.call(json::array({1, 2}));
  EXPECT_FALSE(not_object["ok"].get<bool>());
  EXPECT_NE(not_object["error"].get<std::string>().find("not a JSON object"), std::string::npos);
  EXPECT_TRUE(c.call({{"op", "echo"}})["ok"].get<bool>());
  EXPECT_EQ(s.calls, 2);
}

// Raw socket for what the client cannot send (garbage, over-long lines).
std::string raw_exchange(const std::string& path, const std::string& bytes) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (got.find('\n') != std::string::npos && bytes.size() < 4096) break;
  }
  ::close(fd);
  return got;
}

TEST(jsonl_socket, garbage_and_overlong_lines_are_refused) {
  temp_dir d;
  const std::string path = d.path() + "/ctl.sock";
  running_server s(path);
  const json garbage = json::parse(raw_exchange(path, "{not json\n"));
  EXPECT_FALSE(garbage["ok"].get<bool>());
  EXPECT_NE(garbage["error"].get<std::string>().find("bad request: not JSON"), std::string::npos);
  // Longer than max_line (4096): an error, then the server closes the connection.
  const std::string reply = raw_exchange(path, std::string(10000, 'x'));
  const json overlong = json::parse(reply.substr(0, reply.find('\n')));
  EXPECT_NE(overlong["error"].get<std::string>().find("longer than 4096"), std::string::npos);
  EXPECT_EQ(s.calls, 0);
}

TEST(jsonl_socket, the_socket_is_private_and_removed_at_the_end) {
  temp_dir d;
  const std::string path = d.path() + "/ctl.sock";
  {
    running_server s(path);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(jsonl_socket, one_daemon_per_socket_and_stale_sockets_are_replaced) {
  temp_dir d;
  const std::string path = d.path() + "/ctl.sock";
  {
    running_server s(path);
    asio::io_context io2;
    jsonl_server_options o;
    o.path = path;
    try {
      jsonl_server second(io2, o, [](const json&) { return json{}; });
      ADD_FAILURE() << "a second server took over a live socket";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("already running"), std::string::npos) << e.what();
    }
  }
  // A socket file whose process died: bound, then closed without unlink.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(fd);
  ASSERT_TRUE(std::filesystem::exists(path));
  running_server s(path);
  jsonl_client c(path);
  EXPECT_TRUE(c.call({{"op", "echo"}})["ok"].get<bool>());
  // Something else at the path is never removed.
  const std::string file = d.path() + "/plain";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    std::fclose(f);
  }
  asio::io_context io3;
  jsonl_server_options o;
  o.path = file;
  EXPECT_THROW(jsonl_server(io3, o, [](const json&) { return json{}; }), std::system_error);
  EXPECT_TRUE(std::filesystem::exists(file));
}

TEST(jsonl_socket, a_client_without_a_daemon_is_told_so) {
  temp_dir d;
  try {
    jsonl_client c(d.path() + "/nobody.sock");
    ADD_FAILURE() << "connected to nothing";
  } catch (const unavailable& e) {
    EXPECT_EQ(std::string(e.what()),
              "no daemon is listening on " + d.path() + "/nobody.sock (is it running?)");
  }
}

}  // namespace
}  // namespace tandem::ctl::api
