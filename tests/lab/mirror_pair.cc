// SPDX-License-Identifier: Apache-2.0
// Two lab hosts running tandem-replicator (mirror_pair.h).
#include "tests/lab/mirror_pair.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "control/api/jsonl_socket.h"
#include "dataplane/port/eal_args.h"
#include "tests/lab/dpdk.h"

namespace tandem::lab {

using namespace std::chrono_literals;

mirror_pair::mirror_pair(const mirror_pair_options& o)
    : l_(cluster_options(2, 1, false)),
      dir_(l_.log_dir()),
      image_dir_(o.image_dir.empty() ? dir_ : o.image_dir),
      config_(dir_ + "/mirrors.yaml"),
      port_(o.port),
      fuse_(o.fuse),
      volume_bytes_(o.mib << 20) {
  if (port_ != "socket" && port_ != "memif" && port_ != "af_packet") {
    throw std::invalid_argument("mirror_pair: port " + port_ + " (socket, memif or af_packet)");
  }
  if (image_dir_ != dir_) {
    std::filesystem::create_directories(image_dir_);
    l_.register_path(image(0));
    l_.register_path(image(1));
  }
  std::ofstream f(config_);
  f << "mirrors:\n  transport: {port: " << (port_ == "socket" ? "socket" : "dpdk")
    << (o.transport.empty() ? "" : ", ") << o.transport
    << "}\n  volumes:\n    - name: db\n      data: " << image(0) << "\n      meta: " << meta(0)
    << "\n      size: " << o.mib << "MiB\n";
  if (!o.volume_extra.empty()) f << "      " << o.volume_extra << "\n";
  f << "      replicas:\n";
  const std::string memif = port_ == "memif" ? memif_socket(l_, "mirror") : "";
  for (int i = 0; i < 2; ++i) {
    f << "        - {node: " << node(i) << ", address: " << l_.address(node(i), 1)
      << ", port: 7790, data: " << image(i) << ", meta: " << meta(i);
    if (o.history) f << ", history: " << history(i);
    if (port_ == "memif") {
      f << ", dpdk_device: \"" << dp::memif_vdev(0, i == 0 ? "server" : "client", memif, 0, 9000)
        << "\", mtu: 9000";
    } else if (port_ == "af_packet") {
      f << ", dpdk_device: \"" << dp::af_packet_vdev(0, l_.iface(1)) << "\"";
    }
    f << "}\n";
  }
}

void mirror_pair::fresh_disks() {
  for (int i = 0; i < 2; ++i) {
    std::filesystem::remove(image(i));
    std::filesystem::remove(meta(i));
    std::ofstream(image(i)).close();
    std::filesystem::resize_file(image(i), volume_bytes_);
  }
}

void mirror_pair::start(int i) {
  const std::string name = "replicator" + std::to_string(starts_++);
  std::vector<std::string> argv = {TANDEM_REPLICATOR, "--config", config_, "--node",
                                   node(i),           "--socket", sock(i)};
  if (port_ != "socket") argv.insert(argv.end(), {"--file-prefix", eal_prefix(l_, name, node(i))});
  if (fuse_) {
    // The replicator unmounts on a clean exit; after a kill -9 the janitor removes the dead mount.
    l_.register_mount(fuse_mount(i));
    argv.insert(argv.end(), {"--fuse-mount", fuse_mount(i)});
  }
  rep_[i] = &l_.spawn_ready(node(i), name, argv, "the replicator");
}

mirror_pair::json mirror_pair::call(int i, const json& request) {
  ctl::api::jsonl_client c(sock(i), 30s);
  return c.call(request);
}

mirror_pair::json mirror_pair::ok(int i, const json& request) {
  json r = call(i, request);
  if (!r.value("ok", false)) {
    throw std::runtime_error(node(i) + " " + request.dump() + ": " + r.dump());
  }
  return r;
}

mirror_pair::json mirror_pair::volume(int i) {
  return call(i, {{"cmd", "status"}, {"volume", "db"}})["volumes"][0];
}

bool mirror_pair::wait_for(int i, const std::function<bool(const json&)>& pred,
                           std::chrono::milliseconds limit, std::chrono::milliseconds interval) {
  const auto deadline = clock::now() + limit;
  while (clock::now() < deadline) {
    if (pred(volume(i))) return true;
    std::this_thread::sleep_for(interval);
  }
  return false;
}

void mirror_pair::bring_up() {
  fresh_disks();
  for (int i = 0; i < 2; ++i) {
    start(i);
    ok(i, {{"cmd", "create"}, {"volume", "db"}});
    ok(i, {{"cmd", "attach"}, {"volume", "db"}});
  }
  ok(0, {{"cmd", "promote"}, {"volume", "db"}, {"force", true}});
  const auto in_sync = [](const json& v) {
    return v["connection"] == "connected" && v["disk"] == "up_to_date";
  };
  for (int i = 0; i < 2; ++i) {
    if (!wait_for(i, in_sync, 60s)) {
      throw std::runtime_error(node(i) +
                               " did not reach connected/up_to_date: " + volume(i).dump());
    }
  }
}

void mirror_pair::kill9(int i) {
  rep_[i]->signal(SIGKILL);
  rep_[i]->wait(10s);
}

void mirror_pair::take_over_and_stop(int i) {
  ok(i, {{"cmd", "disconnect"}, {"volume", "db"}});
  ok(i, {{"cmd", "promote"}, {"volume", "db"}});
  ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  rep_[i]->stop();
}

}  // namespace tandem::lab
