// SPDX-License-Identifier: Apache-2.0
// tandem-replicator's core: volumes on lcore threads, JSON commands from the control thread.
#include "dataplane/app/replicator.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>
#include <thread>

#include <openssl/sha.h>

#include "dataplane/app/shim_frontend.h"
#include "dataplane/app/workload.h"
#include "dataplane/backend/uring_backend.h"
#include "dataplane/crypto/key_file.h"
#include "dataplane/frontend/loop_device.h"
#include "dataplane/mirror/volume.h"
#include "dataplane/port/dpdk_port.h"
#include "dataplane/port/eal.h"
#include "dataplane/port/eal_args.h"
#include "dataplane/port/socket_port.h"
#include "dataplane/volume/metadata.h"

namespace tandem::dp::app {
namespace {

using json = nlohmann::json;
namespace cfg = ctl::config;

// An idle lcore's naps (replicator::nap): 50 us at first; 1 ms once it has seen no I/O for 10 ms
// and every volume can wake it. The timers an idle volume runs (keepalive, dead peer) are 10 ms
// or more; an ack of a keepalive may leave up to a nap late, and says so (ack_delay), so the
// RTT estimate is not skewed.
constexpr uint64_t short_nap_ns = 50'000;
constexpr uint64_t long_nap_ns = 1'000'000;
constexpr uint64_t long_nap_after_ns = 10'000'000;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

json fail(const std::string& why) {
  return {{"ok", false}, {"error", why}};
}

std::string hex(uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

json gens(const volume::generation_ids& g) {
  return {{"current", hex(g.current)},
          {"bitmap", hex(g.bitmap)},
          {"history", {hex(g.history[0]), hex(g.history[1])}}};
}

// The volume's identity: SHA-256 of its name and its replicas' node names, sorted.
std::array<uint8_t, 16> volume_uuid(const cfg::mirror_volume& v) {
  std::vector<std::string> nodes;
  for (const auto& r : v.replicas)
    nodes.push_back(r.node);
  std::sort(nodes.begin(), nodes.end());
  std::string text = "tandem volume " + v.name;
  for (const auto& n : nodes)
    text += " " + n;
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(text.data()), text.size(), digest);
  std::array<uint8_t, 16> uuid{};
  std::memcpy(uuid.data(), digest, uuid.size());
  return uuid;
}

// Discards and zeroings are cut on a grid of whole activity-log extents, each piece within what
// the log can hold and mirror::max_zero_bytes.
uint64_t zero_chunk_of(const cfg::mirror_volume& v) {
  const uint64_t extent = v.al_extent;
  if (extent >= mirror::max_zero_bytes) return mirror::max_zero_bytes;
  const uint64_t k =
      std::clamp<uint64_t>(v.al_slots > 1 ? v.al_slots - 1 : 1, 1, mirror::max_zero_bytes / extent);
  return k * extent;
}

// "0-3,6": a CPU set as Linux writes it.
std::string cpu_list(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int last = c;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set))
      ++last;
    out +=
        (out.empty() ? "" : ",") + std::to_string(c) + (last > c ? "-" + std::to_string(last) : "");
    c = last;
  }
  return out.empty() ? "none" : out;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

// An async volume's history file: an existing block device as it is; a regular file created (only
// where nothing is: a device path that does not exist yet must not become a file in /dev) or
// resized to `size`, with its blocks allocated now so that a full file system shows at attach,
// not as a failed spill. It must not be the volume's data or metadata under another name.
std::unique_ptr<backend::backend> open_history(const std::string& path, uint64_t size,
                                               const std::string& data, const std::string& meta) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      throw std::runtime_error("history " + path + ": " + std::strerror(errno));
    }
    if (path.rfind("/dev/", 0) == 0) {
      throw std::runtime_error("history " + path +
                               " does not exist (a device path is not created)");
    }
  } else if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
    throw std::runtime_error("history " + path + " is neither a regular file nor a block device");
  } else {
    for (const std::string& other : {data, meta}) {
      struct stat o {};
      if (::stat(other.c_str(), &o) == 0 && o.st_dev == st.st_dev && o.st_ino == st.st_ino) {
        throw std::runtime_error("history " + path + " is " + other +
                                 ", the volume's own data or metadata");
      }
    }
  }
  if (!S_ISBLK(st.st_mode)) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      throw std::runtime_error("cannot create the history file " + path + ": " +
                               std::strerror(errno));
    }
    // posix_fallocate answers an errno itself.
    const int rc = ::ftruncate(fd, static_cast<off_t>(size)) == 0
                       ? ::posix_fallocate(fd, 0, static_cast<off_t>(size))
                       : errno;
    ::close(fd);
    if (rc != 0) {
      throw std::runtime_error("cannot allocate the history file " + path + " (" +
                               std::to_string(size >> 20) + " MiB): " + std::strerror(rc));
    }
  }
  backend::uring_options uo;
  uo.path = path;
  uo.block_size = 4096;
  uo.queue_depth = 64;
  return std::make_unique<backend::uring_backend>(uo);
}

// A command's argument errors: answered with {"ok":false} by dispatch().
struct bad_command : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

struct replicator::volume_slot {
  const cfg::mirror_volume* conf = nullptr;
  const cfg::mirror_replica* local = nullptr;
  const cfg::mirror_replica* peer = nullptr;
  uint32_t node_id = 0;
  // Attached: the engine and what it runs on (declared in destruction order: engine first).
  std::unique_ptr<backend::backend> data;
  std::unique_ptr<backend::backend> meta_io;
  std::unique_ptr<backend::backend> history;  // mode async with a history file
  std::optional<volume::metadata_store> meta;
  std::unique_ptr<plugged_device> device;  // transport.port dpdk: the ethdev under `port`
  std::unique_ptr<dp::port> port;
  std::unique_ptr<mirror::volume> engine;
  std::unique_ptr<workload> load;
  // The FUSE frontend's file of this volume (nullptr without a FUSE mount), and a request it
  // handed over that the engine could not take yet (-EAGAIN: max_in_flight reached).
  frontend::fuse_export* fuse = nullptr;
  std::optional<mirror::io_request> held;
  // /dev/tandem<index> through tandem.ko (kernel_devices), while attached; index: the volume's
  // position in mirrors.volumes.
  unsigned index = 0;
  std::unique_ptr<shim_frontend> shim;
  unsigned lcore = 0;  // the lcore that owns the volume: the only thread that touches what follows
  mirror::conn_state last_conn = mirror::conn_state::standalone;
  volume::role last_role = volume::role::secondary;
  volume::disk_state last_disk = volume::disk_state::inconsistent;

