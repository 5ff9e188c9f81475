// SPDX-License-Identifier: Apache-2.0
// The lab's two-node tandem cluster with a witness and a client (ha_cluster.h).
#include "tests/lab/ha_cluster.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "control/api/jsonl_socket.h"

namespace tandem::lab {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

tandemd_cluster_options options_of(const ha_cluster_options& o, std::string* dir) {
  tandemd_cluster_options t;
  t.nodes = 2;
  t.interconnects = 1;
  t.public_lan = true;
  t.interval = o.interval;
  t.timeout = o.timeout;
  t.extra_hosts = {{"witness", {0}}, {"client", {0}}};
  const std::string lease = o.lease;
  t.quorum_of = [lease](const lab& l) {
    return "{mode: witness, witness: {url: \"http://" + l.address("witness", 0) +
           ":29080\", lease: " + lease + ", renew: 1s}, stop_timeout: 2s}";
  };
  t.extra_of = [o, dir](const lab& l) {
    *dir = l.log_dir();
    const std::string d = l.log_dir();
    std::string y;
    y += "mirrors:\n  transport: {port: socket, keepalive: 100ms, dead_peer: 1s}\n";
    y += "  volumes:\n    - name: db\n      data: " + d + "/node1.img\n      meta: " + d +
         "/node1.meta\n      size: " + std::to_string(o.mib) + "MiB\n      replicas:\n";
    for (int i = 0; i < 2; ++i) {
      const std::string n = tandemd_cluster::node(i);
      y += "        - {node: " + n + ", address: " + l.address(n, 1) + ", port: 7790, data: " + d +
           "/" + n + ".img, meta: " + d + "/" + n + ".meta}\n";
    }
    y += "groups:\n  - name: web\n    nodes: [node1, node2]\n    failback: " + o.failback +
         "\n    resources:\n"
         "      - {name: data, type: mirror, params: {volume: db, frontend: fuse}}\n"
         "      - name: fs\n        type: filesystem\n        params: {mirror: data}\n"
         "        per_node:\n";
    for (int i = 0; i < 2; ++i) {
      const std::string n = tandemd_cluster::node(i);
      y += "          " + n + ": {mount_point: " + d + "/" + n + ".mnt}\n";
    }
    y += "      - name: http\n        type: exec\n        depends_on: [fs]\n"
         "        params:\n          mode: async\n          start: \"exec " TANDEM_LAB_FILESERVER
         " --listen 0.0.0.0:8080 --root " +
         d + "/$TANDEM_NODE.mnt --name $TANDEM_NODE\"\n";
    if (!o.http_activation.empty()) y += "        activation: {" + o.http_activation + "}\n";
    if (!o.vip.empty()) {
      y += "      - name: vip\n        type: floating_ip\n        depends_on: [http]\n"
           "        params: {address: " +
           o.vip + "/24, interface: eth0, announce_count: 3, announce_interval: 100ms}\n";
    }
    if (!o.monitors.empty()) y += "monitors:\n" + o.monitors;
    return y;
  };
  return t;
}

}  // namespace

ha_cluster::ha_cluster(const ha_cluster_options& o)
    : c_(options_of(o, &dir_)), mib_(o.mib), vip_(o.vip) {
  for (int i = 0; i < 2; ++i) {
    // Removed even if this process dies: the janitor unmounts what is left.
    net().register_mount(mount_point(i));
    net().register_mount(fuse_mount(i));
    c_.set_args(i, {"--replicator-socket", rep_sock(i)});
  }
}

ha_cluster::~ha_cluster() {
  cleanup();
}

void ha_cluster::cleanup() noexcept {
  // A clean stop first: tandemd stops the group (unmounts, unbinds the loop device, demotes).
  for (int i = 0; i < 2; ++i) {
    try {
      if (c_.running(i)) c_.terminate(i);
    } catch (...) {
    }
  }
  for (int i = 0; i < 2; ++i) {
    try {
      if (rep_[i] != nullptr && rep_[i]->running()) (void)rep_[i]->stop(SIGTERM, 10s);
    } catch (...) {
    }
    clear_remains(i);
  }
}

