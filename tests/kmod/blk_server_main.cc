// SPDX-License-Identifier: Apache-2.0
// tandem-lab-blkserver: serves a tandem.ko block device from a file, through shim_ring.
//
//   tandem-lab-blkserver --backing=FILE [--size=BYTES] [--dev-id=N] [--queues=N] [--depth=N]
//                        [--max-io=BYTES] [--lbs=BYTES] [--timeout-ms=N] [--features=LIST]
//                        [--reattach=ID] [--delete-on-exit] [--delay-offset=BYTES --delay-ms=N]
//   tandem-lab-blkserver --delete=ID | --info=ID | --abi-checks
//
// Adds a device (or, with --reattach, attaches to an existing one), prints
// "READY dev=<id> queues=<n> depth=<d> features=0x<f>" and serves until SIGTERM / SIGINT, one
// thread per queue, each polling its rings with the adaptive wait. --features takes "all",
// "none" or a comma list of flush, fua, discard, write-zeroes. A test hook: the first request at
// --delay-offset is completed --delay-ms late (after the device's timeout), printing DELAYED and
// LATE lines. SIGUSR1 and exit print "STATS reads=... writes=... ...".
// --delete=ID sends DEL_DEV and exits 0, or prints the error and exits 1 (2 for EBUSY);
// --info=ID prints GET_DEV_INFO as one line. --abi-checks drives the driver's ioctls and mmap
// with malformed arguments (growing parameter blocks, reserved fields, bad queues and eventfds,
// private or misplaced mappings, forged completions) on a scratch device, prints
// "ABI-CHECKS OK" or each failed check, and exits 0 or 1.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "dataplane/frontend/shim_ring.h"

namespace {

using namespace tandem::dp::frontend;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::atomic<bool> stop_requested{false};
std::atomic<bool> stats_requested{false};

extern "C" void on_stop(int) {
  stop_requested = true;
}
extern "C" void on_stats(int) {
  stats_requested = true;
}

struct options {
  std::string backing;
  std::optional<uint64_t> size;
  shim_params params;
  std::optional<uint32_t> reattach;
  std::optional<uint32_t> del;
  std::optional<uint32_t> info;
  bool delete_on_exit = false;
  bool abi_checks = false;
  std::optional<uint64_t> delay_offset;
  unsigned delay_ms = 0;
  std::string control = shim_control::default_path;
  std::string dev_dir = "/dev";
};

struct counters {
  std::atomic<uint64_t> reads{0}, writes{0}, fua_writes{0}, flushes{0}, discards{0},
      write_zeroes{0}, invalid{0}, errors{0}, late{0};
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "tandem-lab-blkserver: %s\n", why.c_str());
  std::exit(64);
}

uint64_t number(const std::string& key, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), &end, 0);
  if (v.empty() || *end != '\0' || errno != 0) usage("bad number for --" + key + ": " + v);
  return n;
}

uint64_t parse_features(const std::string& v) {
  if (v == "all") return TANDEM_BLK_F_ALL;
  if (v == "none") return 0;
  const std::map<std::string, uint64_t> names = {{"flush", TANDEM_BLK_F_FLUSH},
                                                 {"fua", TANDEM_BLK_F_FUA},
                                                 {"discard", TANDEM_BLK_F_DISCARD},
                                                 {"write-zeroes", TANDEM_BLK_F_WRITE_ZEROES}};
  uint64_t f = 0;
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    std::string name =
        v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto it = names.find(name);
    if (it == names.end()) usage("unknown feature " + name);
    f |= it->second;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return f;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!a.starts_with("--")) usage("unexpected argument " + a);
    std::string key = a.substr(2), value;
    if (size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key.resize(eq);
    }
    if (key == "backing") {
      o.backing = value;
    } else if (key == "size") {
      o.size = number(key, value);
    } else if (key == "dev-id") {
      o.params.dev_id = static_cast<uint32_t>(number(key, value));
    } else if (key == "queues") {
      o.params.nr_queues = static_cast<uint32_t>(number(key, value));
    } else if (key == "depth") {
      o.params.queue_depth = static_cast<uint32_t>(number(key, value));
    } else if (key == "max-io") {
      o.params.max_io_bytes = static_cast<uint32_t>(number(key, value));
    } else if (key == "lbs") {
      o.params.logical_bs = static_cast<uint32_t>(number(key, value));
    } else if (key == "timeout-ms") {
      o.params.timeout_ms = static_cast<uint32_t>(number(key, value));
    } else if (key == "features") {
      o.params.features = parse_features(value);
    } else if (key == "reattach") {
      o.reattach = static_cast<uint32_t>(number(key, value));
    } else if (key == "delete") {
      o.del = static_cast<uint32_t>(number(key, value));
    } else if (key == "info") {
      o.info = static_cast<uint32_t>(number(key, value));
    } else if (key == "abi-checks") {
      o.abi_checks = true;
    } else if (key == "delete-on-exit") {
      o.delete_on_exit = true;
    } else if (key == "delay-offset") {
      o.delay_offset = number(key, value);
    } else if (key == "delay-ms") {
      o.delay_ms = static_cast<unsigned>(number(key, value));
    } else if (key == "control") {
      o.control = value;
    } else if (key == "dev-dir") {
      o.dev_dir = value;
    } else {
      usage("unknown option --" + key);
    }
  }
  if (!o.del && !o.info && !o.abi_checks && o.backing.empty()) {
    usage("--backing=FILE is required");
  }
  return o;
}

