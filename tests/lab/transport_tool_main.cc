// SPDX-License-Identifier: Apache-2.0
// tandem-lab-transport: one transport connection over a socket or DPDK port inside a lab host.
// The sender streams seeded messages of random sizes; the receiver checks every byte and order;
// both print a JSON summary line (goodput, retransmissions, drops).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/crypto/key_file.h"
#include "dataplane/port/dpdk_port.h"
#include "dataplane/port/eal.h"
#include "dataplane/port/fault_port.h"
#include "dataplane/port/socket_port.h"
#include "dataplane/transport/connection.h"
#include "tests/lab/tool_util.h"

namespace {

using namespace tandem;
namespace tool = tandem::lab::tool;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string role;             // send | recv
  std::string port = "socket";  // socket | a DPDK vdev spec
  std::string file_prefix = "tandem-transport";
  dp::udp_addr local, peer;
  std::string key_file;
  uint64_t mib = 64;
  uint32_t max_message = 1u << 20;
  uint64_t seed = 1;
  unsigned timeout_ms = 120000;
  bool fixed_size = false;  // every message max_message bytes (benchmarks), else random 1..max
  uint32_t mtu = 1500;      // IP MTU of the port (DPDK ports; sockets follow the interface)
  bool copy = false;        // sender: send() (copies) instead of send_ref()
  std::string faults;       // a fault_port on this side's transmissions: drop=P,duplicate=P,...
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(
      stderr,
      "tandem-lab-transport: %s\n"
      "usage: --role send|recv --local IP:PORT --peer IP:PORT [--port socket|VDEV]\n"
      "       [--key-file F] [--mib N] [--max-message BYTES] [--seed S]\n"
      "       [--file-prefix P] [--timeout-ms N] [--fixed-size yes] [--mtu N] [--copy yes]\n"
      "       [--faults drop=P,duplicate=P,reorder=P,corrupt=P,delay-us=N,jitter-us=N,"
      "seed=N]\n",
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
    } else if (key == "--port") {
      o.port = val;
    } else if (key == "--file-prefix") {
      o.file_prefix = val;
    } else if (key == "--local") {
      o.local = parse_addr(val);
    } else if (key == "--peer") {
      o.peer = parse_addr(val);
    } else if (key == "--key-file") {
      o.key_file = val;
    } else if (key == "--mib") {
      o.mib = std::strtoull(val.c_str(), nullptr, 10);
    } else if (key == "--max-message") {
      o.max_message = static_cast<uint32_t>(std::strtoul(val.c_str(), nullptr, 10));
    } else if (key == "--faults") {
      o.faults = val;
    } else if (key == "--copy") {
      o.copy = val == "1" || val == "yes" || val == "true";
    } else if (key == "--mtu") {
      o.mtu = static_cast<uint32_t>(std::strtoul(val.c_str(), nullptr, 10));
    } else if (key == "--fixed-size") {
      o.fixed_size = val == "1" || val == "yes" || val == "true";
    } else if (key == "--seed") {
      o.seed = std::strtoull(val.c_str(), nullptr, 10);
    } else if (key == "--timeout-ms") {
      o.timeout_ms = static_cast<unsigned>(std::strtoul(val.c_str(), nullptr, 10));
    } else {
      usage("unknown option " + key);
    }
  }
  if (o.role != "send" && o.role != "recv") usage("--role must be send or recv");
  if (o.local.port == 0 || o.peer.port == 0) usage("--local and --peer are required");
  if (o.max_message < 16) usage("--max-message must be at least 16");
  if (o.mtu < 576 || o.mtu > 9000) usage("--mtu must be 576..9000");
  return o;
}

using tool::mix;

// Test traffic that costs the tool almost nothing, so a benchmark measures the transport and
// not the generator: message i is a slice of a seeded random pool whose start and size follow
// from (seed, i). A receiver that knows only the seed checks every byte, and the order (two
// messages start at the same place with a chance of 1 in ~16 million), with one memcmp; a
// sender can hand the slices to send_ref() as they are (the pool never changes).
class message_source {
 public:
  message_source(uint64_t seed, uint32_t max, bool fixed_size)
      : seed_(seed), max_(max), fixed_size_(fixed_size) {
    pool_.resize(std::max<size_t>(size_t{16} << 20, size_t{2} * max) & ~size_t{7});
    uint64_t state = mix(seed);
    for (size_t k = 0; k < pool_.size(); k += 8) {
      state = mix(state);
      std::memcpy(pool_.data() + k, &state, 8);
    }
  }
  std::span<const uint8_t> message(uint64_t i) const {
    const uint32_t len =
        fixed_size_ ? max_ : static_cast<uint32_t>(1 + mix(seed_ ^ (i * 2 + 1)) % max_);
    return {pool_.data() + mix(seed_ ^ (i * 2)) % (pool_.size() - len + 1), len};
  }
  bool check(uint64_t i, std::span<const uint8_t> m) const {
    const auto want = message(i);
    return m.size() == want.size() && std::memcmp(m.data(), want.data(), m.size()) == 0;
  }

