// SPDX-License-Identifier: Apache-2.0
// The test lab: hosts as network namespaces on private bridges, their processes, logs and faults.
#include "tests/lab/netns.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/lab/files.h"

namespace tandem::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string port_name(int host_index, int lan) {
  return "h" + std::to_string(host_index) + "l" + std::to_string(lan);
}

}  // namespace

std::string unique_id() {
  std::random_device rd;
  for (;;) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%06x", static_cast<unsigned>(rd()) & 0xffffffU);
    const std::string prefix = "tdm-" + std::string(buf) + "-";
    bool taken = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
      taken |= e.path().filename().string().rfind(prefix, 0) == 0;
    }
    // Two labs drawing the same id at the same moment is still caught: `ip netns add` fails
    // for the second, which then forgets the name instead of removing the first lab's.
    if (!taken) return buf;
  }
}

lab_options cluster_options(int nodes, int extra_interconnects, bool client) {
  lab_options o;
  o.lans = 1 + extra_interconnects;
  for (int i = 1; i <= nodes; ++i) {
    host_spec h{"node" + std::to_string(i), {}};
    for (int l = 0; l < o.lans; ++l)
      h.lans.push_back(l);
    o.hosts.push_back(h);
  }
  if (client) o.hosts.push_back({"client", {0}});
  return o;
}

lab::lab(lab_options opts) : opts_(std::move(opts)) {
  if (::geteuid() != 0) {
    throw std::runtime_error("the test lab needs root (network namespaces, veth, bridges)");
  }
  if (opts_.hosts.empty()) throw std::invalid_argument("lab: no hosts");
  if (opts_.lans < 1 || opts_.lans > 200) throw std::invalid_argument("lab: lans must be 1..200");
  id_ = unique_id();
  log_dir_ =
      opts_.log_dir.empty() ? std::string(TANDEM_BUILD_DIR) + "/lab-logs/" + id_ : opts_.log_dir;
  fs::create_directories(log_dir_);
  int index = 0;
  for (const auto& h : opts_.hosts) {
    if (h.name.empty() || h.name.size() > 32 ||
        h.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
      throw std::invalid_argument("lab: bad host name '" + h.name + "' (a-z, 0-9, '-')");
    }
    if (hosts_.count(h.name)) throw std::invalid_argument("lab: duplicate host " + h.name);
    for (int l : h.lans) {
      if (l < 0 || l >= opts_.lans) {
        throw std::invalid_argument("lab: host " + h.name + " on lan " + std::to_string(l) +
                                    " but the lab has " + std::to_string(opts_.lans));
      }
    }
    hosts_.emplace(h.name, host_state{h, index++});
    order_.push_back(h.name);
  }
  if (index > 200) throw std::invalid_argument("lab: at most 200 hosts");
  janitor_ = std::make_unique<janitor>();
  try {
    build();
  } catch (...) {
    teardown();  // noexcept: the original error is the one reported
    throw;
  }
}

lab::~lab() {
  teardown();
}

void lab::teardown() noexcept {
  try {
    for (auto it = procs_.rbegin(); it != procs_.rend(); ++it)
      it->second->stop(SIGTERM, 5s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lab %s: stopping processes: %s\n", id_.c_str(), e.what());
  }
  procs_.clear();
  try {
    if (janitor_) janitor_->cleanup();
  } catch (const std::exception& e) {
    // The janitor removes everything anyway when its socket closes below.
    std::fprintf(stderr, "lab %s: cleanup: %s\n", id_.c_str(), e.what());
  }
  janitor_.reset();
}

void lab::add_netns(const std::string& name) {
  // Register first, create second: a crash in between still leaves nothing behind. If the
  // creation fails the name may be somebody else's, so it is forgotten, never removed.
  janitor_->add("netns", name);
  try {
    ctl::run_checked({"ip", "netns", "add", name});
  } catch (...) {
    janitor_->forget("netns", name);
    throw;
  }
  ctl::run_checked({"ip", "-n", name, "link", "set", "lo", "up"});
}

void lab::build() {
  const std::string sw = switch_netns();
  add_netns(sw);
  for (int l = 0; l < opts_.lans; ++l) {
    const std::string br = "br" + std::to_string(l);
    ctl::run_checked({"ip", "-n", sw, "link", "add", br, "type", "bridge"});
    ctl::run_checked({"ip", "-n", sw, "link", "set", br, "up"});
  }
  for (const auto& name : order_) {
    const auto& h = hosts_.at(name);
    const std::string ns = netns(name);
    add_netns(ns);
    for (int l : h.spec.lans) {
      const std::string port = port_name(h.index, l);
      ctl::run_checked({"ip", "link", "add", "name", iface(l), "netns", ns, "address", mac(name, l),
                        "type", "veth", "peer", "name", port, "netns", sw});
      ctl::run_checked(
          {"ip", "-n", sw, "link", "set", port, "master", "br" + std::to_string(l), "up"});
      ctl::run_checked({"ip", "-n", ns, "addr", "add",
                        address(name, l) + "/" + std::to_string(prefix_len()), "dev", iface(l)});
      ctl::run_checked({"ip", "-n", ns, "link", "set", iface(l), "up"});
    }
  }
}

std::vector<std::string> lab::hosts() const {
  return order_;
}

const lab::host_state& lab::host(const std::string& name) const {
  auto it = hosts_.find(name);
  if (it == hosts_.end()) throw std::invalid_argument("lab " + id_ + ": no host '" + name + "'");
  return it->second;
}

std::string lab::netns(const std::string& name) const {
  host(name);
  return "tdm-" + id_ + "-" + name;
}

std::string lab::address(const std::string& name, int lan) const {
  const auto& h = host(name);
  return "10.99." + std::to_string(lan) + "." + std::to_string(10 + h.index);
}

std::string lab::mac(const std::string& name, int lan) const {
  const auto& h = host(name);
  char buf[32];
  // Locally administered, unicast; unique within the lab's bridges.
  std::snprintf(buf, sizeof(buf), "02:74:64:%02x:%02x:%02x", lan & 0xff, (h.index >> 8) & 0xff,
                h.index & 0xff);
  return buf;
}

std::string lab::log_path(const std::string& name, const std::string& what) const {
  host(name);
  return log_dir_ + "/" + name + "." + what + ".log";
}

ctl::process& lab::spawn(const std::string& name, const std::string& what,
                         std::vector<std::string> argv, std::vector<std::string> env) {
  ctl::spawn_options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.netns = netns(name);
  o.output_path = log_path(name, what);
  auto p = std::make_unique<ctl::process>(ctl::process::spawn(o));
  procs_.emplace_back(name + "/" + what, std::move(p));
  return *procs_.back().second;
}

ctl::process& lab::spawn_ready(const std::string& host, const std::string& name,
                               std::vector<std::string> argv, const std::string& what,
                               std::chrono::milliseconds limit, std::vector<std::string> env) {
  ctl::process& p = spawn(host, name, std::move(argv), std::move(env));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (read_log(host, name).find("READY") == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline || !p.running()) {
      (void)p.stop();
      throw std::runtime_error(host + ": " + what + " did not start:\n" + read_log(host, name));
    }
    std::this_thread::sleep_for(10ms);
  }
  return p;
}

