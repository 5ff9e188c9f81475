// SPDX-License-Identifier: Apache-2.0
// Lab hosts running tandem-replicator from one shared mirrors file (mirror_fleet.h).
#include "tests/lab/mirror_fleet.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "control/api/jsonl_socket.h"

namespace tandem::lab {

using namespace std::chrono_literals;

namespace {

lab_options hosts_on_lan0(const std::vector<std::string>& hosts) {
  lab_options o;
  for (const auto& h : hosts)
    o.hosts.push_back({h, {0}});
  return o;
}

}  // namespace

mirror_fleet::mirror_fleet(const mirror_fleet_options& o)
    : o_(o),
      l_(hosts_on_lan0(o.hosts)),
      image_dir_(o.image_dir.empty() ? "/dev/shm/tandem-fleet-" + l_.id() : o.image_dir),
      config_(l_.log_dir() + "/mirrors.yaml") {
  const std::set<std::string> hosts(o.hosts.begin(), o.hosts.end());
  for (const auto& v : o.volumes) {
    if (!hosts.contains(v.primary) || !hosts.contains(v.standby) || v.primary == v.standby) {
      throw std::invalid_argument("mirror_fleet: volume " + v.name + " needs two distinct hosts");
    }
  }
  l_.register_path(image_dir_);
  std::filesystem::create_directories(image_dir_);
  std::ofstream f(config_);
  f << "mirrors:\n  transport: {port: socket" << (o.transport.empty() ? "" : ", ") << o.transport
    << "}\n"
    << o.mirrors_extra << "  volumes:\n";
  for (size_t i = 0; i < o.volumes.size(); ++i) {
    const fleet_volume& v = o.volumes[i];
    const unsigned port = o.base_port + i;
    f << "    - name: " << v.name << "\n      data: " << image(v.primary, v.name)
      << "\n      meta: " << meta(v.primary, v.name) << "\n      size: " << o.mib << "MiB\n";
    std::istringstream extra(v.extra);
    for (std::string line; std::getline(extra, line);)
      f << "      " << line << "\n";
    f << "      replicas:\n";
    for (const std::string& h : {v.primary, v.standby}) {
      f << "        - {node: " << h << ", address: " << l_.address(h) << ", port: " << port
        << ", data: " << image(h, v.name) << ", meta: " << meta(h, v.name) << "}\n";
    }
  }
}

void mirror_fleet::fresh_disks() {
  for (const auto& v : o_.volumes) {
    for (const std::string& h : {v.primary, v.standby}) {
      std::filesystem::remove(image(h, v.name));
      std::filesystem::remove(meta(h, v.name));
      std::ofstream(image(h, v.name)).close();
      std::filesystem::resize_file(image(h, v.name), volume_bytes());
    }
  }
}

void mirror_fleet::start(const std::string& host) {
  const std::string name = "replicator" + std::to_string(starts_++);
  rep_[host] = &l_.spawn_ready(
      host, name, {TANDEM_REPLICATOR, "--config", config_, "--node", host, "--socket", sock(host)},
      "the replicator");
  logs_[host] = name;
}

std::string mirror_fleet::log(const std::string& host) const {
  const auto it = logs_.find(host);
  return it == logs_.end() ? std::string() : l_.read_log(host, it->second);
}

mirror_fleet::json mirror_fleet::call(const std::string& host, const json& request) {
  ctl::api::jsonl_client c(sock(host), 30s);
  return c.call(request);
}

mirror_fleet::json mirror_fleet::ok(const std::string& host, const json& request) {
  json r = call(host, request);
  if (!r.value("ok", false))
    throw std::runtime_error(host + " " + request.dump() + ": " + r.dump());
  return r;
}

mirror_fleet::json mirror_fleet::status(const std::string& host) {
  return ok(host, {{"cmd", "status"}});
}

std::map<std::string, mirror_fleet::json> mirror_fleet::volumes_of(const std::string& host) {
  std::map<std::string, json> out;
  json st = status(host);
  for (json& v : st["volumes"])
    out.emplace(v["name"].get<std::string>(), std::move(v));
  return out;
}

bool mirror_fleet::wait_all(const std::string& host, const std::function<bool(const json&)>& pred,
                            std::chrono::milliseconds limit, std::chrono::milliseconds interval) {
  const auto deadline = clock::now() + limit;
  for (;;) {
    bool all = true;
    const json st = status(host);
    for (const json& v : st["volumes"]) {
      if (!pred(v)) {
        all = false;
        break;
      }
    }
    if (all) return true;
    if (clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

void mirror_fleet::kill9(const std::string& host) {
  rep_.at(host)->signal(SIGKILL);
  rep_.at(host)->wait(10s);
}

void mirror_fleet::stop(const std::string& host) {
  const ctl::exit_status st = rep_.at(host)->stop(SIGTERM, 30s);
  if (!st.ok()) {
    throw std::runtime_error(host + ": the replicator did not exit cleanly (code " +
                             std::to_string(st.code) + ", signal " + std::to_string(st.signal) +
                             "):\n" + log(host));
  }
}

uint64_t mirror_fleet::rss_bytes(const std::string& host) const {
  std::ifstream f("/proc/" + std::to_string(rep_.at(host)->pid()) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // kB
  }
  return 0;
}

}  // namespace tandem::lab