 private:
  uint64_t seed_;
  uint32_t max_;
  bool fixed_size_;
  std::vector<uint8_t> pool_;
};

// "drop=0.1,duplicate=0.05,reorder=0.1,corrupt=0.01,delay-us=100,jitter-us=50,seed=7".
dp::fault_options parse_faults(const std::string& spec) {
  dp::fault_options f;
  size_t at = 0;
  while (at < spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, comma - at);
    at = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) usage("--faults: want key=value, not " + item);
    const std::string key = item.substr(0, eq);
    const char* text = item.c_str() + eq + 1;
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || v < 0) usage("--faults: bad value in " + item);
    const bool probability =
        key == "drop" || key == "duplicate" || key == "reorder" || key == "corrupt";
    if (probability && v > 1) usage("--faults: " + key + " is a probability (0..1)");
    if (key == "drop") {
      f.tx.drop = v;
    } else if (key == "duplicate") {
      f.tx.duplicate = v;
    } else if (key == "reorder") {
      f.tx.reorder = v;
    } else if (key == "corrupt") {
      f.tx.corrupt = v;
    } else if (key == "delay-us") {
      f.tx.delay_ns = static_cast<uint64_t>(v * 1000);
    } else if (key == "jitter-us") {
      f.tx.jitter_ns = static_cast<uint64_t>(v * 1000);
    } else if (key == "seed") {
      f.seed = static_cast<uint64_t>(v);
    } else {
      usage("--faults: unknown key " + key);
    }
  }
  return f;
}

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
          .count());
}