ctl::run_result lab::exec(const std::string& name, std::vector<std::string> argv,
                          std::chrono::milliseconds timeout) {
  return ctl::run(std::move(argv), timeout, netns(name));
}

std::string lab::exec_checked(const std::string& name, std::vector<std::string> argv,
                              std::chrono::milliseconds timeout) {
  return ctl::run_checked(std::move(argv), timeout, netns(name));
}

bool lab::ping(const std::string& name, const std::string& address) {
  return exec(name, {"ping", "-c", "1", "-W", "1", address}, 5s).status.ok();
}

void lab::set_link(const std::string& name, int lan, bool up) {
  const auto& h = host(name);
  bool plugged = false;
  for (int l : h.spec.lans)
    plugged |= (l == lan);
  if (!plugged) {
    throw std::invalid_argument("lab: host " + name + " is not on lan " + std::to_string(lan));
  }
  ctl::run_checked(
      {"ip", "-n", switch_netns(), "link", "set", port_name(h.index, lan), up ? "up" : "down"});
}

void lab::random_drop(const std::string& name, int percent) {
  if (percent < 0 || percent > 100) throw std::invalid_argument("lab: drop percent 0..100");
  const std::string ns = netns(name);
  ctl::run({"nft", "delete", "table", "inet", "tandem_lab"}, 10s, ns);  // absent is fine
  if (percent == 0) return;
  const std::string rule =
      percent == 100 ? "drop" : "numgen random mod 100 < " + std::to_string(percent) + " drop";
  std::ostringstream script;
  script << "table inet tandem_lab {\n"
         << "  chain in { type filter hook input priority -150; " << rule << "; }\n"
         << "  chain out { type filter hook output priority -150; " << rule << "; }\n"
         << "}\n";
  const std::string file = log_dir_ + "/" + name + ".drop.nft";
  std::ofstream(file) << script.str();
  ctl::run_checked({"nft", "-f", file}, 10s, ns);
}

std::string lab::read_log(const std::string& name, const std::string& what) const {
  return read_file_or_empty(log_path(name, what));
}

std::string lab::collect_logs() const {
  std::string all;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(log_dir_, ec)) {
    if (e.path().extension() != ".log") continue;
    all += "==== " + e.path().filename().string() + " ====\n" + read_file_or_empty(e.path()) + "\n";
  }
  return all;
}

double iperf3_gbps(lab& l, const std::string& server, const std::string& client, int lan,
                   int seconds) {
  auto& srv = l.spawn(server, "iperf3-server-" + unique_id(), {"iperf3", "-s", "-1", "-p", "5201"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto r = l.exec(
      client,
      {"iperf3", "-c", l.address(server, lan), "-p", "5201", "-t", std::to_string(seconds), "-J"},
      std::chrono::seconds(seconds + 30));
  srv.wait(std::chrono::seconds(5));
  if (!r.status.ok()) throw std::runtime_error("iperf3 failed: " + r.output);
  return nlohmann::json::parse(r.output)["end"]["sum_received"]["bits_per_second"].get<double>() /
         1e9;
}

}  // namespace tandem::lab
