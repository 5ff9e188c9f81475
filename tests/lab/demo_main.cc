// SPDX-License-Identifier: Apache-2.0
// tandem-demo: the local cluster demo (the README's first command). It runs what exists of
// tandem today on a real namespaced cluster and grows with every capability that lands.
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/cli/commands.h"
#include "control/exec/process.h"
#include "dataplane/app/workload.h"
#include "dataplane/crypto/key_file.h"
#include "dataplane/port/eal_args.h"
#include "tests/lab/dpdk.h"
#include "tests/lab/file_tree.h"
#include "tests/lab/ha_cluster.h"
#include "tests/lab/mirror_pair.h"
#include "tests/lab/netns.h"
#include "tests/lab/tandemd_cluster.h"

namespace {

using namespace tandem;
using namespace std::chrono_literals;
using json = nlohmann::json;

int g_failures = 0;

void step(const std::string& what, bool ok, const std::string& detail = {}) {
  std::printf("  [%s] %s%s%s\n", ok ? " ok " : "FAIL", what.c_str(), detail.empty() ? "" : ": ",
              detail.c_str());
  if (!ok) ++g_failures;
}

void dpdk_link(lab::lab& l, lab::dpdk_vdev_kind kind, const std::string& label) {
  lab::dpdk_frames_options o;
  o.kind = kind;
  o.lan = 1;
  o.count = 50000;
  o.payload = 1472;
  o.pps = 200000;
  const auto r = lab::dpdk_frames(l, o);
  // The receiver exits non-zero when frames are missing; that is reported below, not fatal.
  if (!r.tx_status.ok() || r.rx_json.empty()) {
    step(label, false, r.rx_status.describe() + "\n" + r.logs);
    return;
  }
  const auto rx = json::parse(r.rx_json);
  const auto valid = rx["valid"].get<unsigned long long>();
  char buf[240];
  std::snprintf(buf, sizeof(buf),
                "%llu/%llu frames of %u bytes arrived intact, %.0f Mbit/s, %llu lost in the "
                "receive ring (raw frames: retransmission is the transport's job)",
                valid, static_cast<unsigned long long>(o.count), o.payload,
                rx["mbit_per_s"].get<double>(), static_cast<unsigned long long>(o.count - valid));
  // Paced at 200k frames/s the release build loses none here; a loaded machine may drop a few
  // raw frames, but never corrupt or duplicate one.
  step(label, valid * 100 >= o.count * 95 && rx["bad_payload"] == 0 && rx["duplicates"] == 0, buf);
}

// The replication transport between the nodes: node1 streams `mib` MiB of random-size messages
// to node2 over `port` (a DPDK vdev or "socket"); node2 checks every byte and the order.
void transport_link(lab::lab& l, const std::string& port, const std::string& key,
                    const std::string& label, uint64_t mib) {
  static int run = 0;
  const std::string tag = "transport" + std::to_string(run++);
  auto args = [&](const std::string& host, const std::string& role, const std::string& peer) {
    std::vector<std::string> a = lab::transport_tool_args(l, host, role, port, peer, 1, 7400, tag);
    a.insert(a.end(), {"--mib", std::to_string(mib), "--max-message", std::to_string(1 << 20),
                       "--timeout-ms", "60000"});
    if (!key.empty()) a.insert(a.end(), {"--key-file", key});
    return a;
  };
  const auto r = lab::run_pair(l, {"node2", tag + "-recv", args("node2", "recv", "node1")},
                               {"node1", tag + "-send", args("node1", "send", "node2")}, 90s);
  if (!r.ok() || r.tx_json.empty() || r.rx_json.empty()) {
    step(label, false, r.logs);
    return;
  }
  const auto tx = json::parse(r.tx_json);
  const auto rx = json::parse(r.rx_json);
  char buf[240];
  std::snprintf(buf, sizeof(buf),
                "%llu MiB in %llu messages arrived once, in order, intact (%s), %.2f Gbit/s, "
                "%llu packets retransmitted",
                static_cast<unsigned long long>(rx["bytes"].get<uint64_t>() >> 20),
                static_cast<unsigned long long>(rx["messages"].get<uint64_t>()),
                tx["crypto"] == "none" ? "CRC32C" : "AES-256-GCM + CRC32C",
                tx["gbps"].get<double>(),
                static_cast<unsigned long long>(tx["retransmitted"].get<uint64_t>()));
  step(label, rx["bad"] == 0 && rx["bytes"] == tx["bytes"], buf);
}

// `tandemctl ARGS...` in-process, as an operator would type it; prints the command.
int tandemctl(const std::vector<std::string>& args, std::string& out) {
  std::ostringstream o, e;
  const int code = ctl::cli::run_tandemctl(args, o, e);
  out = o.str() + e.str();
  std::printf("  $ tandemctl");
  for (const auto& a : args)
    std::printf(" %s", a.c_str());
  std::printf("   (exit %d)\n", code);
  return code;
}

// Three nodes running tandemd (two interconnects, 200 ms / 1 s heartbeats, majority quorum):
// status, a crash detected and rejoined, a node cut off losing quorum, a clean stop.
void cluster_daemons() {
  std::printf("\ncluster daemons: tandemd on three nodes, two interconnects, majority quorum\n");
  lab::tandemd_cluster c;
  for (int i = 0; i < 3; ++i)
    c.start(i);
  step("three tandemd running, every node sees every other up", c.wait_all_up());
  std::string out;
  tandemctl({"--socket", c.sock(0), "status"}, out);
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    std::printf("      %s\n", line.c_str());
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  c.kill9(2);
  const bool gone = lab::tandemd_cluster::wait_until(
      [&] { return c.state_of(0, 2) == "down" && c.state_of(1, 2) == "down"; }, 10s, 10ms);
  const auto ms = [](clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  step("node3's tandemd killed (-9): node1 and node2 agree it is down", gone,
       "after " + ms(clock::now() - t0) + " ms (timeout 1000 ms); both keep quorum: " +
           (c.holds_quorum(0) && c.holds_quorum(1) ? "yes" : "NO"));
  c.start(2);
  step("node3 restarted: it rejoins", c.wait_all_up());
  t0 = clock::now();
  c.net().set_link("node2", 0, false);
  c.net().set_link("node2", 1, false);
  const bool cut = lab::tandemd_cluster::wait_until(
      [&] { return c.state_of(0, 1) == "down" && !c.holds_quorum(1); }, 10s, 10ms);
  step("node2 cut off from both interconnects: the others see it down, it loses quorum", cut,
       "after " + ms(clock::now() - t0) + " ms; node1 and node3 keep quorum: " +
           (c.holds_quorum(0) && c.holds_quorum(2) ? "yes" : "NO"));
  c.net().set_link("node2", 0, true);
  c.net().set_link("node2", 1, true);
  step("links restored: node2 rejoins and holds quorum again",
       c.wait_all_up() && lab::tandemd_cluster::wait_until([&] { return c.holds_quorum(1); }, 5s));
  t0 = clock::now();
  tandemctl({"--socket", c.sock(2), "cluster", "stop"}, out);
  const bool left =
      lab::tandemd_cluster::wait_until([&] { return c.state_of(0, 2) == "down"; }, 5s, 5ms);
  step("tandemctl cluster stop on node3: the others see it leave at once", left,
       "after " + ms(clock::now() - t0) + " ms, no timeout wait");
  std::printf("  logs of this run: %s\n", c.net().log_dir().c_str());
}

// A mirrored volume on two replicators: full sync, sync writes, then the primary's replicator
// is killed (-9) mid-workload and node2 takes over through tandemctl; every write node1
// acknowledged must be on node2.
void mirrored_volume() {
  std::printf("\nmirrored volume: tandem-replicator on each node, sync replication\n");
  lab::mirror_pair_options o;
  o.mib = 64;
  lab::mirror_pair m(o);
  m.bring_up();
  step("node1 primary, node2 secondary, full sync of 64 MiB done", true,
       "both up_to_date, connected");

  // One workload, its every acknowledged write logged: measured while it runs, then cut short.
  const std::string log = m.dir() + "/acknowledged.log";
  m.ok(0, {{"cmd", "workload"}, {"volume", "db"}, {"seed", 1}, {"qd", 16}, {"log", log}});
  std::this_thread::sleep_for(2s);
  const json w = m.volume(0)["workload"];
  char figures[160];
  std::snprintf(figures, sizeof figures,
                "%llu writes of 4-64 KiB in %.1f s, %.2f Gbit/s, p50 %u us, p99 %u us",
                static_cast<unsigned long long>(w["acked"].get<uint64_t>()),
                w["seconds"].get<double>(), w["gbps"].get<double>(), w["p50_us"].get<unsigned>(),
                w["p99_us"].get<unsigned>());
  step("sync writes (acknowledged once durable on both nodes)",
       w["running"].get<bool>() && w["failed"].get<uint64_t>() == 0, figures);
  m.kill9(0);
  step("node1's replicator killed (-9) in the middle of a write workload", true);
  std::string out;
  const int dc = tandemctl({"mirror", "disconnect", "db", "-r", m.sock(1)}, out);
  const int pc = tandemctl({"mirror", "promote", "db", "-r", m.sock(1)}, out);
  step("failover: node2 promoted", dc == 0 && pc == 0, out.substr(0, out.find('\n')));
  (void)tandemctl({"mirror", "status", "db", "-r", m.sock(1)}, out);
  std::printf("%s", out.c_str());
  m.ok(1, {{"cmd", "detach"}, {"volume", "db"}});
  m.replicator(1).stop();
  const auto v = dp::app::verify_workload(m.image(1), log);
  step("node2 holds every write node1 acknowledged",
       v.acked_writes > 0 && v.missing == 0 && v.corrupt == 0,
       std::to_string(v.acked_writes) + " acknowledged, " + std::to_string(v.missing) +
           " missing, " + std::to_string(v.corrupt) + " corrupt" +
           (v.first_problem.empty() ? "" : " (" + v.first_problem + ")"));
}

// A file system on the mirrored volume, through the FUSE frontend: ext4 on a loop device over
// node1's volume file, a tree of files, then a planned switchover to node2 with tandemctl; fsck
// is clean and every file is identical there.
void file_system_switchover() {
  std::printf("\nfile system on the mirror: FUSE file + loop device + ext4, switchover\n");
  lab::mirror_pair_options o;
  o.mib = 96;
  o.fuse = true;
  lab::mirror_pair m(o);
  m.bring_up();
  lab::lab& l = m.net();
  std::string out;
  std::string dev[2];
  for (int i = 0; i < 2; ++i)
    l.register_mount(m.dir() + "/mnt" + std::to_string(i));
  auto bind = [&](int i) {
    const int rc = tandemctl({"mirror", "loop", "db", "-r", m.sock(i)}, out);
    dev[i] = out.substr(0, out.find('\n'));
    if (rc == 0) l.register_loop(dev[i]);
    return rc == 0;
  };
  auto mount = [&](int i) {
    const std::string dir = m.dir() + "/mnt" + std::to_string(i);
    std::filesystem::create_directories(dir);
    return ctl::run({"mount", "-t", "ext4", dev[i], dir}).status.ok();
  };
  step("node1: " + m.fuse_file(0) + " bound to a loop device", bind(0), dev[0]);
  const bool made = ctl::run({"mkfs.ext4", "-q", "-F", dev[0]}, 120s).status.ok();
  step("mkfs.ext4 and mount on node1", made && mount(0));
  uint64_t bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const auto written = lab::write_tree(m.dir() + "/mnt0", 7, 40, bytes);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char figures[120];
  std::snprintf(figures, sizeof figures, "%zu files, %.1f MiB in %.2f s, each fsync'ed",
                written.size(), static_cast<double>(bytes) / (1 << 20), secs);
  step("files written on node1 (replicated synchronously)", true, figures);
  const bool down = ctl::run({"umount", m.dir() + "/mnt0"}).status.ok();
  const int un = tandemctl({"mirror", "unloop", "db", "-r", m.sock(0)}, out);
  const int dm = tandemctl({"mirror", "demote", "db", "-r", m.sock(0)}, out);
  m.wait_for(1, [](const json& v) {
    return v.contains("peer_state") && v["peer_state"]["role"] == "secondary";
  });
  const int pm = tandemctl({"mirror", "promote", "db", "-r", m.sock(1)}, out);
  step("switchover: node1 unmounted, unbound, demoted; node2 promoted",
       down && un == 0 && dm == 0 && pm == 0);
  const bool bound1 = bind(1);
  const ctl::run_result fsck = ctl::run({"fsck.ext4", "-n", "-f", dev[1]}, 120s);
  step("node2: loop device and fsck.ext4 -n -f", bound1 && fsck.status.ok(),
       fsck.status.ok() ? "clean" : fsck.output);
  const bool up = mount(1);
  const auto seen = up ? lab::read_tree(m.dir() + "/mnt1") : decltype(written){};
  step("node2 mounts it and every file is identical", up && seen == written,
       std::to_string(seen.size()) + " of " + std::to_string(written.size()) +
           " files with the same SHA-256");
  ::umount2((m.dir() + "/mnt1").c_str(), 0);
  (void)tandemctl({"mirror", "unloop", "db", "-r", m.sock(1)}, out);
}

// The whole product: two nodes running tandem-replicator and tandemd from one cluster file, a
// tandem-witness for quorum and a client. The group "web" is the mirrored volume, ext4 on it, a
// small file service and the floating IP the client uses. The client stores files, the active
// node is killed (-9: tandemd, the replicator and the service), and the other node takes the
// group over; the client only ever talks to the floating IP. The timeline comes from node2's own
// events.
void failover_group() {
  std::printf(
      "\nfailover group: two nodes + witness + client; group web = mirror (FUSE + loop) -> ext4 "
      "-> file service on :8080 -> floating IP 10.99.0.100\n");
  lab::ha_cluster c;
  c.start();
  const bool up = c.wait_online(0, 0, 60s);
  step("tandemd and tandem-replicator on both nodes, witness lease, group web online on node1", up);
  if (!up) {
    std::printf("%s\n", c.logs().c_str());
    return;
  }
  std::string out;
  tandemctl({"--socket", c.daemons().sock(1), "status"}, out);
  std::printf("%s", out.c_str());
  tandemctl({"--socket", c.daemons().sock(1), "group", "status", "web"}, out);
  std::printf("%s", out.c_str());

  constexpr int files = 30;
  const auto body = [](int k) {
    return "record " + std::to_string(k) + "\n" + std::string(4000, 'a' + k % 26);
  };
  int stored = 0;
  for (int k = 0; k < files; ++k)
    stored += c.http_vip("PUT", "r" + std::to_string(k), body(k)).first == 201 ? 1 : 0;
  step("client stores " + std::to_string(files) + " files through http://" + c.vip() +
           ":8080 (each acknowledged once durable on both nodes)",
       stored == files, std::to_string(stored) + " acknowledged");
  const std::string mac1 = c.net().mac("node1", 0), mac2 = c.net().mac("node2", 0);
  step("the client's neighbour entry for " + c.vip() + " is node1's MAC",
       c.client_vip_mac() == mac1, c.client_vip_mac());

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t t0_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count();
  c.kill_node(0);
  step("node1 killed (-9): its tandemd, its tandem-replicator and the service", true);
  // The client retries the floating IP until it answers (a new TCP connection each time).
  int64_t first_ok_ms = -1, mac_moved_ms = -1;
  while (std::chrono::steady_clock::now() - t0 < 60s) {
    if (mac_moved_ms < 0 && c.client_vip_mac() == mac2) {
      mac_moved_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - t0)
                         .count();
    }
    if (c.http_vip("GET", "", {}, 200ms).first == 200) {
      first_ok_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  step("group web online on node2", c.wait_online(1, 1, 10s));
  std::printf("  timeline after the kill (node2's events, and the client):\n");
  std::vector<std::tuple<double, std::string, std::string>> timeline;
  for (const json& e : c.daemons().events(1)) {
    const int64_t at = e.value("mono_ns", int64_t{0}) - t0_ns;
    if (at < 0) continue;
    const std::string name = e.value("name", "");
    if (name != "heartbeat.node_down" && name != "quorum.held" && name.rfind("group.", 0) != 0)
      continue;
    timeline.emplace_back(static_cast<double>(at) / 1e6, name,
                          e.value("message", "").substr(0, 110));
  }
  if (mac_moved_ms >= 0) {
    timeline.emplace_back(static_cast<double>(mac_moved_ms), "client",
                          "neighbour entry for " + c.vip() + " now node2's MAC (announced)");
  }
  if (first_ok_ms >= 0) {
    timeline.emplace_back(static_cast<double>(first_ok_ms), "client",
                          "first successful request to " + c.vip() + " (node2's service)");
  }
  std::sort(timeline.begin(), timeline.end());
  for (const auto& [ms, name, text] : timeline)
    std::printf("    %+7.0f ms  %-24s %s\n", ms, name.c_str(), text.c_str());
  int same = 0;
  for (int k = 0; k < files; ++k) {
    const auto [code, got] = c.http_vip("GET", "r" + std::to_string(k));
    same += code == 200 && got == body(k) ? 1 : 0;
  }
  step("every acknowledged file is served from " + c.vip() + " by node2, byte for byte",
       same == files && c.serving_vip() == "node2",
       std::to_string(same) + "/" + std::to_string(files));
  tandemctl({"--socket", c.daemons().sock(1), "group", "status"}, out);
  std::printf("%s", out.c_str());
  std::printf("  logs of this run: %s\n", c.net().log_dir().c_str());
}

}  // namespace

int main() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "tandem-demo: run as root (it creates network namespaces)\n");
    return 2;
  }
  try {
    std::printf(
        "tandem demo: nodes in network namespaces on this machine (two nodes and a client; then "
        "three tandemd nodes; then a mirrored pair; then ext4 on it; then a failover group)\n\n");
    {
      lab::lab l(lab::cluster_options(2, 1, true));
      std::printf("  lab %s (public lan 10.99.0.0/24, replication interconnect 10.99.1.0/24)\n",
                  l.id().c_str());
      for (const auto& h : l.hosts()) {
        std::printf("  %-7s netns %-18s public %-11s %s", h.c_str(), l.netns(h).c_str(),
                    l.address(h, 0).c_str(), l.mac(h, 0).c_str());
        if (h != "client") std::printf("  interconnect %s", l.address(h, 1).c_str());
        std::printf("\n");
      }
      std::printf("\nreachability\n");
      step("client -> node1 (public)", l.ping("client", l.address("node1", 0)));
      step("client -> node2 (public)", l.ping("client", l.address("node2", 0)));
      step("node1 -> node2 (interconnect)", l.ping("node1", l.address("node2", 1)));
      step("client cannot reach the interconnect", !l.ping("client", l.address("node2", 1)));

      std::printf(
          "\nreplication link: DPDK in each node, --no-huge --no-pci, own EAL per process\n");
      dpdk_link(l, lab::dpdk_vdev_kind::af_packet, "net_af_packet on the interconnect veth");
      dpdk_link(l, lab::dpdk_vdev_kind::memif, "net_memif between the two nodes' processes");

      std::printf("\nreplication transport: reliable messages, node1 -> node2\n");
      const std::string key = l.log_dir() + "/interconnect.key";
      dp::generate_key_file(key, 32);
      transport_link(l, dp::af_packet_vdev(0, l.iface(1)), key,
                     "DPDK net_af_packet with AES-256-GCM", 256);
      transport_link(l, "socket", "", "kernel UDP socket (GSO/GRO), integrity only", 256);

      std::printf("\nfaults\n");
      l.set_link("node2", 0, false);
      step("node2 public link cut: client loses node2", !l.ping("client", l.address("node2", 0)));
      step("node1 still reaches node2 over the interconnect",
           l.ping("node1", l.address("node2", 1)));
      l.set_link("node2", 0, true);
      bool back = false;
      for (int i = 0; i < 10 && !back; ++i)
        back = l.ping("client", l.address("node2", 0));
      step("link restored: client reaches node2 again", back);

      std::printf("\nlogs of this run: %s\n", l.log_dir().c_str());
    }
    cluster_daemons();
    mirrored_volume();
    file_system_switchover();
    failover_group();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem-demo: %s\n", e.what());
    return 1;
  }
  std::printf("cluster removed (namespaces, links, processes)\n");
  std::printf("%s\n", g_failures ? "demo FAILED" : "demo passed");
  return g_failures ? 1 : 0;
}