int run(dp::port& port, const options& o) {
  dp::transport::connection_config cfg;
  cfg.peer = o.peer;
  cfg.max_message = o.max_message;
  cfg.send_buffer = std::max<uint32_t>(32u << 20, 2 * o.max_message);
  cfg.recv_buffer = cfg.send_buffer;
  if (!o.key_file.empty()) cfg.key = dp::load_key_file(o.key_file);
  const uint64_t total = o.mib << 20;
  uint64_t received = 0, received_bytes = 0, bad = 0;
  uint64_t first_ns = 0, last_ns = 0;
  const message_source source(o.seed, o.max_message, o.fixed_size);
  dp::transport::connection conn(port, cfg, [&](std::span<const uint8_t> m) {
    if (!source.check(received, m)) ++bad;
    ++received;
    received_bytes += m.size();
    if (first_ns == 0) first_ns = now_ns();
    last_ns = now_ns();
  });
  const bool sender = o.role == "send";
  if (!sender) {
    std::printf("READY\n");
    std::fflush(stdout);
  }
  const uint64_t deadline = now_ns() + uint64_t{o.timeout_ms} * 1'000'000;
  uint64_t sent = 0, sent_bytes = 0, start_ns = 0, done_ns = 0;
  // send_ref() by default (the replicator's path: no copy into the send ring); --copy yes
  // measures send().
  auto queue = [&](uint64_t i) {
    return o.copy ? conn.send(source.message(i)) : conn.send_ref(source.message(i), i);
  };
  dp::dgram* bufs[64];
  for (;;) {
    const uint64_t now = now_ns();
    if (now > deadline) break;
    const unsigned n = port.recv(bufs, 64);
    conn.input(bufs, n, now);
    port.free(bufs, n);
    if (sender && conn.state() == dp::transport::conn_state::established) {
      if (start_ns == 0) start_ns = now;
      while (sent_bytes < total && queue(sent) == 0)
        sent_bytes += source.message(sent++).size();
      if (sent_bytes >= total && conn.unacked_bytes() == 0) {
        done_ns = now;
        break;
      }
    }
    if (!sender && received_bytes >= total) break;
    conn.poll(now);
    port.flush();
  }
  const auto& s = conn.stats();
  if (sender) {
    const double secs = done_ns ? static_cast<double>(done_ns - start_ns) / 1e9 : 0;
    std::printf(
        "{\"role\":\"send\",\"port\":\"%s\",\"crypto\":\"%s\",\"messages\":%llu,\"bytes\":%llu,"
        "\"seconds\":%.4f,\"gbps\":%.3f,\"retransmitted\":%llu,\"rto_expiries\":%llu,"
        "\"sent_packets\":%llu,"
        "\"rtt_us\":%.1f,\"complete\":%s}\n",
        port.name().c_str(), conn.encrypted() ? "aes-gcm" : "none",
        static_cast<unsigned long long>(sent), static_cast<unsigned long long>(sent_bytes), secs,
        secs > 0 ? static_cast<double>(sent_bytes) * 8 / secs / 1e9 : 0.0,
        static_cast<unsigned long long>(s.retransmitted),
        static_cast<unsigned long long>(s.rto_expiries),
        static_cast<unsigned long long>(s.sent_packets), static_cast<double>(s.rtt_ns) / 1e3,
        done_ns ? "true" : "false");
    return done_ns ? 0 : 1;  // the connection's destructor sends the close
  }
  const bool encrypted = conn.encrypted();  // a closed session no longer has keys
  // Keep acknowledging until the sender has seen everything acked and closed the session (or
  // for at most 5 s): leaving at once would lose the last acks.
  const uint64_t linger = now_ns() + 5'000'000'000ULL;
  while (conn.state() == dp::transport::conn_state::established && now_ns() < linger) {
    const uint64_t now = now_ns();
    const unsigned n = port.recv(bufs, 64);
    conn.input(bufs, n, now);
    port.free(bufs, n);
    conn.poll(now);
    port.flush();
  }
  const double secs = last_ns > first_ns ? static_cast<double>(last_ns - first_ns) / 1e9 : 0;
  std::printf(
      "{\"role\":\"recv\",\"port\":\"%s\",\"crypto\":\"%s\",\"messages\":%llu,\"bytes\":%llu,"
      "\"bad\":%llu,\"seconds\":%.4f,\"gbps\":%.3f,\"dropped_bad_crc\":%llu,"
      "\"dropped_auth\":%llu,\"dropped_replay\":%llu,\"dropped_malformed\":%llu}\n",
      port.name().c_str(), encrypted ? "aes-gcm" : "none",
      static_cast<unsigned long long>(received), static_cast<unsigned long long>(received_bytes),
      static_cast<unsigned long long>(bad), secs,
      secs > 0 ? static_cast<double>(received_bytes) * 8 / secs / 1e9 : 0.0,
      static_cast<unsigned long long>(s.dropped_bad_crc),
      static_cast<unsigned long long>(s.dropped_auth),
      static_cast<unsigned long long>(s.dropped_replay),
      static_cast<unsigned long long>(s.dropped_malformed));
  return (received_bytes >= total && bad == 0) ? 0 : 1;
}

// Runs over `port`, or over a fault port wrapped around it when --faults is given.
int run_port(dp::port& port, const options& o) {
  if (o.faults.empty()) return run(port, o);
  dp::fault_port faulty(port, parse_faults(o.faults));
  const int rc = run(faulty, o);
  const auto& f = faulty.faults().tx;
  std::fprintf(
      stderr, "faults: dropped %llu duplicated %llu corrupted %llu reordered %llu\n",
      static_cast<unsigned long long>(f.dropped), static_cast<unsigned long long>(f.duplicated),
      static_cast<unsigned long long>(f.corrupted), static_cast<unsigned long long>(f.reordered));
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    if (o.port == "socket") {
      dp::socket_port_options so;
      so.local = o.local;
      so.max_payload = o.mtu - 28;
      dp::socket_port port(so);
      return run_port(port, o);
    }
    std::string err;
    if (tool::start_eal(o.port, o.file_prefix, err) < 0) {
      std::fprintf(stderr, "tandem-lab-transport: %s\n", err.c_str());
      return 1;
    }
    int rc;
    {
      dp::dpdk_port_options po;
      po.local = o.local;
      po.mtu = o.mtu;
      po.tx_udp_checksum = dp::udp_checksum_mode::none;  // the transport's CRC32C covers it
      dp::dpdk_port port(po);
      rc = run_port(port, o);
    }
    dp::eal_cleanup();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem-lab-transport: %s\n", e.what());
    return 1;
  }
}
