// SPDX-License-Identifier: Apache-2.0
// Socket port throughput, one sender and one receiver thread: loopback and veth, GSO/GRO on/off.
//
// Each run streams 1472-byte datagrams (a 1500-byte MTU's worth) in bursts of 64 from one port
// to another while a second thread receives, with at most 1024 in flight so that nothing
// overflows; datagrams/s and bytes/s count what arrived. The
// veth runs put the two ports in two namespaces of a test lab (root only; skipped otherwise),
// and take the loopback run of the same mode as their ceiling. The raw_gso pair compares the
// two ways of building a UDP_SEGMENT message without the port: one iovec per datagram (what the
// port does) or a copy into one contiguous buffer.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "dataplane/port/socket_port.h"
#include "perf/bench.h"
#include "tests/lab/netns.h"

namespace tandem::perf {
namespace {

using namespace tandem::dp;

constexpr uint32_t payload = 1472;
constexpr unsigned burst = 64;
constexpr uint64_t window = 1024;  // 1.5 MB of payload; the receive buffer is 4 MiB

struct mode {
  const char* name;
  bool gso;
  bool gro;
};
constexpr mode modes[] = {
    {"plain", false, false}, {"gso", true, false}, {"gro", false, true}, {"gso_gro", true, true}};

// The lab for the veth runs, made on first use and kept for the whole program.
lab::lab* the_lab(std::string& error) {
  static std::unique_ptr<lab::lab> l;
  static std::string failure;
  if (!l && failure.empty()) {
    try {
      l = std::make_unique<lab::lab>(lab::cluster_options(2, 1, false));
    } catch (const std::exception& e) {
      failure = std::string("no test lab (needs root): ") + e.what();
    }
  }
  error = failure;
  return l.get();
}

std::unique_ptr<socket_port> make_port(const std::string& netns, socket_port_options o) {
  if (netns.empty()) return std::make_unique<socket_port>(o);
  std::unique_ptr<socket_port> p;
  std::exception_ptr error;
  std::thread([&] {
    try {
      const int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
        throw std::system_error(errno, std::generic_category(), "setns " + netns);
      }
      ::close(fd);
      p = std::make_unique<socket_port>(o);
    } catch (...) {
      error = std::current_exception();
    }
  }).join();
  if (error) std::rethrow_exception(error);
  return p;
}

// Receives on `p` until told to stop; counts datagrams.
struct receiver {
  explicit receiver(port& p)
      : thread([this, &p] {
          std::vector<dgram*> bufs(256);
          while (!stop.load(std::memory_order_relaxed)) {
            const unsigned n = p.recv(bufs.data(), 256);
            p.free(bufs.data(), n);
            got.fetch_add(n, std::memory_order_relaxed);
            if (n == 0) std::this_thread::yield();
          }
        }) {}
  ~receiver() {
    stop = true;
    thread.join();
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> got{0};
  std::thread thread;
};

void bm_stream(benchmark::State& state, bool veth, mode m) {
  std::string tx_ns, rx_ns;
  socket_port_options txo, rxo;
  txo.enable_gso = rxo.enable_gso = m.gso;
  txo.enable_gro = rxo.enable_gro = m.gro;
  txo.local = rxo.local = {ipv4_addr::from_octets(127, 0, 0, 1), 0};
  if (veth) {
    std::string error;
    lab::lab* l = the_lab(error);
    if (!l) {
      state.SkipWithError(error.c_str());
      return;
    }
    tx_ns = l->netns("node1");
    rx_ns = l->netns("node2");
    txo.local = {*ipv4_addr::parse(l->address("node1", 1)), 0};
    rxo.local = {*ipv4_addr::parse(l->address("node2", 1)), 0};
  }
  auto tx = make_port(tx_ns, txo);
  auto rx = make_port(rx_ns, rxo);
  const udp_addr to = rx->local();
  std::vector<dgram*> bufs(burst);
  uint64_t sent = 0;
  uint64_t got = 0;
  {
    receiver r(*rx);
    for (auto _ : state) {
      // At most `window` datagrams in flight, well inside the receive buffer: the rate is what
      // the path sustains without loss, not what the sender can throw away.
      while (sent - r.got.load(std::memory_order_relaxed) > window)
        std::this_thread::yield();
      const unsigned k = tx->alloc(bufs.data(), burst);
      for (unsigned i = 0; i < k; ++i) {
        bufs[i]->len = payload;
        bufs[i]->peer = to;
      }
      const unsigned taken = tx->send(bufs.data(), k);
      tx->free(bufs.data() + taken, k - taken);
      sent += taken;
    }
    // Let what is in flight land before counting.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    got = r.got.load();
  }
  state.SetItemsProcessed(static_cast<int64_t>(got));
  state.SetBytesProcessed(static_cast<int64_t>(got * payload));
  state.counters["sent"] = static_cast<double>(sent);
  state.counters["lost"] = sent > 0 ? 1.0 - static_cast<double>(got) / sent : 0.0;
  state.counters["gso_msgs"] = static_cast<double>(tx->socket_stats().gso_msgs);
  state.counters["gro_msgs"] = static_cast<double>(rx->socket_stats().gro_msgs);
  if (veth) {
    set_ceiling(state, std::string("socket_port/loopback/") + m.name + "/real_time");
  } else {
    state.SetLabel(m.name);
  }
}

// UDP_SEGMENT messages of 44 x 1472 bytes over loopback to a GRO socket, built from one iovec
// per datagram or copied into one buffer first.
void bm_raw_gso(benchmark::State& state, bool copy) {
  socket_port_options ro;
  ro.local = {ipv4_addr::from_octets(127, 0, 0, 1), 0};
  socket_port rx(ro);
  receiver r(rx);
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  const int big = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(rx.local().port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  constexpr unsigned segs = 44;
  std::vector<std::vector<uint8_t>> dgrams(segs, std::vector<uint8_t>(payload, 0x5a));
  std::vector<uint8_t> staging(segs * payload);
  iovec iov[segs];
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr mh{};
  mh.msg_name = &to;
  mh.msg_namelen = sizeof to;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = IPPROTO_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  const uint16_t seg = payload;
  std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
  uint64_t sent = 0;
  for (auto _ : state) {
    while (sent - r.got.load(std::memory_order_relaxed) > window)
      std::this_thread::yield();
    if (copy) {
      for (unsigned i = 0; i < segs; ++i) {
        std::memcpy(staging.data() + i * payload, dgrams[i].data(), payload);
      }
      iov[0] = {staging.data(), staging.size()};
      mh.msg_iovlen = 1;
    } else {
      for (unsigned i = 0; i < segs; ++i)
        iov[i] = {dgrams[i].data(), payload};
      mh.msg_iovlen = segs;
    }
    mh.msg_iov = iov;
    if (::sendmsg(fd, &mh, 0) > 0) sent += segs;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t got = r.got.load();
  ::close(fd);
  state.SetItemsProcessed(static_cast<int64_t>(got));
  state.SetBytesProcessed(static_cast<int64_t>(got * payload));
  state.counters["lost"] = sent > 0 ? 1.0 - static_cast<double>(got) / sent : 0.0;
  if (copy) {
    set_ceiling(state, "raw_gso/iovec/real_time");
  } else {
    state.SetLabel("iovec");
  }
}

const bool registered = [] {
  // Ceilings first: loopback before veth, iovec before copy.
  for (const bool veth : {false, true}) {
    for (const mode& m : modes) {
      const std::string name =
          std::string("socket_port/") + (veth ? "veth/" : "loopback/") + m.name;
      benchmark::RegisterBenchmark(name.c_str(), bm_stream, veth, m)->UseRealTime();
    }
  }
  benchmark::RegisterBenchmark("raw_gso/iovec", bm_raw_gso, false)->UseRealTime();
  benchmark::RegisterBenchmark("raw_gso/copy", bm_raw_gso, true)->UseRealTime();
  return true;
}();

}  // namespace
}  // namespace tandem::perf
