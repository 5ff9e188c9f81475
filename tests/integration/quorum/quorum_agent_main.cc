// SPDX-License-Identifier: Apache-2.0
// tandem-lab-quorum-agent: one node's lease quorum (witness or etcd) run by lease_runner, as
// tandemd will run it, inside a lab host. It writes one JSON line per quorum event to stdout,
// each stamped with CLOCK_MONOTONIC (shared by every namespace), and keeps its current state in
// a file the test's probe samples:
//
//   {"t_ns":..,"node":"node1","event":1,"severity":"info","message":"quorum held: ..."}
//   {"t_ns":..,"node":"node1","lost":true,"valid_until_ns":..,"stop_by_ns":..,
//    "lease_end_ns":..,"reason":".."}
//   state file: "<holds 0|1> <t_ns> <valid_until_ns, 0: none>"  (atomically replaced on every
//   event and every 20 ms)
//
// "lost" comes when the timer noticed; valid_until_ns is when holds() turned false, which is
// what a caller asking holds(now) sees even if this process was not scheduled in time.
//
//   tandem-lab-quorum-agent --mode witness --url http://10.99.0.12:29080 --cluster lab
//                           --node node1 --id 0 --peer 1:node2 --ttl-ms 3000 --state FILE
//   tandem-lab-quorum-agent --mode etcd --endpoint http://10.99.0.12:2379 ...
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "control/quorum/lease_runner.h"
#include "control/quorum/make.h"

namespace {

namespace po = boost::program_options;
using namespace tandem::ctl::quorum;
using json = nlohmann::json;

int64_t ns_of(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void print(const json& j) {
  std::fputs((j.dump() + "\n").c_str(), stdout);
  std::fflush(stdout);
}

void write_state(const std::string& path, const lease_quorum& q, time_point now) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    const bool holds = q.holds(now);
    std::ofstream out(tmp, std::ios::trunc);
    out << (holds ? 1 : 0) << " " << ns_of(now) << " "
        << (holds && q.valid_until() ? ns_of(*q.valid_until()) : 0) << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

int run(int argc, char** argv) {
  std::string mode_s, url, cluster, node, state, token_file, key;
  std::vector<std::string> endpoints, peers;
  unsigned id = 0;
  unsigned ttl_ms = 3000;
  po::options_description opts("tandem-lab-quorum-agent");
  opts.add_options()("mode", po::value(&mode_s)->required(), "witness | etcd")(
      "url", po::value(&url), "witness base URL")("endpoint", po::value(&endpoints),
                                                  "etcd endpoint (repeatable)")(
      "key", po::value(&key), "etcd key (default /tandem/<cluster>/quorum)")(
      "cluster", po::value(&cluster)->required(), "cluster name")(
      "node", po::value(&node)->required(), "this node's name")(
      "id", po::value(&id)->required(), "this node's id")("peer", po::value(&peers),
                                                          "ID:NAME of another node (repeatable)")(
      "ttl-ms", po::value(&ttl_ms), "lease ttl")("token-file", po::value(&token_file),
                                                 "witness bearer token file")(
      "state", po::value(&state), "state file for the probe");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, opts), vm);
  po::notify(vm);

  quorum_options o;
  o.cluster.self = static_cast<uint8_t>(id);
  o.cluster.nodes.push_back({static_cast<uint8_t>(id), node});
  for (const auto& p : peers) {
    const size_t colon = p.find(':');
    o.cluster.nodes.push_back(
        {static_cast<uint8_t>(std::stoul(p.substr(0, colon))), p.substr(colon + 1)});
  }
  o.lease.ttl = std::chrono::milliseconds(ttl_ms);
  if (mode_s == "witness") {
    o.kind = mode::witness_lease;
    o.witness.url = url;
    o.witness.cluster = cluster;
    if (!token_file.empty()) {
      std::ifstream in(token_file);
      std::getline(in, o.witness.token);
    }
  } else if (mode_s == "etcd") {
    o.kind = mode::etcd_lease;
    o.etcd.endpoints = endpoints;
    o.etcd.key = key.empty() ? "/tandem/" + cluster + "/quorum" : key;
  } else {
    throw std::invalid_argument("--mode must be witness or etcd");
  }

  asio::io_context io;
  const time_point start = clock::now();
  lease_quorum* lqp = nullptr;
  auto q = make_quorum(o, start, [&](const event& e) {
    print({{"t_ns", ns_of(e.time)},
           {"node", node},
           {"event", e.id},
           {"severity", std::string(tandem::ctl::cluster::to_string(e.level))},
           {"message", e.message}});
    if (lqp != nullptr && (e.id == quorum_events::held || e.id == quorum_events::lost))
      write_state(state, *lqp, e.time);
  });
  auto& lq = dynamic_cast<lease_quorum&>(*q);
  lqp = &lq;
  lq.on_lost([&](const loss& l) {
    json j = {{"t_ns", ns_of(l.at)},
              {"node", node},
              {"lost", true},
              {"stop_by_ns", ns_of(l.stop_by)},
              {"reason", l.reason},
              {"lease_end_ns", nullptr},
              {"valid_until_ns", nullptr}};
    if (lq.lease_end()) j["lease_end_ns"] = ns_of(*lq.lease_end());
    if (lq.valid_until()) j["valid_until_ns"] = ns_of(*lq.valid_until());
    print(j);
  });
  // All nodes count as up: these tests are about the lease, not membership.
  std::vector<uint8_t> all;
  for (const auto& n : o.cluster.nodes)
    all.push_back(n.id);
  q->update_membership(all, start);
  write_state(state, lq, start);
  asio::steady_timer refresh(io);
  std::function<void()> tick_state = [&] {
    write_state(state, lq, clock::now());
    refresh.expires_after(std::chrono::milliseconds(20));
    refresh.async_wait([&](const std::error_code& ec) {
      if (!ec) tick_state();
    });
  };
  tick_state();

  auto backend = make_lease_backend(o);
  lease_runner runner(io.get_executor(), lq, *backend);
  runner.start();
  print({{"t_ns", ns_of(clock::now())}, {"node", node}, {"started", backend->describe()}});
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const std::error_code&, int) {
    runner.stop();
    refresh.cancel();
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
    std::cerr << "tandem-lab-quorum-agent: " << e.what() << "\n";
    return 2;
  }
}
