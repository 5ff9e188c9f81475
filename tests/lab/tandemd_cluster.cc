// SPDX-License-Identifier: Apache-2.0
// N lab hosts running tandemd.
#include "tests/lab/tandemd_cluster.h"

#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include "control/api/jsonl_socket.h"

namespace tandem::lab {

using namespace std::chrono_literals;

namespace {

lab_options lab_options_of(const tandemd_cluster_options& o) {
  lab_options l = cluster_options(o.nodes, o.interconnects - (o.public_lan ? 0 : 1), false);
  l.hosts.insert(l.hosts.end(), o.extra_hosts.begin(), o.extra_hosts.end());
  return l;
}

}  // namespace

tandemd_cluster::tandemd_cluster(const tandemd_cluster_options& o)
    : l_(lab_options_of(o)),
      n_(o.nodes),
      public_lan_(o.public_lan),
      dir_(l_.log_dir()),
      config_(dir_ + "/cluster.yaml"),
      secret_(dir_ + "/secret") {
  {
    std::random_device rd;
    std::ofstream s(secret_, std::ios::binary);
    for (int i = 0; i < 32; ++i)
      s.put(static_cast<char>(rd() & 0xff));
  }
  ::chmod(secret_.c_str(), 0600);
  std::ofstream f(config_);
  f << "cluster: {name: lab, secret_file: " << secret_ << "}\nnodes:\n";
  for (int i = 0; i < n_; ++i) {
    f << "  - name: " << node(i) << "\n    interconnects:\n";
    for (int k = 0; k < o.interconnects; ++k)
      f << "      - {address: " << l_.address(node(i), interconnect_lan(k)) << "}\n";
  }
  f << "heartbeat: {interval: " << o.interval << ", timeout: " << o.timeout << "}\n";
  f << "quorum: " << (o.quorum_of ? o.quorum_of(l_) : o.quorum) << "\n";
  f << o.extra << "\n";
  if (o.extra_of) f << o.extra_of(l_) << "\n";
  procs_.assign(static_cast<size_t>(n_), nullptr);
  args_.assign(static_cast<size_t>(n_), {});
  env_ = o.env;
  names_.assign(static_cast<size_t>(n_), "");
}

void tandemd_cluster::start(int i, std::vector<std::string> args, const std::string& config) {
  const std::string name = "tandemd" + std::to_string(starts_++);
  std::vector<std::string> argv = {TANDEMD,  "--config",    config.empty() ? config_ : config,
                                   "--node", node(i),       "--socket",
                                   sock(i),  "--state-dir", state_dir(i)};
  const auto& always = args_.at(static_cast<size_t>(i));
  argv.insert(argv.end(), always.begin(), always.end());
  argv.insert(argv.end(), args.begin(), args.end());
  procs_[static_cast<size_t>(i)] =
      &l_.spawn_ready(node(i), name, argv, "tandemd", std::chrono::seconds(20), env_);
  names_[static_cast<size_t>(i)] = name;
}

void tandemd_cluster::set_args(int i, std::vector<std::string> args) {
  args_.at(static_cast<size_t>(i)) = std::move(args);
}

void tandemd_cluster::kill9(int i) {
  daemon(i).signal(SIGKILL);
}

void tandemd_cluster::terminate(int i) {
  (void)daemon(i).stop(SIGTERM, 10s);
}

bool tandemd_cluster::running(int i) {
  return procs_.at(static_cast<size_t>(i)) != nullptr && daemon(i).running();
}

std::string tandemd_cluster::log(int i) const {
  const std::string& name = names_.at(static_cast<size_t>(i));
  return name.empty() ? std::string() : l_.read_log(node(i), name);
}

tandemd_cluster::json tandemd_cluster::call(int i, const json& request) {
  ctl::api::jsonl_client c(sock(i), 10s);
  return c.call(request);
}

tandemd_cluster::json tandemd_cluster::status(int i) {
  return call(i, {{"cmd", "status"}});
}

std::string tandemd_cluster::state_of(int i, int j) {
  const json s = status(i);
  for (const json& n : s["nodes"])
    if (n.value("name", "") == node(j)) return n.value("state", "");
  return "";
}

bool tandemd_cluster::holds_quorum(int i) {
  return status(i)["quorum"].value("holds", false);
}

bool tandemd_cluster::wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit,
                                 std::chrono::milliseconds every) {
  const auto deadline = clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

bool tandemd_cluster::wait_all_up(std::chrono::milliseconds limit) {
  return wait_until(
      [&] {
        for (int i = 0; i < n_; ++i) {
          if (!running(i)) continue;
          for (int j = 0; j < n_; ++j) {
            if (i == j || !running(j)) continue;
            if (state_of(i, j) != "up") return false;
          }
        }
        return true;
      },
      limit, 50ms);
}

tandemd_cluster::json tandemd_cluster::events(int i, uint64_t since) {
  return call(i, {{"cmd", "events"}, {"since", since}, {"limit", 10000}})["events"];
}

std::string tandemd_cluster::logs() {
  std::string out;
  for (int i = 0; i < n_; ++i)
    out += "==== " + node(i) + " ====\n" + log(i);
  return out;
}

}  // namespace tandem::lab
