// SPDX-License-Identifier: Apache-2.0
// tandem-witness: grants one lease per cluster over HTTP, the tie-breaker for two-node clusters.
//
//   tandem-witness [--listen ADDR:PORT] [--token-file FILE] [--max-ttl 60s] [--quiet-period D]
//                  [--max-clusters N] [--verbose]
//
// docs/quorum.md describes the API, the start-up quiet period and how to deploy it.
#include <sys/stat.h>
#include <time.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include "control/witness/lease_table.h"
#include "control/witness/server.h"

namespace {

namespace po = boost::program_options;
using namespace tandem::ctl::witness;

void log_line(std::string_view line) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  std::fprintf(stderr, "[%7lld.%06ld] %.*s\n", static_cast<long long>(ts.tv_sec), ts.tv_nsec / 1000,
               static_cast<int>(line.size()), line.data());
}

std::string read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the token file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() &&
         (t.back() == '\n' || t.back() == '\r' || t.back() == ' ' || t.back() == '\t'))
    t.pop_back();
  if (t.empty()) throw std::runtime_error("the token file " + path + " is empty");
  for (char c : t) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      throw std::runtime_error("the token in " + path +
                               " contains whitespace or control characters (one line expected)");
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077) != 0)
    log_line("warning: the token file " + path + " is readable by group or others (chmod 600)");
  return t;
}

int run(int argc, char** argv) {
  std::string listen = "0.0.0.0:29080";
  std::string token_file, max_ttl = "60s", quiet;
  size_t max_clusters = 4096;
  po::options_description opts("tandem-witness options");
  opts.add_options()("help,h", "show this help")(
      "listen", po::value(&listen)->default_value(listen), "ADDR:PORT to listen on")(
      "token-file", po::value(&token_file),
      "file holding the bearer token clients must send (default: no authentication)")(
      "max-ttl", po::value(&max_ttl)->default_value(max_ttl),
      "longest lease granted (e.g. 60s, 500ms, 2m)")(
      "quiet-period", po::value(&quiet),
      "grant nothing for this long after starting (default: --max-ttl; never less than the "
      "max-ttl of the previous run)")(
      "max-clusters", po::value(&max_clusters)->default_value(max_clusters), "leases kept at once")(
      "verbose,v", "log every request, not only lease changes");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "tandem-witness: " << e.what() << "\n" << opts;
    return 2;
  }
  if (vm.count("help") != 0) {
    std::cout << "tandem-witness: one lease per cluster over HTTP (docs/quorum.md)\n" << opts;
    return 0;
  }

  witness_config cfg;
  server_options sopts;
  try {
    cfg.max_ttl = parse_duration(max_ttl);
    if (!quiet.empty()) cfg.quiet_period = parse_duration(quiet);
    cfg.max_clusters = max_clusters;
    if (!token_file.empty()) cfg.token = read_token(token_file);
    sopts.listen = listen;
  } catch (const std::exception& e) {
    std::cerr << "tandem-witness: " << e.what() << "\n";
    return 2;
  }

  asio::io_context io;
  lease_table table(cfg, clock::now(), log_line);
  table.set_verbose(vm.count("verbose") != 0);
  server srv(io, sopts,
             [&table](const http_request& req, time_point now) { return table.handle(req, now); });
  srv.start();
  const auto ep = srv.local_endpoint();
  log_line("listening on " + ep.address().to_string() + ":" + std::to_string(ep.port()) +
           ", max ttl " + std::to_string(cfg.max_ttl.count()) + " ms, no grants for " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                              table.quiet_until() - clock::now())
                              .count()) +
           " ms (start-up quiet period), " +
           (cfg.token.empty() ? "no authentication" : "bearer token required"));

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const std::error_code& ec, int sig) {
    if (ec) return;
    log_line("signal " + std::to_string(sig) + ": stopping");
    srv.stop();
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "tandem-witness: " << e.what() << "\n";
    return 1;
  }
}
