// SPDX-License-Identifier: Apache-2.0
// tandemd: the cluster daemon. Heartbeats, membership and quorum for this node; its API on a
// unix socket (tandemctl) and, when configured, on HTTP with a bearer token.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include "control/daemon/daemon.h"

namespace po = boost::program_options;
using namespace tandem;

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  std::string h = buf;
  return h.substr(0, h.find('.'));
}

}  // namespace

int main(int argc, char** argv) {
  ctl::daemon::daemon_options o;
  o.config_file = "/etc/tandem/cluster.yaml";
  po::options_description desc(
      "tandemd: the tandem cluster daemon\n"
      "usage: tandemd [--config FILE] [--node NAME] [--socket PATH] [--state-dir DIR] "
      "[--replicator-socket PATH] [--stopped]\n"
      "options");
  desc.add_options()("help,h", "this text")(
      "config,c", po::value(&o.config_file)->default_value(o.config_file), "the cluster file")(
      "node,n", po::value(&o.node), "this node's name in the file (default: the host name)")(
      "socket,s", po::value(&o.socket), "the API socket (default: api.socket of the file)")(
      "state-dir", po::value(&o.state_dir)->default_value(o.state_dir),
      "where the daemon keeps its incarnation between runs and its resources' logs")(
      "replicator-socket", po::value(&o.replicator_socket),
      "tandem-replicator's control socket (default: mirrors.control_socket of the file)")(
      "stopped", po::bool_switch(&o.start_stopped),
      "do not join the cluster until `tandemctl cluster start`");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
  } catch (const po::error& e) {
    std::cerr << "tandemd: " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  if (o.node.empty()) o.node = host_name();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::setvbuf(stderr, nullptr, _IOLBF, 0);
  try {
    asio::io_context io;
    ctl::daemon::cluster_daemon d(io, o);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const std::error_code& ec, int sig) {
      if (ec) return;
      std::fprintf(stderr, "tandemd: signal %d, leaving the cluster\n", sig);
      d.shutdown([&io] { io.stop(); });
    });
    d.start();
    std::printf("READY %s\n", d.socket_path().c_str());
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandemd: %s\n", e.what());
    return 1;
  }
  return 0;
}