  bool attached() const { return engine != nullptr; }

  void release() {
    load.reset();
    engine.reset();  // before the shim: the engine's requests may point into its mapped slots
    shim.reset();
    port.reset();
    device.reset();
    meta.reset();
    meta_io.reset();
    history.reset();
    data.reset();
  }
};

// One polling thread and the volumes placed on it. The control thread reaches it only through
// `queue` and `has_work`; everything else is the thread's own. Aligned so that two lcores'
// flags never share a cache line.
struct alignas(64) replicator::lcore {
  unsigned id = 0;
  int cpu = -1;                       // the CPU it is pinned to; -1: not pinned
  std::vector<volume_slot*> volumes;  // in config order
  std::mutex mu;
  std::deque<pending> queue;
  std::atomic<bool> has_work{false};
  std::thread thread;
};

replicator::replicator(replicator_options opts) : opts_(std::move(opts)) {
  const auto& conf = opts_.config;
  if (conf.lcores < 1 || conf.lcores > cfg::max_mirror_lcores) {
    throw std::invalid_argument("mirrors.lcores is " + std::to_string(conf.lcores) +
                                ": expected 1 to " + std::to_string(cfg::max_mirror_lcores));
  }
  std::vector<std::string> skipped;
  for (size_t at = 0; at < conf.volumes.size(); ++at) {
    const cfg::mirror_volume& v = conf.volumes[at];
    auto s = std::make_unique<volume_slot>();
    s->conf = &v;
    s->local = v.replica(opts_.node);
    if (!s->local) {
      skipped.push_back(v.name);
      continue;
    }
    if (v.replicas.size() != 2) {
      throw std::invalid_argument(
          "volume " + v.name + ": tandem-replicator mirrors to exactly one " +
          "peer (2 replicas), this one has " + std::to_string(v.replicas.size()));
    }
    for (size_t i = 0; i < v.replicas.size(); ++i) {
      if (&v.replicas[i] == s->local) {
        s->node_id = opts_.node_id ? opts_.node_id : static_cast<uint32_t>(i + 1);
      } else {
        s->peer = &v.replicas[i];
      }
    }
    s->index = static_cast<unsigned>(at);
    // Round-robin over the served volumes unless the file places the volume (the loader checked
    // the range; checked again for options built in code).
    s->lcore = v.lcore.value_or(static_cast<uint32_t>(volumes_.size() % conf.lcores));
    if (s->lcore >= conf.lcores) {
      throw std::invalid_argument("volume " + v.name + ": lcore " + std::to_string(s->lcore) +
                                  " is not below mirrors.lcores (" + std::to_string(conf.lcores) +
                                  ")");
    }
    volumes_.push_back(std::move(s));
  }
  if (volumes_.empty()) {
    throw std::invalid_argument("node " + opts_.node + " holds a replica of none of the " +
                                std::to_string(conf.volumes.size()) +
                                " configured volumes: nothing to serve");
  }
  // Pinning: every CPU must exist and be one this process may run on (a cpuset or taskset can
  // leave some out), or an lcore would silently run elsewhere.
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (!conf.lcore_cpus.empty() && ::sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    throw std::runtime_error(std::string("mirrors.lcore_cpus: sched_getaffinity: ") +
                             std::strerror(errno));
  }
  const auto cpus_at = conf.locs.find("lcore_cpus");
  const std::string where =
      cpus_at == conf.locs.end() || cpus_at->second.line == 0
          ? std::string("mirrors.lcore_cpus")
          : "mirrors.lcore_cpus (line " + std::to_string(cpus_at->second.line) + ")";
  for (uint32_t i = 0; i < conf.lcores; ++i) {
    auto l = std::make_unique<lcore>();
    l->id = i;
    if (!conf.lcore_cpus.empty()) {
      const uint32_t cpu = conf.lcore_cpus[i % conf.lcore_cpus.size()];
      const int configured = ::get_nprocs_conf();
      if (cpu >= static_cast<uint32_t>(configured) || cpu >= CPU_SETSIZE) {
        throw std::invalid_argument(where + ": CPU " + std::to_string(cpu) +
                                    " does not exist on this machine (its CPUs are 0-" +
                                    std::to_string(configured - 1) + ")");
      }
      if (!CPU_ISSET(cpu, &allowed)) {
        throw std::invalid_argument(
            where + ": CPU " + std::to_string(cpu) +
            " is offline or not one this process may run on (allowed: " + cpu_list(allowed) + ")");
      }
      l->cpu = static_cast<int>(cpu);
    }
    lcores_.push_back(std::move(l));
  }
  for (auto& v : volumes_)
    lcores_[v->lcore]->volumes.push_back(v.get());
  if (!skipped.empty()) {
    log("node " + opts_.node + " holds no replica of " + std::to_string(skipped.size()) +
        " configured volume" + (skipped.size() == 1 ? "" : "s") +
        ", not served here: " + joined(skipped));
  }
  for (auto& l : lcores_) {
    std::vector<std::string> names;
    for (const volume_slot* v : l->volumes)
      names.push_back(v->conf->name);
    log("lcore " + std::to_string(l->id) +
        (l->cpu >= 0 ? " (CPU " + std::to_string(l->cpu) + ")" : std::string()) + ": " +
        (names.empty() ? "no volumes" : joined(names)));
  }
  opts_.kernel_devices = opts_.kernel_devices || opts_.config.kernel_devices;
  if (opts_.config.transport.port == cfg::mirror_port::dpdk) {
    if (opts_.eal_file_prefix.empty()) opts_.eal_file_prefix = "tandem-replicator-" + opts_.node;
    std::string error;
    const int rc =
        eal_init(replicator_eal_arguments(opts_.config, opts_.node, opts_.eal_file_prefix), error);
    // A second replicator in one process (tests) shares the EAL the first one started.
    if (rc != 0 && rc != -EALREADY) throw std::runtime_error("DPDK: " + error);
    dpdk_ = true;
  }
  if (opts_.fuse_mount.empty()) opts_.fuse_mount = opts_.config.fuse_mount;
  if (!opts_.fuse_mount.empty()) {
    std::vector<std::string> names;
    for (const auto& v : volumes_)
      names.push_back(v->conf->name);
    frontend::fuse_frontend_options fo;
    fo.mountpoint = opts_.fuse_mount;
    fuse_ = std::make_unique<frontend::fuse_frontend>(fo, names);
    for (auto& v : volumes_)
      v->fuse = fuse_->find(v->conf->name);
    log("FUSE frontend mounted on " + fuse_->mountpoint());
  }
  try {
    for (auto& l : lcores_)
      l->thread = std::thread([this, lp = l.get()] { run(*lp); });
  } catch (...) {
    stop_ = true;
    for (auto& l : lcores_)
      if (l->thread.joinable()) l->thread.join();
    throw;
  }
}

