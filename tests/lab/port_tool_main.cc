// SPDX-License-Identifier: Apache-2.0
// tandem-lab-port: sends or receives numbered datagrams of random sizes through a tandem port
// (DPDK over any vdev) and prints a JSON summary line; the tests run one per lab host.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/net/byte_order.h"
#include "dataplane/port/dpdk_port.h"
#include "dataplane/port/eal.h"
#include "tests/lab/tool_util.h"

namespace {

using namespace tandem;
namespace tool = tandem::lab::tool;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string role;  // send | recv
  std::string vdev;
  std::string file_prefix = "tandem-port";
  dp::udp_addr local, peer;
  std::optional<dp::mac_addr> peer_mac;  // static neighbour instead of ARP
  uint64_t count = 10000;
  uint64_t seed = 1;
  uint64_t pps = 0;
  unsigned timeout_ms = 30000;
  unsigned idle_ms = 2000;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "tandem-lab-port: %s\n"
               "usage: --role send|recv --vdev SPEC --local IP:PORT [--peer IP:PORT]\n"
               "       [--peer-mac MAC] [--count N] [--seed S] [--pps N] [--file-prefix P]\n"
               "       [--timeout-ms N] [--idle-ms N]\n",
               why.c_str());
  std::exit(2);
}

dp::udp_addr parse_addr(const std::string& s) {
  const auto a = tool::parse_udp_addr(s);
  if (!a) usage("bad address " + s + " (want IP:PORT)");
  return *a;
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) usage("missing value for " + key);
    const std::string val = argv[++i];
    if (key == "--role") {
      o.role = val;
    } else if (key == "--vdev") {
      o.vdev = val;
    } else if (key == "--file-prefix") {
      o.file_prefix = val;
    } else if (key == "--local") {
      o.local = parse_addr(val);
    } else if (key == "--peer") {
      o.peer = parse_addr(val);
    } else if (key == "--peer-mac") {
      o.peer_mac = dp::mac_addr::parse(val);
      if (!o.peer_mac) usage("bad MAC " + val);
    } else if (key == "--count") {
      o.count = std::strtoull(val.c_str(), nullptr, 10);
    } else if (key == "--seed") {
      o.seed = std::strtoull(val.c_str(), nullptr, 10);
    } else if (key == "--pps") {
      o.pps = std::strtoull(val.c_str(), nullptr, 10);
    } else if (key == "--timeout-ms") {
      o.timeout_ms = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
    } else if (key == "--idle-ms") {
      o.idle_ms = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
    } else {
      usage("unknown option " + key);
    }
  }
  if (o.role != "send" && o.role != "recv") usage("--role must be send or recv");
  if (o.vdev.empty()) usage("--vdev is required");
  if (o.local.port == 0) usage("--local IP:PORT is required");
  if (o.role == "send" && o.peer.port == 0) usage("--peer is required to send");
  return o;
}

// splitmix64: the datagram's size and bytes follow from (seed, seq), so the receiver can check
// every byte without being told anything.
using tool::mix;

uint32_t size_of(uint64_t seed, uint64_t seq, uint32_t max) {
  return 16 + static_cast<uint32_t>(mix(seed ^ (seq * 2 + 1)) % (max - 16 + 1));
}

void fill(uint8_t* p, uint32_t len, uint64_t seed, uint64_t seq) {
  dp::store_be32(p, static_cast<uint32_t>(seq >> 32));
  dp::store_be32(p + 4, static_cast<uint32_t>(seq));
  dp::store_be32(p + 8, len);
  uint64_t state = mix(seed ^ seq);
  for (uint32_t i = 12; i < len; ++i) {
    if ((i & 7) == 4) state = mix(state);
    p[i] = static_cast<uint8_t>(state >> ((i & 7) * 8));
  }
}

bool check(const uint8_t* p, uint32_t len, uint64_t seed, uint32_t max, uint64_t& seq) {
  if (len < 16) return false;
  seq = (static_cast<uint64_t>(dp::load_be32(p)) << 32) | dp::load_be32(p + 4);
  if (dp::load_be32(p + 8) != len || size_of(seed, seq, max) != len) return false;
  std::vector<uint8_t> want(len);
  fill(want.data(), len, seed, seq);
  return std::equal(want.begin(), want.end(), p);
}

