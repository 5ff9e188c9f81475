// SPDX-License-Identifier: Apache-2.0
// tandem-lab-fileserver: the small service the failover-group tests and the demo run on a
// mirrored file system. HTTP on the lab's public lan:
//   GET /NAME  -> the file's bytes (404 when absent); every answer names the serving node
//                 in "X-Served-By"
//   PUT /NAME  -> written durably (temporary file, fsync, rename, fsync of the directory): the
//                 201 is sent only once the data is on the volume, so an acknowledged PUT must
//                 survive a failover
//   GET /      -> the node's name (a liveness probe)
//
//   tandem-lab-fileserver --listen 0.0.0.0:8080 --root /mnt/web --name node1
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include "control/witness/server.h"

namespace {

namespace po = boost::program_options;
using tandem::ctl::witness::http_request;
using tandem::ctl::witness::http_response;

bool plain_name(std::string_view n) {
  if (n.empty() || n.size() > 200 || n == "." || n == "..") return false;
  for (char c : n) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool write_durably(const std::string& dir, const std::string& name, const std::string& body,
                   std::string& error) {
  const std::string tmp = dir + "/." + name + ".tmp";
  const std::string path = dir + "/" + name;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "open " + tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < body.size()) {
    const ssize_t n = ::write(fd, body.data() + done, body.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "fsync/rename " + path + ": " + std::strerror(errno);
    return false;
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool dir_synced = dfd >= 0 && ::fsync(dfd) == 0;
  if (dfd >= 0) ::close(dfd);
  if (!dir_synced) error = "fsync " + dir + ": " + std::strerror(errno);
  return dir_synced;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen, root, name;
  po::options_description opts("tandem-lab-fileserver");
  opts.add_options()("listen", po::value(&listen)->default_value("0.0.0.0:8080"), "ADDR:PORT")(
      "root", po::value(&root)->required(), "directory served")(
      "name", po::value(&name)->required(), "this node's name (X-Served-By)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "tandem-lab-fileserver: " << e.what() << "\n" << opts;
    return 2;
  }
  if (!std::filesystem::is_directory(root)) {
    std::cerr << "tandem-lab-fileserver: " << root << " is not a directory\n";
    return 1;
  }
  asio::io_context io;
  tandem::ctl::witness::server_options so;
  so.listen = listen;
  so.limits.max_body = 4 << 20;
  so.request_timeout = std::chrono::seconds(30);
  auto handler = [&](const http_request& r, auto) {
    http_response res;
    res.content_type = "application/octet-stream";
    res.headers.emplace_back("X-Served-By", name);
    const std::string path(r.path());
    const std::string file = path.size() > 1 ? path.substr(1) : "";
    if (file.empty() && r.method == "GET") {
      res.content_type = "text/plain";
      res.body = name + "\n";
      return res;
    }
    if (!plain_name(file)) {
      res.status = 400;
      res.body = "bad file name\n";
      return res;
    }
    if (r.method == "GET") {
      std::ifstream in(root + "/" + file, std::ios::binary);
      if (!in) {
        res.status = 404;
        res.body = "no such file\n";
        return res;
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      res.body = ss.str();
      return res;
    }
    if (r.method == "PUT") {
      std::string error;
      if (!write_durably(root, file, r.body, error)) {
        res.status = 500;
        res.body = error + "\n";
        return res;
      }
      res.status = 201;
      res.body = "stored\n";
      return res;
    }
    res.status = 405;
    res.headers.emplace_back("Allow", "GET, PUT");
    return res;
  };
  try {
    tandem::ctl::witness::server srv(io, so, handler);
    srv.start();
    asio::signal_set sigs(io, SIGTERM, SIGINT);
    sigs.async_wait([&](const std::error_code&, int) {
      srv.stop();
      io.stop();
    });
    std::cout << "serving " << root << " on " << listen << " as " << name << "\n" << std::flush;
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "tandem-lab-fileserver: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
