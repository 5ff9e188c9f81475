// SPDX-License-Identifier: Apache-2.0
// tandem-lab-dpdk-frames: sends or receives numbered UDP frames on one DPDK port (any vdev) and
// prints a JSON summary line. The DPDK harness runs one in each of two lab hosts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/port/eal.h"
#include "tests/lab/tool_util.h"

namespace {

using namespace tandem;
namespace tool = tandem::lab::tool;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string role;  // "tx" or "rx"
  std::string vdev;
  std::string file_prefix = "tandem-frames";
  uint64_t count = 10000;
  unsigned payload = 1024;
  dp::udp_endpoint src, dst;
  unsigned timeout_ms = 20000;
  uint64_t pps = 0;          // 0: as fast as the port takes them
  unsigned idle_ms = 2000;   // rx: stop this long after the last frame
  bool udp_checksum = true;  // tx: false sends 0 ("no checksum"), as the transport does
  unsigned mtu = 1500;       // IP MTU: payload up to mtu - 28
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "tandem-lab-dpdk-frames: %s\n"
               "usage: --role tx|rx --vdev SPEC [--file-prefix P] [--count N] [--payload BYTES]\n"
               "       [--src-ip A] [--dst-ip A] [--dst-mac M] [--port N] [--pps N]\n"
               "       [--timeout-ms N] [--idle-ms N] [--udp-checksum full|none]\n"
               "       [--mtu N]\n",
               why);
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  options o;
  o.src.port = o.dst.port = 7788;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + key).c_str());
    const std::string val = argv[++i];
    auto ip = [&](dp::ipv4_addr& a) {
      auto p = dp::ipv4_addr::parse(val);
      if (!p) usage(("bad IPv4 address " + val).c_str());
      a = *p;
    };
    if (key == "--role") {
      o.role = val;
    } else if (key == "--vdev") {
      o.vdev = val;
    } else if (key == "--file-prefix") {
      o.file_prefix = val;
    } else if (key == "--count") {
      o.count = std::strtoull(val.c_str(), nullptr, 10);
    } else if (key == "--payload") {
      o.payload = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
    } else if (key == "--src-ip") {
      ip(o.src.ip);
    } else if (key == "--dst-ip") {
      ip(o.dst.ip);
    } else if (key == "--dst-mac") {
      auto m = dp::mac_addr::parse(val);
      if (!m) usage(("bad MAC address " + val).c_str());
      o.dst.mac = *m;
    } else if (key == "--port") {
      o.src.port = o.dst.port = static_cast<uint16_t>(std::strtoul(val.c_str(), nullptr, 10));
    } else if (key == "--pps") {
      o.pps = std::strtoull(val.c_str(), nullptr, 10);
    } else if (key == "--idle-ms") {
      o.idle_ms = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
    } else if (key == "--mtu") {
      o.mtu = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
    } else if (key == "--udp-checksum") {
      if (val != "full" && val != "none") usage("--udp-checksum must be full or none");
      o.udp_checksum = val == "full";
    } else if (key == "--timeout-ms") {
      o.timeout_ms = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
    } else {
      usage(("unknown option " + key).c_str());
    }
  }
  if (o.role != "tx" && o.role != "rx") usage("--role must be tx or rx");
  if (o.vdev.empty()) usage("--vdev is required");
  if (o.mtu < 576 || o.mtu > 9000) usage("--mtu must be 576..9000");
  if (o.payload < 8 || o.payload > o.mtu - 28) usage("--payload must be 8..mtu-28");
  return o;
}

void store_seq(uint8_t* p, uint64_t v) {
  dp::store_be32(p, static_cast<uint32_t>(v >> 32));
  dp::store_be32(p + 4, static_cast<uint32_t>(v));
}
uint64_t load_seq(const uint8_t* p) {
  return (static_cast<uint64_t>(dp::load_be32(p)) << 32) | dp::load_be32(p + 4);
}

// Payload: 64-bit sequence number, then a slice of a fixed random pattern chosen by it, so
// corruption is visible at the cost of a memcpy / memcmp (a ceiling must not be tool-bound).
constexpr size_t pattern_stride = 4096;
const std::vector<uint8_t>& pattern() {
  static const std::vector<uint8_t> p = [] {
    std::vector<uint8_t> v(pattern_stride + 9000);
    uint64_t state = 0x74616e64;
    for (auto& b : v)
      b = static_cast<uint8_t>(state = tool::mix(state));
    return v;
  }();
  return p;
}