std::vector<std::string> replicator_eal_arguments(const cfg::mirrors_config& config,
                                                  const std::string& node,
                                                  const std::string& file_prefix) {
  std::vector<std::string> pci;
  bool memif = false;
  for (const cfg::mirror_volume& v : config.volumes) {
    const cfg::mirror_replica* r = v.replica(node);
    if (!r || r->dpdk_device.empty()) continue;
    if (device_bus(r->dpdk_device) == "pci") pci.push_back(r->dpdk_device);
    if (r->dpdk_device.rfind("net_memif", 0) == 0) memif = true;
  }
  std::vector<std::string> args;
  const auto& configured = config.transport.eal_args;
  if (configured.empty()) {
    eal_options eo;
    eo.file_prefix = file_prefix;
    eo.no_shconf = !memif;
    args = eal_arguments(eo);
    if (!pci.empty()) {
      args.erase(std::find(args.begin(), args.end(), "--no-pci"));
      for (const auto& d : pci)
        args.insert(args.end(), {"-a", d});
    }
  } else {
    args = {"tandem"};
    args.insert(args.end(), configured.begin(), configured.end());
    const bool named = std::any_of(configured.begin(), configured.end(),
                                   [](const auto& a) { return a.rfind("--file-prefix", 0) == 0; });
    if (!named) args.push_back("--file-prefix=" + file_prefix);
  }
  args[0] = "tandem-replicator";
  return args;
}

replicator::~replicator() {
  // The FUSE frontend takes no more requests from here on; each lcore still completes what it
  // took (drain) before it shuts its volumes down.
  if (fuse_) fuse_->close_down();
  stop_ = true;
  for (auto& l : lcores_)
    l->thread.join();
  // FUSE requests an engine took and never completed (it was destroyed): their workers must not
  // wait for ever.
  for (auto& v : volumes_)
    if (v->fuse) v->fuse->fail_in_flight(-ESHUTDOWN);
  fuse_.reset();
}