void ha_cluster::clear_remains(int i) noexcept {
  // A node killed mid-run leaves its ext4 mount on a loop device over a dead FUSE file (the
  // kernel then shows the loop's backing file as "/db"), as a crashed machine would until it
  // reboots.
  ::umount2(mount_point(i).c_str(), MNT_DETACH);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream bf(e.path() / "loop" / "backing_file");
    std::string backing;
    std::getline(bf, backing);
    if (backing.rfind(fuse_mount(i), 0) == 0 || backing == "/db") {
      (void)ctl::run({"losetup", "-d", "/dev/" + name}, 5s);
    }
  }
  if (rep_[i] == nullptr || !rep_[i]->running()) ::umount2(fuse_mount(i).c_str(), MNT_DETACH);
  drop_vip(i);
}

void ha_cluster::drop_vip(int i) noexcept {
  if (vip_.empty()) return;
  try {
    (void)net().exec(node(i), {"ip", "addr", "del", vip_ + "/24", "dev", "eth0"}, 5s);
  } catch (...) {
  }
}

void ha_cluster::start_replicator(int i) {
  const std::string name = "replicator" + std::to_string(rep_starts_++);
  rep_[i] = &net().spawn_ready(node(i), name,
                               {TANDEM_REPLICATOR, "--config", c_.config(), "--node", node(i),
                                "--socket", rep_sock(i), "--fuse-mount", fuse_mount(i), "--attach"},
                               "the replicator");
}

ha_cluster::json ha_cluster::replicator(int i, const json& request) {
  ctl::api::jsonl_client c(rep_sock(i), 30s);
  json r = c.call(request);
  if (!r.value("ok", false))
    throw std::runtime_error(node(i) + " replicator " + request.dump() + ": " + r.dump());
  return r;
}

void ha_cluster::start() {
  // The witness first: it grants nothing during its quiet period (its max ttl).
  net().spawn("witness", "witness",
              {TANDEM_WITNESS, "--listen", net().address("witness", 0) + ":29080", "--max-ttl",
               "3s", "--verbose"});
  // A fresh volume on both nodes, fully synced, with ext4 made on node1.
  for (int i = 0; i < 2; ++i) {
    fs::remove(image(i));
    fs::remove(meta(i));
    std::ofstream(image(i)).close();
    fs::resize_file(image(i), mib_ << 20);
    fs::create_directories(mount_point(i));
    start_replicator(i);
    replicator(i, {{"cmd", "create"}, {"volume", "db"}});
    replicator(i, {{"cmd", "attach"}, {"volume", "db"}});
  }
  replicator(0, {{"cmd", "promote"}, {"volume", "db"}, {"force", true}});
  const auto synced = [&](int i) {
    const json v = replicator(i, {{"cmd", "status"}, {"volume", "db"}})["volumes"][0];
    return v["connection"] == "connected" && v["disk"] == "up_to_date" && v["dirty_bytes"] == 0;
  };
  if (!tandemd_cluster::wait_until([&] { return synced(0) && synced(1); }, 60s, 50ms))
    throw std::runtime_error("the volume did not sync:\n" + logs());
  const json lp = replicator(0, {{"cmd", "loop"}, {"volume", "db"}});
  std::string dev = lp.value("device", "");
  if (dev.empty() && lp.contains("loop")) dev = lp["loop"].get<std::string>();
  if (dev.empty()) throw std::runtime_error("loop: no device in " + lp.dump());
  net().register_loop(dev);
  const ctl::run_result mk = ctl::run({"mkfs.ext4", "-q", "-F", "-E", "nodiscard", dev}, 60s);
  if (!mk.status.ok()) throw std::runtime_error("mkfs.ext4 " + dev + ": " + mk.output);
  replicator(0, {{"cmd", "unloop"}, {"volume", "db"}});
  replicator(0, {{"cmd", "demote"}, {"volume", "db"}});
  for (int i = 0; i < 2; ++i)
    c_.start(i);
}