// The file backend: blocking syscalls, good enough for a test server.
class file_backend {
 public:
  file_backend(const std::string& path, std::optional<uint64_t> size) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
    if (size && ::ftruncate(fd_, static_cast<off_t>(*size)) != 0) {
      throw std::system_error(errno, std::generic_category(), "ftruncate " + path);
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      throw std::system_error(errno, std::generic_category(), "fstat " + path);
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~file_backend() { ::close(fd_); }
  uint64_t size() const { return size_; }

  int read(std::byte* buf, uint32_t len, uint64_t off) {
    while (len > 0) {
      ssize_t n = ::pread(fd_, buf, len, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      if (n == 0) {  // past the end of the file: zeros
        std::memset(buf, 0, len);
        return 0;
      }
      buf += n;
      len -= static_cast<uint32_t>(n);
      off += static_cast<uint64_t>(n);
    }
    return 0;
  }
  int write(const std::byte* buf, uint32_t len, uint64_t off) {
    while (len > 0) {
      ssize_t n = ::pwrite(fd_, buf, len, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      buf += n;
      len -= static_cast<uint32_t>(n);
      off += static_cast<uint64_t>(n);
    }
    return 0;
  }
  int flush() { return ::fdatasync(fd_) == 0 ? 0 : -errno; }
  // DISCARD and WRITE_ZEROES both read back as zeros here: punch a hole, or write zeros.
  int zero(uint64_t off, uint32_t len) {
    if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                    len) == 0) {
      return 0;
    }
    if (errno != EOPNOTSUPP) return -errno;
    static const std::byte zeros[64 * 1024] = {};
    while (len > 0) {
      uint32_t n = len < sizeof zeros ? len : static_cast<uint32_t>(sizeof zeros);
      if (int r = write(zeros, n, off); r != 0) return r;
      off += n;
      len -= n;
    }
    return 0;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

int serve(file_backend& backend, const shim_request& r, std::span<std::byte> slot, counters& c) {
  switch (r.op) {
    case shim_op::read:
      c.reads++;
      return backend.read(slot.data(), r.length, r.offset);
    case shim_op::write: {
      c.writes++;
      int ret = backend.write(slot.data(), r.length, r.offset);
      if (ret == 0 && r.fua) {
        c.fua_writes++;
        ret = backend.flush();
      }
      return ret;
    }
    case shim_op::flush:
      c.flushes++;
      return backend.flush();
    case shim_op::discard:
      c.discards++;
      return backend.zero(r.offset, r.length);
    case shim_op::write_zeroes:
      c.write_zeroes++;
      return backend.zero(r.offset, r.length);
  }
  return -EINVAL;
}

void print_stats(const counters& c) {
  std::printf(
      "STATS reads=%llu writes=%llu fua_writes=%llu flushes=%llu discards=%llu "
      "write_zeroes=%llu invalid=%llu errors=%llu late=%llu\n",
      static_cast<unsigned long long>(c.reads.load()),
      static_cast<unsigned long long>(c.writes.load()),
      static_cast<unsigned long long>(c.fua_writes.load()),
      static_cast<unsigned long long>(c.flushes.load()),
      static_cast<unsigned long long>(c.discards.load()),
      static_cast<unsigned long long>(c.write_zeroes.load()),
      static_cast<unsigned long long>(c.invalid.load()),
      static_cast<unsigned long long>(c.errors.load()),
      static_cast<unsigned long long>(c.late.load()));
  std::fflush(stdout);
}

// One queue's loop: take, serve, complete, commit once per batch, wait when idle.
void queue_loop(shim_queue& q, file_backend& backend, const options& o, counters& c,
                std::atomic<bool>& delay_used) {
  struct delayed {
    shim_request req;
    clock_type::time_point due;
  };
  std::optional<delayed> held;  // at most one (the test hook)
  shim_request reqs[64];
  while (!stop_requested) {
    if (q.index() == 0 && stats_requested.exchange(false)) print_stats(c);
    unsigned n = q.peek(reqs);
    for (unsigned i = 0; i < n; ++i) {
      const shim_request& r = reqs[i];
      int result;
      if (r.error != 0) {
        c.invalid++;
        result = r.error;
      } else if (o.delay_offset && r.offset == *o.delay_offset && r.op != shim_op::flush && !held &&
                 !delay_used.exchange(true)) {
        held = delayed{r, clock_type::now() + std::chrono::milliseconds(o.delay_ms)};
        std::printf("DELAYED queue=%u tag=%u seq=%u op=%s offset=%llu\n", q.index(), r.tag, r.seq,
                    to_string(r.op), static_cast<unsigned long long>(r.offset));
        std::fflush(stdout);
        continue;
      } else {
        result = serve(backend, r, q.data(r.tag), c);
      }
      if (result != 0) c.errors++;
      q.complete(r.tag, r.seq, result);
    }
    if (held && clock_type::now() >= held->due) {
      int result = serve(backend, held->req, q.data(held->req.tag), c);
      q.complete(held->req.tag, held->req.seq, result);
      int reaped = q.commit();
      c.late++;
      std::printf("LATE queue=%u tag=%u seq=%u result=%d reaped=%d\n", q.index(), held->req.tag,
                  held->req.seq, result, reaped);
      std::fflush(stdout);
      held.reset();
    }
    int reaped = q.commit();
    if (reaped < 0) {
      std::fprintf(stderr, "tandem-lab-blkserver: queue %u: commit: %s\n", q.index(),
                   std::strerror(-reaped));
    }
    if (n == 0) {
      auto timeout = 100ms;
      if (held) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(held->due - clock_type::now());
        if (left < timeout) timeout = left < 0ms ? 0ms : left;
      }
      q.wait(timeout);
    }
  }
}

// The driver's argument checks, seen from user space.
int abi_checks(const options& o) {
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      ++failures;
      std::printf("ABI-CHECK FAILED: %s (errno %s)\n", what, std::strerror(errno));
    }
  };
  auto fails_with = [](int ret, int err) { return ret == -1 && errno == err; };
  int ctl = ::open(o.control.c_str(), O_RDWR | O_CLOEXEC);
  if (ctl < 0) throw std::system_error(errno, std::generic_category(), "open " + o.control);