void replicator::log(const std::string& line) const {
  if (opts_.log) {
    opts_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

replicator::volume_slot* replicator::find(const std::string& name) const {
  for (const auto& v : volumes_)
    if (v->conf->name == name) return v.get();
  return nullptr;
}

std::future<json> replicator::post(lcore& l, const json& command) {
  std::lock_guard<std::mutex> g(l.mu);
  l.queue.push_back({command, {}});
  std::future<json> answer = l.queue.back().answer.get_future();
  l.has_work.store(true, std::memory_order_release);
  return answer;
}

json replicator::execute(const json& command) {
  if (command.is_object() && command.contains("cmd") &&
      (command["cmd"] == "loop" || command["cmd"] == "unloop")) {
    try {
      return loop_command(command);
    } catch (const std::exception& e) {
      return fail(command["cmd"].get<std::string>() + ": " + e.what());
    }
  }
  // The volume's owner. A command that names no served volume is refused by lcore 0 exactly as
  // it would be by any (the answer lists every served volume).
  lcore* owner = lcores_[0].get();
  if (command.is_object()) {
    const auto vol = command.find("volume");
    if (vol == command.end()) {
      const auto cmd = command.find("cmd");
      if (cmd != command.end() && *cmd == "status" && lcores_.size() > 1)
        return status_all(command);
    } else if (vol->is_string()) {
      if (volume_slot* v = find(vol->get<std::string>())) owner = lcores_[v->lcore].get();
    }
  }
  return post(*owner, command).get();
}

// `status` without a volume on several lcores: each answers for its own volumes (their states
// are read by their owner), merged in config order.
json replicator::status_all(const json& command) {
  std::vector<std::future<json>> futures;
  for (auto& l : lcores_)
    futures.push_back(post(*l, command));
  std::vector<json> parts;
  for (auto& f : futures)
    parts.push_back(f.get());
  for (const json& p : parts)
    if (!p.value("ok", false)) return p;
  json out = {
      {"ok", true}, {"node", opts_.node}, {"lcores", lcores_.size()}, {"volumes", json::array()}};
  std::vector<size_t> next(lcores_.size(), 0);
  for (const auto& v : volumes_)
    out["volumes"].push_back(std::move(parts[v->lcore]["volumes"][next[v->lcore]++]));
  return out;
}

// An lcore: commands when there are any, then each of its attached volumes. After 256 polls with
// no I/O (no application request, nothing outstanding on any of its volumes: mirror::volume::busy)
// it naps between polls, so an idle replicator does not hold a core. While I/O waits on the peer
// or the disk it keeps polling: a nap on each side would add to every round trip. Session traffic
// alone (keepalives) is handled without starting the 256 polls again.
void replicator::run(lcore& l) {
  const std::string name = "tandem-lcore" + std::to_string(l.id);  // at most 15 characters
  ::pthread_setname_np(::pthread_self(), name.c_str());
  if (l.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(l.cpu, &set);
    if (const int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set); rc != 0) {
      log("lcore " + std::to_string(l.id) + ": not pinned to CPU " + std::to_string(l.cpu) + ": " +
          std::strerror(rc));
    }
  }
  // Naps of 50 us, not the default 50 us of timer slack on top.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  // This thread serves block devices (tandem.ko, a loop device over the FUSE file): memory
  // reclaim must not make it wait for writeback to those very devices (needs CAP_SYS_RESOURCE;
  // without it the replicator runs as before).
  ::prctl(PR_SET_IO_FLUSHER, 1UL, 0UL, 0UL, 0UL);
  if (dpdk_) {
    std::string error;
    if (eal_register_thread(error) != 0) {
      log("lcore " + std::to_string(l.id) + ": DPDK: " + error + " (mempool caches unused)");
    }
  }
  unsigned idle = 0;
  uint64_t last_io = now_ns();
  while (!stop_.load(std::memory_order_relaxed)) {
    int io = 0;  // application requests, the workload, commands, volumes with I/O outstanding
    if (l.has_work.load(std::memory_order_acquire)) {
      std::deque<pending> work;
      {
        std::lock_guard<std::mutex> g(l.mu);
        work.swap(l.queue);
        l.has_work = false;
      }
      for (pending& p : work) {
        json answer;
        try {
          answer = dispatch(l, p.command);
        } catch (const std::exception& e) {
          answer = fail(e.what());
        }
        p.answer.set_value(std::move(answer));
      }
      ++io;
    }
    int busy = 0;  // any work, the session's own included
    const uint64_t now = now_ns();
    for (volume_slot* v : l.volumes) {
      io += pump(*v, now);
      if (!v->attached()) continue;
      busy += v->engine->poll(now);
      // Waiting on the peer or the disk: keep polling (a nap would add to every round trip).
      if (v->engine->busy()) ++io;
      io += pump(*v, now);
      if (v->load) io += v->load->poll(now);
      const auto conn = v->engine->connection_state();
      const auto role = v->engine->role();
      const auto disk = v->engine->disk();
      if (conn != v->last_conn || role != v->last_role || disk != v->last_disk) {
        log("volume " + v->conf->name + ": " + volume::to_string(role) + ", " +
            volume::to_string(disk) + ", " + mirror::to_string(conn));
        v->last_conn = conn;
        v->last_role = role;
        v->last_disk = disk;
      }
    }
    if (io) {
      idle = 0;
      last_io = now;
    } else if (busy == 0 && ++idle > 256) {
      nap(l, now - last_io >= long_nap_after_ns);
    }
  }
  // Shutdown (the destructor closed the FUSE frontend first): each volume cleanly where it can
  // be, after what it has in flight completed.
  for (volume_slot* v : l.volumes)
    shut_down(*v);
  if (dpdk_) eal_unregister_thread();
}

void replicator::shut_down(volume_slot& v) {
  drain(v, true);
  if (!v.attached()) return;
  if (v.shim) {
    // Deleted unless something holds it open; then it stays, failing I/O until a replicator
    // attaches again.
    // (Requests still in flight: it is unmapped only after the engine is gone, in release.)
    try {
      if (const int rc = v.shim->remove(); rc != 0) {
        log("volume " + v.conf->name + ": " + v.shim->device() + " " +
            (rc == -EBUSY ? "is open" : "still has requests in flight") +
            ": left in place, failing I/O until the volume is attached again");
      }
    } catch (const std::exception& e) {
      log("volume " + v.conf->name + ": " + e.what());
    }
  }
  v.load.reset();
  if (v.engine->shutdown() != 0) {
    log("volume " + v.conf->name + ": not shut down cleanly: " + v.engine->last_error());
  }
  release(v);
}

void replicator::release(volume_slot& v) {
  std::unique_lock<std::mutex> g(dpdk_mu_, std::defer_lock);
  if (v.device) g.lock();  // closes its ethdev and unplugs the device
  v.release();
}

// The idle lcore's nap: a sleep on what can wake it, those of its own volumes: the kernel
// devices' eventfds (the kernel signals only while NEED_WAKEUP is set), the FUSE files' eventfds
// (likewise armed) and the socket ports. A block request or a datagram wakes it at once. The nap
// lasts 50 us; after `long_nap_after_ns` without I/O it lasts `long_nap_ns` instead, when every
// attached volume can wake it that way (not a DPDK port, nor a socket port with datagrams
// received and not handed out, nor more descriptors than the poll set holds), so an idle
// replicator costs little CPU.
void replicator::nap(lcore& l, bool long_nap) {
  constexpr unsigned max_fds = 512;
  pollfd fds[max_fds];
  int efd[max_fds];
  unsigned fuse_at[max_fds];  // per volume of the lcore: its FUSE file's place in fds, or max_fds
  unsigned n = 0;
  bool ready = false;
  bool wakes = true;  // every volume can wake the sleep
  auto add = [&](int fd) {
    if (n == max_fds) {
      wakes = false;
      return false;
    }
    fds[n++] = {.fd = fd, .events = POLLIN, .revents = 0};
    return true;
  };
  for (size_t i = 0; i < l.volumes.size(); ++i) {
    volume_slot* v = l.volumes[i];
    if (v->shim) {
      ready = v->shim->arm_wakeup() || ready;
      const unsigned k = v->shim->event_fds(std::span<int>(efd, max_fds));
      for (unsigned j = 0; j < k; ++j)
        (void)add(efd[j]);
    }
    fuse_at[i] = max_fds;
    if (v->fuse) {
      ready = v->fuse->arm_wakeup() || ready;
      if (add(v->fuse->wake_fd())) fuse_at[i] = n - 1;
    }
    if (v->attached()) {
      const int fd = v->port->wait_fd();
      if (fd < 0 || !add(fd)) wakes = false;
    }
  }
  if (!ready) {
    const uint64_t ns = long_nap && wakes ? long_nap_ns : short_nap_ns;
    const timespec ts{.tv_sec = 0, .tv_nsec = static_cast<long>(ns)};
    (void)::ppoll(fds, n, &ts, nullptr);
  }
  for (size_t i = 0; i < l.volumes.size(); ++i) {
    volume_slot* v = l.volumes[i];
    if (v->shim) v->shim->disarm_wakeup();
    if (v->fuse) v->fuse->disarm_wakeup(fuse_at[i] < n && (fds[fuse_at[i]].revents & POLLIN) != 0);
  }
}

// Moves FUSE requests to the engine and the engine's completions to their submitters (the FUSE
// file or the workload, told apart by the cookie). Returns the work done.
int replicator::pump(volume_slot& v, uint64_t now) {
  int work = 0;
  if (v.fuse) {
    mirror::io_request io;
    for (;;) {
      if (v.held) {
        io = *v.held;
      } else if (!v.fuse->next(io)) {
        break;
      }
      ++work;
      if (!v.attached()) {  // detached while the request was on its way
        v.held.reset();
        v.fuse->complete(io.cookie, -ENXIO);
        continue;
      }
      const int rc = v.engine->submit(io);
      if (rc == -EAGAIN) {
        v.held = io;
        break;
      }
      v.held.reset();
      if (rc < 0) v.fuse->complete(io.cookie, rc);
    }
  }
  if (!v.attached()) return work;
  if (v.shim) work += v.shim->pump(*v.engine);
  mirror::io_completion done[64];
  for (;;) {
    const unsigned n = v.engine->reap(done);
    for (unsigned i = 0; i < n; ++i) {
      if (done[i].cookie & frontend::fuse_cookie_bit) {
        if (v.fuse) v.fuse->complete(done[i].cookie, done[i].result);
      } else if (done[i].cookie & shim_cookie_bit) {
        if (v.shim) v.shim->complete(*v.engine, done[i].cookie, done[i].result);
      } else if (v.load) {
        v.load->complete(done[i].cookie, done[i].result, now);
      }
    }
    work += static_cast<int>(n);
    if (n < std::size(done)) break;
  }
  if (v.shim) v.shim->commit();
  return work;
}

// Polls the volume until the FUSE file's requests (and, with `workload`, the workload's writes)
// are completed: at most 10 s, the engine fails what its peer does not answer before that.
void replicator::drain(volume_slot& v, bool with_workload) {
  const uint64_t deadline = now_ns() + 10'000'000'000ULL;
  auto outstanding = [&] {
    return (v.fuse && (v.fuse->in_flight() > 0 || v.held)) || (v.shim && v.shim->in_flight() > 0) ||
           (with_workload && v.load && v.load->in_flight() > 0);
  };
  while (outstanding() && now_ns() < deadline) {
    const uint64_t now = now_ns();
    int work = pump(v, now);
    if (v.attached()) work += v.engine->poll(now);
    if (!work) ::usleep(20);
  }
  if (v.held) {
    v.fuse->complete(v.held->cookie, -ESHUTDOWN);
    v.held.reset();
  }
}

json replicator::loop_command(const json& c) {
  const std::string cmd = c["cmd"].get<std::string>();
  if (!fuse_) {
    return fail(cmd + ": this replicator has no FUSE mount (mirrors.fuse_mount or --fuse-mount)");
  }
  // Names the volume (or the problem) and says whether it is attached, from the lcore.
  const json st = execute({{"cmd", "status"}, {"volume", c.value("volume", json())}});
  if (!st.value("ok", false)) return fail(cmd + ": " + st.value("error", std::string("refused")));
  const json& v = st["volumes"][0];
  const std::string name = v["name"].get<std::string>();
  const std::string path = fuse_->path_of(name);
  const auto existing = frontend::loop_find(path, fuse_->replaced_dead_mount());
  if (cmd == "loop") {
    if (existing) return {{"ok", true}, {"device", *existing}, {"file", path}, {"existing", true}};
    if (!v.value("attached", false)) {
      return fail("loop " + name + ": the volume is not attached (its file " + path +
                  " appears when it is)");
    }
    const std::string dev = frontend::loop_attach(path, fuse_->find(name)->block_size());
    log("volume " + name + ": " + dev + " over " + path);
    return {{"ok", true}, {"device", dev}, {"file", path}, {"existing", false}};
  }
  if (!existing) return {{"ok", true}, {"device", nullptr}, {"file", path}};
  frontend::loop_detach(*existing);
  log("volume " + name + ": " + *existing + " unbound from " + path);
  return {{"ok", true}, {"device", *existing}, {"file", path}};
}

replicator::volume_slot& replicator::slot(const lcore& l, const json& command) {
  if (!command.contains("volume") || !command["volume"].is_string()) {
    throw bad_command("\"volume\" (a volume name) is required");
  }
  const std::string name = command["volume"].get<std::string>();
  for (volume_slot* v : l.volumes)
    if (v->conf->name == name) return *v;
  // execute() sends a served volume's commands to its own lcore: the name is not served here.
  std::vector<std::string> served;
  for (const auto& v : volumes_)
    served.push_back(v->conf->name);
  if (const cfg::mirror_volume* other = opts_.config.find_volume(name)) {
    std::vector<std::string> nodes;
    for (const auto& r : other->replicas)
      nodes.push_back(r.node);
    throw bad_command("volume \"" + name + "\" has no replica on node " + opts_.node +
                      " (its replicas: " + joined(nodes) + "; served here: " + joined(served) +
                      ")");
  }
  throw bad_command("unknown volume \"" + name + "\" (configured: " + joined(served) + ")");
}

namespace {

bool flag(const json& c, const char* key) {
  if (!c.contains(key)) return false;
  if (!c[key].is_boolean()) throw bad_command(std::string("\"") + key + "\" must be true or false");
  return c[key].get<bool>();
}

// Errors of an engine command: "promote db: the data is Inconsistent ...".
json engine_result(int rc, const std::string& what, const mirror::volume& e) {
  if (rc == 0) return {{"ok", true}};
  return fail(what + ": " + (e.last_error().empty() ? std::strerror(-rc) : e.last_error()));
}

}  // namespace

// One volume's status, read by its owner.
json replicator::volume_status(volume_slot& v) {
  json vj = {{"name", v.conf->name},
             {"attached", v.attached()},
             {"data", v.conf->data_on(opts_.node)},
             {"meta", v.conf->meta_on(opts_.node)},
             {"peer", v.peer->node + " " + v.peer->address + ":" + std::to_string(v.peer->port)},
             {"lcore", v.lcore}};
  if (v.attached()) {
    const mirror::volume_status s = v.engine->status();
    vj["role"] = volume::to_string(s.role);
    vj["disk"] = volume::to_string(s.disk);
    vj["connection"] = mirror::to_string(s.conn);
    vj["reason"] = s.reason;
    vj["node_id"] = s.node_id;
    vj["generations"] = gens(s.gen);
    if (s.peer_known) {
      vj["peer_state"] = {{"node_id", s.peer_node_id},
                          {"role", volume::to_string(s.peer_role)},
                          {"disk", volume::to_string(s.peer_disk)},
                          {"generations", gens(s.peer_gen)}};
    }
    vj["dirty_bytes"] = s.dirty_bytes;
    if (!s.split_brain.empty()) vj["split_brain"] = s.split_brain;
    vj["resync"] = {{"full", s.resync_full},
                    {"checksum", s.resync_checksum},
                    {"paused", s.resync_paused},
                    {"paused_by_peer", s.resync_paused_by_peer},
                    {"total_bytes", s.resync_total_bytes},
                    {"done_bytes", s.resync_done_bytes},
                    {"rate", s.resync_rate},
                    {"limit", s.resync_limit}};
    {
      const auto& f = s.verify;
      json ranges = json::array();
      for (uint32_t i = 0; i < f.ranges; ++i)
        ranges.push_back({{"offset", f.range_offset[i]}, {"length", f.range_length[i]}});
      vj["verify"] = {{"running", f.running},
                      {"repair", f.repair},
                      {"interrupted", f.interrupted},
                      {"start", f.start},
                      {"done_bytes", f.done_bytes},
                      {"total_bytes", f.total_bytes},
                      {"differing_blocks", f.differing_blocks},
                      {"first_differences", ranges}};
    }
    vj["replication"] = {{"mode", s.async.enabled ? "async" : "sync"}};
    if (s.async.enabled) {
      vj["async"] = {{"queued", s.async.queued},
                     {"queued_bytes", s.async.queued_bytes},
                     {"unsent_bytes", s.async.unsent_bytes},
                     {"memory_bytes", s.async.memory_bytes},
                     {"capacity_bytes", s.async.capacity_bytes},
                     {"lag_ms", s.async.lag_ns / 1'000'000},
                     {"history_bytes", s.async.history_bytes},
                     {"history_capacity_bytes", s.async.history_capacity_bytes}};
    }
    vj["in_flight"] = {
        {"application", s.app_in_flight}, {"peer", s.peer_in_flight}, {"applying", s.applying}};
    const auto& k = s.counters;
    vj["counters"] = {{"reads", k.reads},
                      {"writes", k.writes},
                      {"flushes", k.flushes},
                      {"discards", k.discards},
                      {"write_zeroes", k.write_zeroes},
                      {"read_bytes", k.read_bytes},
                      {"write_bytes", k.write_bytes},
                      {"fua_writes", k.fua_writes},
                      {"app_errors", k.app_errors},
                      {"rejected", k.rejected},
                      {"replicated", k.replicated},
                      {"replicated_bytes", k.replicated_bytes},
                      {"peer_flushes", k.peer_flushes},
                      {"acks", k.acks},
                      {"peer_errors", k.peer_errors},
                      {"local_errors", k.local_errors},
                      {"marked_dirty", k.marked_dirty},
                      {"applied", k.applied},
                      {"applied_bytes", k.applied_bytes},
                      {"resync_bytes_sent", k.resync_bytes_sent},
                      {"resync_bytes_received", k.resync_bytes_received},
                      {"resyncs_completed", k.resyncs_completed},
                      {"resync_digest_chunks", k.resync_digest_chunks},
                      {"resync_bytes_same", k.resync_bytes_same},
                      {"verify_bytes", k.verify_bytes},
                      {"verify_differing_blocks", k.verify_differing_blocks},
                      {"verifies_completed", k.verifies_completed},
                      {"split_brains", k.split_brains},
                      {"async_queued", k.async_queued},
                      {"async_queued_bytes", k.async_queued_bytes},
                      {"async_fallbacks", k.async_fallbacks},
                      {"async_spilled", k.async_spilled},
                      {"async_spilled_bytes", k.async_spilled_bytes},
                      {"async_compressed", k.async_compressed},
                      {"async_compressed_bytes", k.async_compressed_bytes},
                      {"async_compressed_wire_bytes", k.async_compressed_wire_bytes},
                      {"resync_compressed_bytes", k.resync_compressed_bytes},
                      {"resync_compressed_wire_bytes", k.resync_compressed_wire_bytes},
                      {"resync_compression_input_bytes", k.resync_compression_input_bytes},
                      {"al_commits", k.al_commits},
                      {"al_waits", k.al_waits},
                      {"bitmap_flushes", k.bitmap_flushes},
                      {"superblock_commits", k.superblock_commits},
                      {"sessions", k.sessions},
                      {"session_losses", k.session_losses},
                      {"protocol_errors", k.protocol_errors}};
    const auto& t = s.transport;
    vj["transport"] = {{"port", v.port->name()},
                       {"port_stats",
                        {{"tx_dgrams", v.port->stats().tx_dgrams},
                         {"tx_full", v.port->stats().tx_full},
                         {"rx_dgrams", v.port->stats().rx_dgrams},
                         {"rx_dropped", v.port->stats().rx_dropped}}},
                       {"sent_packets", t.sent_packets},
                       {"sent_bytes", t.sent_bytes},
                       {"retransmitted", t.retransmitted},
                       {"dropped_bad_crc", t.dropped_bad_crc},
                       {"dropped_auth", t.dropped_auth},
                       {"dropped_replay", t.dropped_replay},
                       {"dropped_malformed", t.dropped_malformed},
                       {"rtt_us", t.rtt_ns / 1000},
                       {"encrypted", v.engine->transport() && v.engine->transport()->encrypted()}};
    if (v.load) vj["workload"] = v.load->status();
  }
  if (v.shim) {
    const auto& k = v.shim->stats();
    vj["kernel"] = {{"device", v.shim->device()}, {"in_flight", v.shim->in_flight()},
                    {"reads", k.reads},           {"writes", k.writes},
                    {"flushes", k.flushes},       {"fua_writes", k.fua},
                    {"discards", k.discards},     {"write_zeroes", k.write_zeroes},
                    {"read_bytes", k.read_bytes}, {"write_bytes", k.write_bytes},
                    {"invalid", k.invalid},       {"errors", k.errors},
                    {"commits", k.commits}};
  }
  if (v.fuse) {
    const auto& k = v.fuse->stats();
    json fj = {{"file", fuse_->path_of(v.conf->name)},
               {"published", v.fuse->published()},
               {"open", v.fuse->open_count()},
               {"in_flight", v.fuse->in_flight()},
               {"reads", k.reads.load()},
               {"writes", k.writes.load()},
               {"flushes", k.flushes.load()},
               {"discards", k.discards.load()},
               {"write_zeroes", k.zeroes.load()},
               {"read_bytes", k.read_bytes.load()},
               {"write_bytes", k.write_bytes.load()},
               {"unaligned", k.unaligned.load()},
               {"errors", k.errors.load()}};
    const auto loop =
        frontend::loop_find(fuse_->path_of(v.conf->name), fuse_->replaced_dead_mount());
    fj["loop"] = loop ? json(*loop) : json(nullptr);
    vj["fuse"] = std::move(fj);
  }
  return vj;
}

json replicator::dispatch(lcore& l, const json& c) {
  if (!c.contains("cmd") || !c["cmd"].is_string()) {
    return fail(
        "\"cmd\" is required (status, create, attach, detach, promote, demote, connect, "
        "disconnect, resync, verify, discard-changes, pause, resume, workload, loop, unloop)");
  }
  const std::string cmd = c["cmd"].get<std::string>();
  static const char* const known[] = {
      "status", "create", "attach", "detach", "promote",  "demote", "connect", "disconnect",
      "resync", "verify", "pause",  "resume", "workload", "loop",   "unloop",  "discard-changes"};
  if (std::find(std::begin(known), std::end(known), cmd) == std::end(known)) {
    return fail("unknown command \"" + cmd +
                "\" (status, create, attach, detach, promote, demote, connect, disconnect, "
                "resync, verify, discard-changes, pause, resume, workload, loop, unloop)");
  }
  try {
    if (cmd == "status") {
      json out = {{"ok", true},
                  {"node", opts_.node},
                  {"lcores", lcores_.size()},
                  {"volumes", json::array()}};
      for (volume_slot* v : l.volumes) {
        if (c.contains("volume") && c["volume"] != v->conf->name) continue;
        out["volumes"].push_back(volume_status(*v));
      }
      if (c.contains("volume") && out["volumes"].empty()) (void)slot(l, c);  // names the problem
      return out;
    }

    volume_slot& v = slot(l, c);
    const std::string& name = v.conf->name;
    if (cmd == "create") {
      if (v.attached()) return fail("create " + name + ": the volume is attached; detach it first");
      uint64_t size = v.conf->size;
      {
        backend::uring_options uo;
        uo.path = v.conf->data_on(opts_.node);
        uo.block_size = v.conf->block_size;
        uo.exclusive = false;
        backend::uring_backend probe(uo);
        if (size == 0) size = probe.geom().size;
        if (size > probe.geom().size) {
          return fail("create " + name + ": the configured size (" + std::to_string(size) +
                      " bytes) is larger than " + uo.path + " (" +
                      std::to_string(probe.geom().size) + " bytes)");
        }
      }
      volume::format_params fp;
      fp.block_size = v.conf->block_size;
      fp.bitmap_granularity = static_cast<uint32_t>(v.conf->bitmap_granularity);
      fp.al_extent_size = static_cast<uint32_t>(v.conf->al_extent);
      fp.al_slots = v.conf->al_slots;
      volume::create_options co;
      co.force = flag(c, "force");
      // Both replicas must carry the same identity, and each node creates its own metadata: the
      // uuid follows from the volume's name and its replicas' nodes, so a peer configured for
      // another volume (or another pair of nodes) is refused at the handshake.
      co.fixed_uuid = true;
      co.uuid = volume_uuid(*v.conf);
      auto store = volume::metadata_store::create(v.conf->meta_on(opts_.node), size, fp, co);
      store.close_clean();
      log("volume " + name + ": metadata created on " + v.conf->meta_on(opts_.node) + " (" +
          std::to_string(size) + " bytes)");
      return {{"ok", true}, {"size", size}};
    }
    if (cmd == "attach") {
      if (v.attached()) return fail("attach " + name + ": already attached");
      try {
        backend::uring_options uo;
        uo.path = v.conf->data_on(opts_.node);
        uo.block_size = v.conf->block_size;
        v.data = std::make_unique<backend::uring_backend>(uo);
        v.meta.emplace(volume::metadata_store::open(v.conf->meta_on(opts_.node)));
        backend::uring_options mo;
        mo.path = v.conf->meta_on(opts_.node);
        mo.block_size = 4096;
        mo.exclusive = false;
        mo.queue_depth = 16;
        v.meta_io = std::make_unique<backend::uring_backend>(mo);

        mirror::volume_options vo;
        vo.node_id = v.node_id;
        vo.resync_rate = v.conf->resync_rate;
        vo.resync_min_rate = v.conf->resync_min_rate;
        vo.resync_checksum = v.conf->resync_checksum;
        vo.compression = *parse_compression(v.conf->compression);  // the loader checked
        vo.mode = v.conf->mode == cfg::mirror_mode::async ? mirror::replication_mode::async
                                                          : mirror::replication_mode::sync;
        vo.async_queue_bytes = v.conf->async_queue;
        if (const std::string& hp = v.conf->history_on(opts_.node);
            vo.mode == mirror::replication_mode::async && !hp.empty()) {
          v.history = open_history(hp, v.conf->async_history_size, v.conf->data_on(opts_.node),
                                   v.conf->meta_on(opts_.node));
          vo.async_history = v.history.get();
          // Entries for what the history holds too: one per 4 KiB block of queue and history (a
          // spilled write takes whole blocks), about 110 bytes each.
          const uint64_t want = (v.conf->async_queue + v.history->geom().size) / 4096;
          vo.async_queue_entries = static_cast<unsigned>(
              std::clamp<uint64_t>(want, vo.async_queue_entries, mirror::max_async_queue_entries));
          if (want > mirror::max_async_queue_entries) {
            log("volume " + name + ": the async queue holds at most " +
                std::to_string(mirror::max_async_queue_entries) +
                " writes: a history this large fills with them only if they average " +
                std::to_string(v.history->geom().size / mirror::max_async_queue_entries >> 10) +
                " KiB or more");
          }
          log("volume " + name + ": async history " + hp + " (" +
              std::to_string(v.history->geom().size >> 20) + " MiB)");
        }
        for (uint8_t p = 0; p <= mirror::split_brain_policy_max; ++p) {
          const auto policy = static_cast<mirror::split_brain_policy>(p);
          if (v.conf->split_brain == mirror::to_string(policy)) vo.split_brain = policy;
        }
        vo.meta_io = v.meta_io.get();
        vo.log = [this, name](std::string_view line) {
          log("volume " + name + ": " + std::string(line));
        };
        v.engine = std::make_unique<mirror::volume>(*v.data, *v.meta, vo);

        const auto local_ip = ipv4_addr::parse(v.local->address);
        const auto peer_ip = ipv4_addr::parse(v.peer->address);
        if (!local_ip || !peer_ip) {
          throw std::invalid_argument("replica addresses must be IPv4 for now (" +
                                      v.local->address + ", " + v.peer->address + ")");
        }
        if (dpdk_) {
          std::lock_guard<std::mutex> g(dpdk_mu_);  // another lcore may plug or unplug meanwhile
          v.device = std::make_unique<plugged_device>(v.local->dpdk_device);
          dpdk_port_options po;
          po.port_id = v.device->port_id();
          po.local = {*local_ip, v.local->port};
          po.mtu = v.local->mtu;
          po.tx_udp_checksum = udp_checksum_mode::none;  // the transport's CRC32C covers it
          v.port = std::make_unique<dpdk_port>(po);
        } else {
          socket_port_options so;
          so.local = {*local_ip, v.local->port};
          v.port = std::make_unique<socket_port>(so);
        }
        transport::connection_config tc;
        tc.peer = {*peer_ip, v.peer->port};
        const auto& tr = opts_.config.transport;
        if (!tr.key_file.empty()) tc.key = load_key_file(tr.key_file);
        tc.keepalive_ns = static_cast<uint64_t>(tr.keepalive.count()) * 1'000'000;
        tc.dead_peer_ns = static_cast<uint64_t>(tr.dead_peer.count()) * 1'000'000;
        tc.rate_cap_bps = tr.rate_limit * 8;
        tc.max_message = static_cast<uint32_t>(mirror::max_io_bytes + 4096);
        tc.send_buffer = static_cast<uint32_t>(tr.buffer);  // the loader keeps it within 1 GiB
        tc.recv_buffer = static_cast<uint32_t>(tr.buffer);
        tc.log = [this, name](std::string_view line) {
          log("volume " + name + ": " + std::string(line));
        };
        v.engine->attach_peer(*v.port, tc);
        if (const int rc = v.engine->connect(); rc != 0) {
          throw std::runtime_error("connect: " + v.engine->last_error());
        }
        const uint64_t zero_chunk = zero_chunk_of(*v.conf);
        if (v.fuse) {
          v.fuse->publish(v.meta->identity().volume_size, v.conf->block_size, zero_chunk);
        }
        if (opts_.kernel_devices) {
          shim_frontend_options so;
          so.dev_id = v.index;
          so.size = v.meta->identity().volume_size;
          so.block_size = v.conf->block_size;
          so.zero_chunk = zero_chunk_of(*v.conf);
          so.control = opts_.dev_dir + "/tandem-control";
          so.dev_dir = opts_.dev_dir;
          v.shim = std::make_unique<shim_frontend>(so);
          log("volume " + name + ": served as " + v.shim->device());
        }
      } catch (const std::exception& e) {
        if (v.fuse) (void)v.fuse->withdraw();
        release(v);
        return fail("attach " + name + ": " + e.what());
      }
      log("volume " + name + ": attached (node id " + std::to_string(v.node_id) + ", peer " +
          v.peer->node + " " + v.peer->address + ":" + std::to_string(v.peer->port) + ")");
      return {{"ok", true}};
    }
    if (!v.attached()) return fail(cmd + " " + name + ": the volume is not attached");
    mirror::volume& e = *v.engine;
    if (cmd == "detach") {
      if (v.load && v.load->running()) return fail("detach " + name + ": a workload is running");
      if (v.fuse && v.fuse->withdraw() != 0) {
        const auto loop = frontend::loop_find(fuse_->path_of(name), fuse_->replaced_dead_mount());
        return fail("detach " + name + ": its file " + fuse_->path_of(name) + " is open" +
                    (loop ? " (" + *loop +
                                " is bound to it: unmount, then tandemctl mirror unloop " + name +
                                ")"
                          : ""));
      }
      if (v.shim) {
        auto refuse = [&](const std::string& why) {
          if (v.fuse) v.fuse->publish(v.fuse->size(), v.fuse->block_size(), v.fuse->zero_chunk());
          return fail("detach " + name + ": " + why);
        };
        const std::string open_msg =
            v.shim->device() + " is open (mounted, or held by a program): release it first";
        int rc = 0;
        try {
          if (v.shim->in_use()) return refuse(open_msg);
          drain(v, true);
          rc = v.shim->remove();
        } catch (const std::exception& ex) {
          return refuse(ex.what());
        }
        if (rc == -EBUSY) return refuse(open_msg);
        if (rc != 0) return refuse(v.shim->device() + " still has requests in flight; try again");
        v.shim.reset();
      }
      drain(v, true);
      v.load.reset();
      if (const int rc = e.shutdown(); rc != 0) {
        if (v.fuse) v.fuse->publish(v.fuse->size(), v.fuse->block_size(), v.fuse->zero_chunk());
        return engine_result(rc, "detach " + name, e);
      }
      release(v);
      log("volume " + name + ": detached");
      return {{"ok", true}};
    }
    if (cmd == "promote") return engine_result(e.promote(flag(c, "force")), "promote " + name, e);
    if (cmd == "demote") {
      if (v.load && v.load->running()) return fail("demote " + name + ": a workload is running");
      return engine_result(e.demote(), "demote " + name, e);
    }
    if (cmd == "connect") return engine_result(e.connect(), "connect " + name, e);
    if (cmd == "disconnect") return engine_result(e.disconnect(), "disconnect " + name, e);
    if (cmd == "resync")
      return engine_result(e.request_resync(flag(c, "full"), flag(c, "checksum")), "resync " + name,
                           e);
    if (cmd == "discard-changes") {
      return engine_result(e.discard_my_changes(), "discard-changes " + name, e);
    }
    if (cmd == "verify") {
      if (flag(c, "stop")) return engine_result(e.stop_verify(), "verify " + name, e);
      uint64_t start = 0;
      if (c.contains("start")) {
        if (!c["start"].is_number_unsigned()) {
          return fail("verify " + name + ": \"start\" must be a byte offset");
        }
        start = c["start"].get<uint64_t>();
      }
      return engine_result(e.request_verify(flag(c, "repair"), start), "verify " + name, e);
    }
    if (cmd == "pause") {
      e.pause_resync();
      return {{"ok", true}};
    }
    if (cmd == "resume") {
      e.resume_resync();
      return {{"ok", true}};
    }
    if (cmd == "workload") {
      if (flag(c, "stop")) {
        if (v.load) v.load->stop();
        return {{"ok", true}};
      }
      if (v.load && v.load->running()) return fail("workload " + name + ": one is running");
      workload_options wo = parse_workload(c, v.data->geom());
      v.load = std::make_unique<workload>(e, v.data->geom(), wo, now_ns());
      return {{"ok", true}};
    }
  } catch (const bad_command& b) {
    return fail(cmd + ": " + b.what());
  }
  return fail("unknown command \"" + cmd + "\"");  // listed in `known` but not handled above
}

}  // namespace tandem::dp::app
