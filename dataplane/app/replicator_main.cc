// SPDX-License-Identifier: Apache-2.0
// tandem-replicator: mirrors this node's volumes (the `mirrors:` section of the cluster file, or
// a file of its own) and answers JSON-lines commands on its unix control socket.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include "control/api/jsonl_socket.h"
#include "control/api/log_line.h"
#include "control/config/mirrors_config.h"
#include "dataplane/app/replicator.h"
#include "dataplane/port/eal.h"

namespace po = boost::program_options;
using namespace tandem;

int main(int argc, char** argv) {
  std::string config_path, node, socket_path, file_prefix, fuse_mount;
  bool attach = false, kernel_devices = false;
  po::options_description desc(
      "tandem-replicator: mirrors this node's volumes and answers commands on a unix socket\n"
      "usage: tandem-replicator --config FILE --node NAME [--socket PATH] [--attach]\n"
      "                         [--fuse-mount DIR] [--kernel-devices]\n"
      "options");
  desc.add_options()("help,h", "this text")("config,c", po::value(&config_path),
                                            "cluster file, or a file with only a mirrors: section")(
      "node,n", po::value(&node), "this node's name (which replica of each volume is local)")(
      "socket,s", po::value(&socket_path),
      "control socket (default: mirrors.control_socket of the file)")(
      "attach", po::bool_switch(&attach), "attach every volume at start (as systemd does)")(
      "file-prefix", po::value(&file_prefix),
      "transport.port dpdk: the EAL's file prefix (default tandem-replicator-NODE); each "
      "replicator on one host needs its own")(
      "fuse-mount", po::value(&fuse_mount),
      "serve each attached volume as a file in a FUSE mount here (default: mirrors.fuse_mount "
      "of the file; none when both are empty)")(
      "kernel-devices", po::bool_switch(&kernel_devices),
      "serve each attached volume as /dev/tandemN through tandem.ko (default: "
      "mirrors.kernel_devices of the file)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    if (config_path.empty() || node.empty()) {
      std::cerr << "tandem-replicator: --config and --node are required\n" << desc << "\n";
      return 2;
    }
  } catch (const po::error& e) {
    std::cerr << "tandem-replicator: " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::setvbuf(stderr, nullptr, _IOLBF, 0);
  try {
    dp::app::replicator_options ro;
    ro.config = ctl::config::load_mirrors_file(config_path);
    ro.node = node;
    ro.eal_file_prefix = file_prefix;
    ro.fuse_mount = fuse_mount;
    ro.kernel_devices = kernel_devices;
    ro.log = [](std::string_view line) { ctl::api::log_line("tandem-replicator", line); };
    if (socket_path.empty()) socket_path = ro.config.control_socket;
    dp::app::replicator rep(std::move(ro));
    if (attach) {
      for (const auto& v : rep.options().config.volumes) {
        if (v.replica(rep.options().node) == nullptr) continue;  // N:1: another node's volume
        const auto r = rep.execute({{"cmd", "attach"}, {"volume", v.name}});
        if (!r["ok"].get<bool>()) {
          std::fprintf(stderr, "tandem-replicator: %s\n", r["error"].get<std::string>().c_str());
        }
      }
    }
    asio::io_context io;
    ctl::api::jsonl_server_options so;
    so.path = socket_path;
    ctl::api::jsonl_server server(
        io, so, [&rep](const nlohmann::json& request) { return rep.execute(request); });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](const std::error_code&, int sig) {
      std::fprintf(stderr, "tandem-replicator: signal %d, shutting down\n", sig);
      io.stop();
    });
    std::printf("READY %s\n", socket_path.c_str());
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem-replicator: %s\n", e.what());
    dp::eal_cleanup();
    return 1;
  }
  dp::eal_cleanup();
  return 0;
}