  // Parameter blocks carry their size: larger blocks with a zero tail are fine, others are not.
  struct {
    tandem_blk_features f;
    uint64_t extra;
  } big{};
  big.f.size = sizeof big;
  check(::ioctl(ctl, TANDEM_BLK_IOC_GET_FEATURES, &big) == 0 &&
            big.f.size == sizeof(tandem_blk_features) && big.f.version == 1 &&
            big.f.features == TANDEM_BLK_F_ALL,
        "GET_FEATURES with a larger, zero-padded block");
  big = {};
  big.f.size = sizeof big;
  big.extra = 1;
  check(fails_with(::ioctl(ctl, TANDEM_BLK_IOC_GET_FEATURES, &big), E2BIG),
        "unknown non-zero tail: E2BIG");
  tandem_blk_features small{};
  small.size = 8;
  check(fails_with(::ioctl(ctl, TANDEM_BLK_IOC_GET_FEATURES, &small), EINVAL),
        "block shorter than version 1: EINVAL");
  check(fails_with(::ioctl(ctl, _IO(TANDEM_BLK_IOC_MAGIC, 0x7f)), ENOTTY), "unknown command");

  auto params = [] {
    tandem_blk_params p{};
    p.size = sizeof p;
    p.dev_id = TANDEM_BLK_DEV_ID_ANY;
    p.dev_size = 1 << 20;
    p.logical_bs = 512;
    p.nr_queues = 1;
    p.queue_depth = 4;
    p.max_io_bytes = 64 * 1024;
    p.features = TANDEM_BLK_F_ALL;
    return p;
  };
  tandem_blk_params p = params();
  p.reserved[2] = 1;
  check(fails_with(::ioctl(ctl, TANDEM_BLK_IOC_ADD_DEV, &p), EINVAL), "non-zero reserved");
  p = params();
  p.max_io_bytes = 1000;
  check(fails_with(::ioctl(ctl, TANDEM_BLK_IOC_ADD_DEV, &p), EINVAL), "max_io not 4 KiB");
  p = params();
  p.logical_bs = 8192;
  check(fails_with(::ioctl(ctl, TANDEM_BLK_IOC_ADD_DEV, &p), EINVAL), "8 KiB logical blocks");
  p = params();
  p.features = TANDEM_BLK_F_ALL | (uint64_t{1} << 40);
  check(::ioctl(ctl, TANDEM_BLK_IOC_ADD_DEV, &p) == 0 && p.features == TANDEM_BLK_F_ALL &&
            p.timeout_ms == TANDEM_BLK_DEFAULT_TIMEOUT_MS && p.physical_bs == 512,
        "ADD_DEV grants known features and fills defaults");
  const uint32_t id = p.dev_id;
  tandem_blk_params again = params();
  again.dev_id = id;
  check(fails_with(::ioctl(ctl, TANDEM_BLK_IOC_ADD_DEV, &again), EEXIST), "taken id: EEXIST");
  tandem_blk_params fua = params();
  fua.features = TANDEM_BLK_F_FUA;
  check(::ioctl(ctl, TANDEM_BLK_IOC_ADD_DEV, &fua) == 0 && fua.features == 0,
        "FUA without FLUSH is not granted");
  tandem_blk_dev_cmd del{};
  del.size = sizeof del;
  del.dev_id = fua.dev_id;
  check(::ioctl(ctl, TANDEM_BLK_IOC_DEL_DEV, &del) == 0, "DEL_DEV");
  check(fails_with(::ioctl(ctl, TANDEM_BLK_IOC_DEL_DEV, &del), ENODEV), "DEL_DEV twice");

