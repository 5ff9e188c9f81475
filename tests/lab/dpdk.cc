// SPDX-License-Identifier: Apache-2.0
// The DPDK harness: EAL processes with --no-huge --no-pci and a vdev inside lab hosts.
#include "tests/lab/dpdk.h"

#include <cstdio>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "dataplane/port/eal_args.h"

namespace tandem::lab {
namespace {

using namespace std::chrono_literals;

std::string last_json_line(const std::string& log) {
  std::string last;
  size_t pos = 0;
  while (pos < log.size()) {
    const size_t end = log.find('\n', pos);
    const std::string line = log.substr(pos, end == std::string::npos ? end : end - pos);
    if (!line.empty() && line.front() == '{') last = line;
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return last;
}

}  // namespace

std::string dpdk_frames_tool() {
  return TANDEM_LAB_DPDK_FRAMES;
}

dpdk_frames_result dpdk_frames(lab& l, const dpdk_frames_options& opts) {
  static int run = 0;
  const std::string tag = "dpdk" + std::to_string(run++);
  std::string rx_vdev, tx_vdev;
  if (opts.kind == dpdk_vdev_kind::af_packet) {
    rx_vdev = dp::af_packet_vdev(0, l.iface(opts.lan));
    tx_vdev = rx_vdev;
  } else {
    const std::string sock = memif_socket(l, tag);
    rx_vdev = dp::memif_vdev(0, "server", sock, 0, opts.mtu);
    tx_vdev = dp::memif_vdev(0, "client", sock, 0, opts.mtu);
  }
  auto common = [&](const std::string& role, const std::string& host, const std::string& vdev) {
    const std::string prefix = eal_prefix(l, tag, host);
    return std::vector<std::string>{dpdk_frames_tool(),
                                    "--role",
                                    role,
                                    "--vdev",
                                    vdev,
                                    "--file-prefix",
                                    prefix,
                                    "--count",
                                    std::to_string(opts.count),
                                    "--payload",
                                    std::to_string(opts.payload),
                                    "--timeout-ms",
                                    std::to_string(opts.timeout.count()),
                                    "--mtu",
                                    std::to_string(opts.mtu)};
  };
  auto tx_argv = common("tx", opts.tx_host, tx_vdev);
  tx_argv.insert(tx_argv.end(), {"--src-ip", l.address(opts.tx_host, opts.lan), "--dst-ip",
                                 l.address(opts.rx_host, opts.lan), "--dst-mac",
                                 l.mac(opts.rx_host, opts.lan), "--pps", std::to_string(opts.pps),
                                 "--udp-checksum", opts.udp_checksum ? "full" : "none"});
  return run_pair(l, {opts.rx_host, tag + "-rx", common("rx", opts.rx_host, rx_vdev)},
                  {opts.tx_host, tag + "-tx", tx_argv}, opts.timeout + 30s);
}

pair_result run_pair(lab& l, const pair_process& rx_spec, const pair_process& tx_spec,
                     std::chrono::milliseconds limit) {
  auto& rx = l.spawn(rx_spec.host, rx_spec.name, rx_spec.argv);
  const auto ready_deadline = std::chrono::steady_clock::now() + 30s;
  while (l.read_log(rx_spec.host, rx_spec.name).find("READY") == std::string::npos) {
    if (!rx.running() || std::chrono::steady_clock::now() > ready_deadline) {
      rx.stop();
      throw std::runtime_error("DPDK receiver in " + rx_spec.host + " did not get ready:\n" +
                               l.read_log(rx_spec.host, rx_spec.name));
    }
    std::this_thread::sleep_for(20ms);
  }
  auto& tx = l.spawn(tx_spec.host, tx_spec.name, tx_spec.argv);
  pair_result r;
  auto tx_st = tx.wait(limit);
  r.tx_status = tx_st ? *tx_st : tx.stop();
  auto rx_st = rx.wait(limit);
  r.rx_status = rx_st ? *rx_st : rx.stop();
  const std::string tx_log = l.read_log(tx_spec.host, tx_spec.name);
  const std::string rx_log = l.read_log(rx_spec.host, rx_spec.name);
  r.tx_json = last_json_line(tx_log);
  r.rx_json = last_json_line(rx_log);
  r.logs = "---- " + tx_spec.host + " " + tx_spec.name + " (" + r.tx_status.describe() + ")\n" +
           tx_log + "---- " + rx_spec.host + " " + rx_spec.name + " (" + r.rx_status.describe() +
           ")\n" + rx_log;
  return r;
}

std::string eal_prefix(lab& l, const std::string& tag, const std::string& host) {
  const std::string prefix = "tdm-" + l.id() + "-" + tag + "-" + host;
  l.register_path(dp::eal_runtime_dir(prefix));
  return prefix;
}

double dpdk_raw_gbps(lab& l, dpdk_vdev_kind kind, int lan, unsigned mtu) {
  dpdk_frames_options o;
  o.kind = kind;
  o.lan = lan;
  o.count = mtu > 1500 ? 100000 : 400000;
  o.mtu = mtu;
  o.payload = mtu - 28;
  o.pps = 0;
  o.udp_checksum = false;  // as the transport sends
  const auto r = dpdk_frames(l, o);
  if (r.rx_json.empty()) {
    std::fprintf(stderr, "raw run failed:\n%s\n", r.logs.c_str());
    return 0;
  }
  return nlohmann::json::parse(r.rx_json)["mbit_per_s"].get<double>() / 1e3;
}

std::string port_tool() {
  return TANDEM_LAB_PORT_TOOL;
}

std::vector<std::string> port_tool_args(lab& l, const std::string& host, const std::string& role,
                                        const std::string& vdev, const std::string& tag) {
  const std::string prefix = eal_prefix(l, tag, host);
  return {port_tool(), "--role", role, "--vdev", vdev, "--file-prefix", prefix};
}

std::vector<std::string> transport_tool_args(lab& l, const std::string& host,
                                             const std::string& role, const std::string& port,
                                             const std::string& peer, int lan, uint16_t udp_port,
                                             const std::string& tag) {
  const std::string p = ":" + std::to_string(udp_port);
  std::vector<std::string> a = {TANDEM_LAB_TRANSPORT_TOOL,
                                "--role",
                                role,
                                "--port",
                                port,
                                "--local",
                                l.address(host, lan) + p,
                                "--peer",
                                l.address(peer, lan) + p};
  if (port != "socket") {
    const std::string prefix = eal_prefix(l, tag, host);
    a.insert(a.end(), {"--file-prefix", prefix});
  }
  return a;
}

std::string memif_socket(lab& l, const std::string& tag) {
  // Short and outside the build tree: a unix socket path must fit in 108 bytes.
  const std::string sock = "/tmp/tdm-" + l.id() + "-" + tag + ".memif.sock";
  l.register_path(sock);
  return sock;
}

}  // namespace tandem::lab