void fill_payload(uint8_t* p, unsigned len, uint64_t seq) {
  store_seq(p, seq);
  std::memcpy(p + 8, pattern().data() + seq % pattern_stride, len - 8);
}

bool check_payload(std::span<const uint8_t> p, unsigned len, uint64_t& seq) {
  if (p.size() != len) return false;
  seq = load_seq(p.data());
  return std::memcmp(p.data() + 8, pattern().data() + seq % pattern_stride, len - 8) == 0;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "tandem-lab-dpdk-frames: %s\n", what.c_str());
  return 1;
}

int run_rx(uint16_t port, const options& o) {
  std::vector<bool> seen(o.count, false);
  uint64_t valid = 0, duplicates = 0, bad_payload = 0, other = 0, out_of_range = 0;
  uint64_t drops[dp::drop_reason_count] = {};
  std::printf("READY\n");
  std::fflush(stdout);
  rte_mbuf* bufs[32];
  const auto start = clock_type::now();
  auto first = clock_type::time_point{};
  auto last = start;
  const auto deadline = start + std::chrono::milliseconds(o.timeout_ms);
  const auto idle = std::chrono::milliseconds(o.idle_ms);
  for (;;) {
    const auto now = clock_type::now();
    if (valid >= o.count || now >= deadline || (valid > 0 && now - last > idle)) break;
    const uint16_t n = rte_eth_rx_burst(port, 0, bufs, 32);
    if (n) last = now;
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = bufs[i];
      const std::span<const uint8_t> frame(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len);
      const auto r = dp::parse_frame(frame);
      if (r.is_drop()) {
        ++drops[static_cast<size_t>(r.reason)];
      } else if (!r.is_udp() || r.udp.dst.port != o.dst.port) {
        ++other;  // the kernel's own traffic on the interface (ARP, ICMP, IPv6 ND)
      } else {
        uint64_t seq = 0;
        if (!check_payload(r.udp.payload, o.payload, seq)) {
          ++bad_payload;
        } else if (seq >= o.count) {
          ++out_of_range;
        } else if (seen[seq]) {
          ++duplicates;
        } else {
          if (valid == 0) first = now;
          seen[seq] = true;
          ++valid;
        }
      }
      rte_pktmbuf_free(m);
    }
  }
  const double secs = valid ? std::chrono::duration<double>(last - first).count() : 0;
  std::string drop_json;
  for (size_t r = 1; r < dp::drop_reason_count; ++r) {
    if (drops[r] == 0) continue;
    if (!drop_json.empty()) drop_json += ",";
    drop_json += "\"" + std::string(dp::to_string(static_cast<dp::drop_reason>(r))) +
                 "\":" + std::to_string(drops[r]);
  }
  std::printf(
      "{\"role\":\"rx\",\"expected\":%llu,\"valid\":%llu,\"duplicates\":%llu,"
      "\"bad_payload\":%llu,\"out_of_range\":%llu,\"other\":%llu,\"dropped\":{%s},"
      "\"seconds\":%.4f,\"mbit_per_s\":%.1f}\n",
      static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(valid),
      static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(bad_payload),
      static_cast<unsigned long long>(out_of_range), static_cast<unsigned long long>(other),
      drop_json.c_str(), secs, secs > 0 ? valid * o.payload * 8.0 / secs / 1e6 : 0.0);
  return (valid == o.count && bad_payload == 0 && out_of_range == 0) ? 0 : 1;
}