  // The server's char device.
  const std::string path = o.dev_dir + "/tandemc" + std::to_string(id);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  check(fd >= 0, "open the char device");
  check(fails_with(::open(path.c_str(), O_RDWR | O_CLOEXEC), EBUSY), "second open: EBUSY");
  tandem_blk_dev_info info{};
  info.size = sizeof info;
  check(::ioctl(fd, TANDEM_BLK_IOC_GET_DEV_INFO, &info) == 0 &&
            (info.state & TANDEM_BLK_STATE_ATTACHED) != 0 && info.params.queue_depth == 4,
        "GET_DEV_INFO on the char device");
  check(fails_with(::ioctl(fd, TANDEM_BLK_IOC_COMMIT, 1UL), EINVAL), "COMMIT on queue 1");
  check(::ioctl(fd, TANDEM_BLK_IOC_COMMIT, 0UL) == 0, "COMMIT with nothing to reap");
  tandem_blk_eventfd e{};
  e.size = sizeof e;
  e.fd = -5;
  check(fails_with(::ioctl(fd, TANDEM_BLK_IOC_SET_EVENTFD, &e), EINVAL), "eventfd -5");
  e.fd = fd;  // not an eventfd
  check(fails_with(::ioctl(fd, TANDEM_BLK_IOC_SET_EVENTFD, &e), EINVAL), "not an eventfd");
  e.fd = -1;
  e.queue = 3;
  check(fails_with(::ioctl(fd, TANDEM_BLK_IOC_SET_EVENTFD, &e), EINVAL), "eventfd queue 3");