void ha_cluster::kill_node(int i) {
  c_.kill9(i);
  if (rep_[i] != nullptr) {
    rep_[i]->signal(SIGKILL);
    (void)rep_[i]->wait(10s);
  }
  (void)c_.daemon(i).wait(10s);
  // A crashed machine answers for no address; here the namespace outlives the processes, so the
  // floating IP the node held is taken away as its power loss would.
  drop_vip(i);
}

ha_cluster::json ha_cluster::group(int i) {
  const json st = c_.call(i, {{"cmd", "group_status"}});
  for (const json& g : st["groups"])
    if (g.value("name", "") == "web") return g;
  return json::object();
}

std::string ha_cluster::online_on(int i) {
  const json g = group(i);
  if (!g.contains("nodes")) return "";
  for (const auto& [n, s] : g["nodes"].items())
    if (s == "online") return n;
  return "";
}

bool ha_cluster::wait_online(int watcher, int where, std::chrono::milliseconds limit) {
  return tandemd_cluster::wait_until(
      [&] {
        try {
          return online_on(watcher) == node(where);
        } catch (const std::exception&) {
          return false;
        }
      },
      limit, 20ms);
}

std::pair<int, std::string> ha_cluster::http(int i, const std::string& method,
                                             const std::string& file, const std::string& body,
                                             std::chrono::milliseconds timeout) {
  return http_to(public_address(i), method, file, body, timeout);
}

std::pair<int, std::string> ha_cluster::http_vip(const std::string& method, const std::string& file,
                                                 const std::string& body,
                                                 std::chrono::milliseconds timeout) {
  if (vip_.empty()) throw std::logic_error("this cluster has no floating IP");
  return http_to(vip_, method, file, body, timeout);
}

std::pair<int, std::string> ha_cluster::http_to(const std::string& address,
                                                const std::string& method, const std::string& file,
                                                const std::string& body,
                                                std::chrono::milliseconds timeout) {
  // curl takes fractions of a second: "0.300".
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.3f", static_cast<double>(timeout.count()) / 1000.0);
  std::vector<std::string> argv = {"curl",           "-s", "-m",  secs, "-o", "-", "-w",
                                   "\n%{http_code}", "-X", method};
  std::string tmp;
  if (method == "PUT") {
    tmp = dir_ + "/put-" + std::to_string(::getpid()) + "-" + file;
    std::ofstream(tmp, std::ios::binary) << body;
    argv.insert(argv.end(), {"--data-binary", "@" + tmp});
  }
  argv.push_back("http://" + address + ":8080/" + file);
  const ctl::run_result r = net().exec("client", argv, timeout + 2s);
  if (!tmp.empty()) fs::remove(tmp);
  const auto nl = r.output.rfind('\n');
  if (nl == std::string::npos) return {0, ""};
  const int code = std::atoi(r.output.c_str() + nl + 1);
  return {code, r.output.substr(0, nl)};
}

std::string ha_cluster::serving() {
  std::string who;
  for (int i = 0; i < 2; ++i) {
    const auto [code, body] = http(i, "GET", "", {}, 1s);
    if (code == 200) who += (who.empty() ? "" : "+") + body.substr(0, body.find('\n'));
  }
  return who;
}

std::string ha_cluster::serving_vip() {
  const auto [code, body] = http_vip("GET", "", {}, 1s);
  return code == 200 ? body.substr(0, body.find('\n')) : std::string();
}

std::string ha_cluster::client_vip_mac() {
  const ctl::run_result r = net().exec("client", {"ip", "neigh", "show", vip_, "dev", "eth0"});
  // "10.99.0.100 lladdr 02:..:.. REACHABLE"
  const auto at = r.output.find("lladdr ");
  if (at == std::string::npos) return "";
  return r.output.substr(at + 7, 17);
}

std::string ha_cluster::logs() {
  return net().collect_logs();
}

}  // namespace tandem::lab