int run_tx(uint16_t port, rte_mempool* pool, const options& o) {
  // Wait for the link (memif needs its peer to connect).
  const auto deadline = clock_type::now() + std::chrono::milliseconds(o.timeout_ms);
  rte_eth_link link{};
  while (clock_type::now() < deadline) {
    if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (link.link_status != RTE_ETH_LINK_UP) return fail("link did not come up");
  const auto start = clock_type::now();
  uint64_t sent = 0, retries = 0;
  std::vector<uint8_t> payload(o.payload);
  dp::udp_build_options bo;
  bo.udp_checksum = o.udp_checksum ? dp::udp_checksum_mode::full : dp::udp_checksum_mode::none;
  rte_mbuf* bufs[32];
  while (sent < o.count && clock_type::now() < deadline) {
    if (o.pps) {
      const auto due = start + std::chrono::nanoseconds(sent * 1000000000ULL / o.pps);
      while (clock_type::now() < due) {
      }
    }
    const unsigned burst = static_cast<unsigned>(std::min<uint64_t>(32, o.count - sent));
    if (rte_pktmbuf_alloc_bulk(pool, bufs, burst) != 0) {
      ++retries;
      continue;
    }
    for (unsigned i = 0; i < burst; ++i) {
      fill_payload(payload.data(), o.payload, sent + i);
      const auto len = static_cast<uint16_t>(dp::udp_frame_overhead + o.payload);
      auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(bufs[i], len));
      if (!data || dp::build_udp_frame({data, len}, o.src, o.dst, payload, bo) != len) {
        rte_pktmbuf_free_bulk(bufs, burst);
        return fail("cannot build a " + std::to_string(len) + "-byte frame in an mbuf");
      }
    }
    unsigned done = 0;
    while (done < burst && clock_type::now() < deadline) {
      const uint16_t n =
          rte_eth_tx_burst(port, 0, bufs + done, static_cast<uint16_t>(burst - done));
      done += n;
      if (n == 0) ++retries;
    }
    if (done < burst) rte_pktmbuf_free_bulk(bufs + done, burst - done);
    sent += done;
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf(
      "{\"role\":\"tx\",\"sent\":%llu,\"retries\":%llu,\"seconds\":%.4f,\"mbit_per_s\":%.1f}\n",
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(retries), secs,
      secs > 0 ? sent * o.payload * 8.0 / secs / 1e6 : 0.0);
  std::fflush(stdout);
  // Let the peer drain before the port goes away.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return sent == o.count ? 0 : 1;
}

// Configures and starts the port; "" or what failed.
std::string setup_port(uint16_t port, rte_mempool* pool, unsigned mtu) {
  rte_eth_conf conf{};
  if (int e = rte_eth_dev_configure(port, 1, 1, &conf); e < 0) {
    return std::string("configure: ") + std::strerror(-e);
  }
  // Best effort, as dpdk_port does: af_packet takes the MTU from the kernel interface.
  (void)rte_eth_dev_set_mtu(port, static_cast<uint16_t>(mtu));
  if (int e = rte_eth_rx_queue_setup(port, 0, 1024, rte_socket_id(), nullptr, pool); e < 0) {
    return std::string("rx queue: ") + std::strerror(-e);
  }
  if (int e = rte_eth_tx_queue_setup(port, 0, 1024, rte_socket_id(), nullptr); e < 0) {
    return std::string("tx queue: ") + std::strerror(-e);
  }
  if (int e = rte_eth_dev_start(port); e < 0) return std::string("start: ") + std::strerror(-e);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string err;
  if (tool::start_eal(o.vdev, o.file_prefix, err) < 0) return fail(err);
  int rc = 1;
  if (rte_eth_dev_count_avail() != 1) {
    rc = fail("expected exactly one port from --vdev " + o.vdev);
  } else {
    const uint16_t port = 0;
    const unsigned room = std::max<unsigned>(RTE_MBUF_DEFAULT_BUF_SIZE,
                                             o.mtu + RTE_ETHER_HDR_LEN + RTE_PKTMBUF_HEADROOM);
    rte_mempool* pool = rte_pktmbuf_pool_create("frames", 8191, 256, 0, static_cast<uint16_t>(room),
                                                rte_socket_id());
    std::string why;
    if (!pool) {
      rc = fail(std::string("mempool: ") + rte_strerror(rte_errno));
    } else if (why = setup_port(port, pool, o.mtu); !why.empty()) {
      rc = fail(why);
    } else {
      rte_ether_addr mac{};
      rte_eth_macaddr_get(port, &mac);
      options run = o;  // the source MAC is the port's own
      std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes), run.src.mac.bytes.begin());
      rc = o.role == "rx" ? run_rx(port, run) : run_tx(port, pool, run);
      rte_eth_dev_stop(port);
    }
    rte_eth_dev_close(port);
  }
  dp::eal_cleanup();
  return rc;
}