  const auto& l = info.layout;
  check(::mmap(nullptr, l.region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) == MAP_FAILED,
        "private mapping refused");
  check(::mmap(nullptr, l.region_size + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) ==
            MAP_FAILED,
        "oversized mapping refused");
  check(::mmap(nullptr, l.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
               static_cast<off_t>(l.queue_stride)) == MAP_FAILED,
        "mapping of queue 1 refused");
  void* m = ::mmap(nullptr, l.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  check(m != MAP_FAILED, "mapping of queue 0");
  if (m != MAP_FAILED) {
    auto* base = static_cast<std::byte*>(m);
    auto* hdr = reinterpret_cast<tandem_blk_ring_header*>(base + l.header_offset);
    auto* cq = reinterpret_cast<tandem_blk_cqe*>(base + l.cq_offset);
    check(hdr->sq_prod == 0 && hdr->cq_cons == 0, "fresh rings");
    // Forged completions (no request is in flight) are reaped and ignored.
    cq[0] = tandem_blk_cqe{.tag = 99, .reserved0 = 0, .seq = 1, .result = 0, .reserved1 = 0};
    cq[1] = tandem_blk_cqe{.tag = 0, .reserved0 = 7, .seq = 12345, .result = 5, .reserved1 = 0};
    std::atomic_ref<uint32_t>(hdr->cq_prod).store(2, std::memory_order_release);
    check(::ioctl(fd, TANDEM_BLK_IOC_COMMIT, 0UL) == 2 && hdr->cq_cons == 2,
          "forged completions reaped and ignored");
    std::atomic_ref<uint32_t>(hdr->cq_prod).store(2 + 100, std::memory_order_release);
    check(fails_with(::ioctl(fd, TANDEM_BLK_IOC_COMMIT, 0UL), EPROTO), "cq_prod past the ring");
    ::munmap(m, l.region_size);
  }
  ::close(fd);
  del.dev_id = id;
  check(::ioctl(ctl, TANDEM_BLK_IOC_DEL_DEV, &del) == 0, "DEL_DEV after detach");
  ::close(ctl);
  if (failures == 0) std::printf("ABI-CHECKS OK\n");
  return failures == 0 ? 0 : 1;
}

int run(const options& o) {
  if (o.abi_checks) return abi_checks(o);
  if (o.del || o.info) {
    shim_control ctl(o.control);
    if (o.info) {
      auto i = ctl.info(*o.info);
      std::printf(
          "INFO dev=%u state=0x%x size=%llu lbs=%u queues=%u depth=%u max_io=%u timeout_ms=%u "
          "features=0x%llx region=%llu disk=%u:%u cdev=%u:%u\n",
          i.dev_id, i.state, static_cast<unsigned long long>(i.params.dev_size),
          i.params.logical_bs, i.params.nr_queues, i.params.queue_depth, i.params.max_io_bytes,
          i.params.timeout_ms, static_cast<unsigned long long>(i.params.features),
          static_cast<unsigned long long>(i.layout.region_size), i.disk_major, i.disk_minor,
          i.cdev_major, i.cdev_minor);
      return 0;
    }
    try {
      ctl.remove(*o.del);
    } catch (const std::system_error& e) {
      std::printf("DELETE-FAILED %s\n", e.what());
      return e.code().value() == EBUSY ? 2 : 1;
    }
    std::printf("DELETED dev=%u\n", *o.del);
    return 0;
  }

  file_backend backend(o.backing, o.size);
  std::optional<shim_control> ctl;
  uint32_t dev_id;
  if (o.reattach) {
    dev_id = *o.reattach;
  } else {
    ctl.emplace(o.control);
    shim_params p = o.params;
    p.dev_size = backend.size();
    dev_id = ctl->add(p).dev_id;
  }
  counters c;
  std::atomic<bool> delay_used{false};
  {
    shim_device dev(dev_id, o.dev_dir);
    const auto& params = dev.info().params;
    if (params.dev_size > backend.size()) {
      throw std::runtime_error("device is larger than the backing file " + o.backing);
    }
    std::printf("READY dev=%u queues=%u depth=%u features=0x%llx\n", dev_id, dev.nr_queues(),
                params.queue_depth, static_cast<unsigned long long>(params.features));
    std::fflush(stdout);
    std::vector<std::thread> threads;
    for (unsigned q = 0; q < dev.nr_queues(); ++q) {
      threads.emplace_back([&, q] { queue_loop(dev.queue(q), backend, o, c, delay_used); });
    }
    for (auto& t : threads)
      t.join();
  }  // detaches
  print_stats(c);
  if (o.delete_on_exit) {
    if (!ctl) ctl.emplace(o.control);
    ctl->remove(dev_id);
    std::printf("DELETED dev=%u\n", dev_id);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_stats;
  sigaction(SIGUSR1, &sa, nullptr);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem-lab-blkserver: %s\n", e.what());
    return 1;
  }
}