int run_send(dp::port& port, const options& o) {
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::milliseconds(o.timeout_ms);
  uint64_t seq = 0, bytes = 0, not_taken = 0;
  dp::dgram* b[32];
  while (seq < o.count && clock_type::now() < deadline) {
    if (o.pps) {
      const auto due = start + std::chrono::nanoseconds(seq * 1000000000ULL / o.pps);
      while (clock_type::now() < due) {
      }
    }
    const unsigned want = static_cast<unsigned>(std::min<uint64_t>(32, o.count - seq));
    const unsigned n = port.alloc(b, want);
    for (unsigned i = 0; i < n; ++i) {
      b[i]->len = size_of(o.seed, seq + i, port.max_payload());
      b[i]->peer = o.peer;
      fill(b[i]->data, b[i]->len, o.seed, seq + i);
    }
    unsigned done = 0;
    while (done < n && clock_type::now() < deadline) {
      const unsigned sent = port.send(b + done, n - done);
      done += sent;
      if (sent == 0) {
        ++not_taken;
        // Unresolved neighbour or full ring: let ARP replies and the ring drain.
        dp::dgram* rx[32];
        port.free(rx, port.recv(rx, 32));
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    if (done < n) port.free(b + done, n - done);
    seq += done;
  }
  port.flush();
  bytes = port.stats().tx_bytes;
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf(
      "{\"role\":\"send\",\"port\":\"%s\",\"sent\":%llu,\"bytes\":%llu,\"not_taken\":%llu,"
      "\"arp_requests\":%llu,\"seconds\":%.4f}\n",
      port.name().c_str(), static_cast<unsigned long long>(seq),
      static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(not_taken),
      static_cast<unsigned long long>(port.stats().arp_requests), secs);
  std::fflush(stdout);
  // Let the receiver drain before this side closes the port, without touching the port
  // meanwhile: DPDK 22.11's memif PMD unmaps its shared regions from the interrupt thread when
  // the peer disconnects, while a concurrent rx_burst may still read them (a crash seen about
  // once in 40 runs when this side kept polling as the receiver exited).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return seq == o.count ? 0 : 1;
}

int run_recv(dp::port& port, const options& o) {
  std::vector<bool> seen(o.count, false);
  uint64_t valid = 0, bad = 0, dup = 0, out_of_range = 0;
  std::printf("READY\n");
  std::fflush(stdout);
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::milliseconds(o.timeout_ms);
  auto last = start;
  dp::dgram* b[32];
  for (;;) {
    const auto now = clock_type::now();
    if (valid >= o.count || now >= deadline ||
        (valid > 0 && now - last > std::chrono::milliseconds(o.idle_ms))) {
      break;
    }
    const unsigned n = port.recv(b, 32);
    if (n) last = now;
    for (unsigned i = 0; i < n; ++i) {
      uint64_t seq = 0;
      if (!check(b[i]->data, b[i]->len, o.seed, port.max_payload(), seq)) {
        ++bad;
      } else if (seq >= o.count) {
        ++out_of_range;
      } else if (seen[seq]) {
        ++dup;
      } else {
        seen[seq] = true;
        ++valid;
      }
    }
    port.free(b, n);
  }
  std::printf(
      "{\"role\":\"recv\",\"port\":\"%s\",\"expected\":%llu,\"valid\":%llu,\"bad\":%llu,"
      "\"duplicates\":%llu,\"out_of_range\":%llu,\"rx_dropped\":%llu,\"arp_replies\":%llu}\n",
      port.name().c_str(), static_cast<unsigned long long>(o.count),
      static_cast<unsigned long long>(valid), static_cast<unsigned long long>(bad),
      static_cast<unsigned long long>(dup), static_cast<unsigned long long>(out_of_range),
      static_cast<unsigned long long>(port.stats().rx_dropped),
      static_cast<unsigned long long>(port.stats().arp_replies));
  return (valid == o.count && bad == 0 && out_of_range == 0) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string err;
  if (tool::start_eal(o.vdev, o.file_prefix, err) < 0) {
    std::fprintf(stderr, "tandem-lab-port: %s\n", err.c_str());
    return 1;
  }
  int rc = 1;
  try {
    dp::dpdk_port_options po;
    po.port_id = 0;
    po.local = o.local;
    if (o.peer_mac) po.static_neighbours.emplace_back(o.peer.ip, *o.peer_mac);
    dp::dpdk_port port(po);
    rc = o.role == "send" ? run_send(port, o) : run_recv(port, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem-lab-port: %s\n", e.what());
  }
  dp::eal_cleanup();
  return rc;
}
