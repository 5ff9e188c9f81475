// SPDX-License-Identifier: Apache-2.0
// The FUSE frontend between two lab hosts: ext4 on a loop device over the primary's volume file,
// a switchover to the other node with identical files and a clean fsck; the file's own
// semantics (partial blocks, fsync, hole punching, a fixed size, a secondary that refuses
// writes); and a replicator killed under I/O: errors, not a hang, then a restart that serves
// the volume again.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/exec/process.h"
#include "tests/lab/file_tree.h"
#include "tests/lab/mirror_pair.h"
#include "tests/lab/tool_util.h"
#include "tests/support/tandemctl.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using test::cli_result;
using test::tandemctl;

// Mounts `dev` on `dir` (registered with the lab's janitor first) and unmounts on scope exit.
class ext4_mount {
 public:
  ext4_mount(lab& l, const std::string& dev, const std::string& dir) : dir_(dir) {
    fs::create_directories(dir);
    l.register_mount(dir);
    ctl::run_checked({"mount", "-t", "ext4", dev, dir});
    mounted_ = true;
  }
  ~ext4_mount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  void unmount() {
    ctl::run_checked({"umount", dir_});
    mounted_ = false;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

json fuse_status(mirror_pair& m, int i) {
  return m.volume(i)["fuse"];
}

// ext4 on the primary's loop device, a tree of files, then a switchover: unmount, unbind, demote,
// promote the other node, bind and mount there. The files are identical and fsck finds nothing.
TEST(fuse_netns, ext4_switches_over_with_identical_files) {
  mirror_pair_options o;
  o.mib = 96;
  o.fuse = true;
  mirror_pair m(o);
  m.bring_up();
  lab& l = m.net();

  const json f0 = fuse_status(m, 0);
  EXPECT_EQ(f0["file"], m.fuse_file(0));
  EXPECT_TRUE(f0["published"].get<bool>());
  ASSERT_EQ(fs::file_size(m.fuse_file(0)), m.volume_bytes());

  cli_result r = tandemctl({"mirror", "loop", "db", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string dev0 = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(dev0.rfind("/dev/loop", 0), 0u) << r.out;
  l.register_loop(dev0);
  // Asking again answers the same device.
  EXPECT_EQ(m.ok(0, {{"cmd", "loop"}, {"volume", "db"}})["device"], dev0);
  EXPECT_EQ(fuse_status(m, 0)["loop"], dev0);

  ctl::run_checked({"mkfs.ext4", "-q", "-F", "-b", "4096", dev0}, 120s);
  std::map<std::string, std::string> written;
  uint64_t bytes = 0;
  {
    ext4_mount mnt(l, dev0, m.dir() + "/mnt0");
    written = write_tree(m.dir() + "/mnt0", 42, 60, bytes);
    // In use: neither the loop device nor the volume can go.
    r = tandemctl({"mirror", "unloop", "db", "-r", m.sock(0)});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
    r = tandemctl({"mirror", "detach", "db", "-r", m.sock(0)});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("tandemctl mirror unloop db"), std::string::npos) << r.err;
    mnt.unmount();
  }
  const json after = fuse_status(m, 0);
  EXPECT_GT(after["flushes"].get<uint64_t>(), 0u) << after.dump();  // the journal's flushes
  EXPECT_GT(after["write_bytes"].get<uint64_t>(), bytes) << after.dump();
  EXPECT_EQ(after["errors"], 0) << after.dump();

  r = tandemctl({"mirror", "unloop", "db", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "volume db: " + dev0 + " unbound from " + m.fuse_file(0) + "\n");
  EXPECT_TRUE(fuse_status(m, 0)["loop"].is_null());
  r = tandemctl({"mirror", "unloop", "db", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "volume db: no loop device is bound to " + m.fuse_file(0) + "\n");

  // Switchover.
  ASSERT_TRUE(m.wait_for(0, mirror_pair::in_sync, 60s)) << m.volume(0).dump();
  m.ok(0, {{"cmd", "demote"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(1, [](const json& v) {
    return v.contains("peer_state") && v["peer_state"]["role"] == "secondary";
  })) << m.volume(1).dump();
  m.ok(1, {{"cmd", "promote"}, {"volume", "db"}});
  r = tandemctl({"mirror", "loop", "db", "-r", m.sock(1)});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string dev1 = r.out.substr(0, r.out.find('\n'));
  l.register_loop(dev1);
  const ctl::run_result fsck = ctl::run({"fsck.ext4", "-n", "-f", dev1}, 120s);
  EXPECT_TRUE(fsck.status.ok()) << fsck.output;
  {
    ext4_mount mnt(l, dev1, m.dir() + "/mnt1");
    EXPECT_EQ(read_tree(m.dir() + "/mnt1"), written);
    mnt.unmount();
  }
  m.ok(1, {{"cmd", "unloop"}, {"volume", "db"}});
  // Detached, the file is gone from the mount.
  m.ok(1, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_FALSE(fs::exists(m.fuse_file(1)));
  EXPECT_FALSE(fuse_status(m, 1)["published"].get<bool>());
  r = tandemctl({"mirror", "loop", "db", "-r", m.sock(1)});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not attached"), std::string::npos) << r.err;
}

// The file itself: partial blocks read and written through, fsync counted as a flush, hole
// punching as a discard, the size fixed, a secondary's file refusing writes.
TEST(fuse_netns, file_semantics) {
  mirror_pair_options o;
  o.mib = 16;
  o.fuse = true;
  mirror_pair m(o);
  m.bring_up();
  const std::string file = m.fuse_file(0);
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);

  // 10 bytes across a block boundary, then 3 blocks plus 100 bytes at an odd offset.
  const std::string small = "0123456789";
  ASSERT_EQ(::pwrite(fd, small.data(), small.size(), 4090), 10);
  std::string big((3u << 12) + 100, '\0');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(tool::mix(i) & 0xff);
  ASSERT_EQ(::pwrite(fd, big.data(), big.size(), 50001), static_cast<ssize_t>(big.size()));
  ASSERT_EQ(::fsync(fd), 0);
  std::string back(small.size() + 20, 'x');
  ASSERT_EQ(::pread(fd, back.data(), back.size(), 4080), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, std::string(10, '\0') + small + std::string(10, '\0'));
  std::string bigback(big.size(), '\0');
  ASSERT_EQ(::pread(fd, bigback.data(), bigback.size(), 50001), static_cast<ssize_t>(big.size()));
  EXPECT_TRUE(bigback == big);

  // Punch a hole from the small write's sixth byte on (the partial block at the edge is zeroed).
  ASSERT_EQ(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4095, 8193), 0)
      << std::strerror(errno);
  ASSERT_EQ(::pread(fd, back.data(), back.size(), 4080), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, std::string(10, '\0') + "01234" + std::string(15, '\0'));
  // Beyond the end: nothing to read, no room to write; the size cannot change.
  char c = 0;
  EXPECT_EQ(::pread(fd, &c, 1, static_cast<off_t>(m.volume_bytes())), 0);
  EXPECT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(m.volume_bytes())), -1);
  EXPECT_EQ(errno, ENOSPC);
  EXPECT_EQ(::ftruncate(fd, 4096), -1);
  EXPECT_EQ(errno, EPERM);
  ::close(fd);

  json f = fuse_status(m, 0);
  EXPECT_GE(f["flushes"].get<uint64_t>(), 1u) << f.dump();
  EXPECT_EQ(f["discards"], 1) << f.dump();
  EXPECT_GE(f["unaligned"].get<uint64_t>(), 3u) << f.dump();
  EXPECT_EQ(f["open"], 0) << f.dump();

  // The secondary's file reads (its copy is up to date) and refuses writes.
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 30s));
  const int fd1 = ::open(m.fuse_file(1).c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd1, 0) << std::strerror(errno);
  EXPECT_EQ(::pwrite(fd1, small.data(), small.size(), 0), -1);
  EXPECT_EQ(errno, EROFS);
  ::close(fd1);

  // The mirror holds what the file was given: both images are the same after a clean detach.
  m.ok(0, {{"cmd", "detach"}, {"volume", "db"}});
  m.ok(1, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_EQ(sha256_file(m.image(0)), sha256_file(m.image(1)));
}

// kill -9 of the primary's replicator while a writer is busy on the loop device: the writer gets
// errors and ends (no hang); a restarted replicator mounts again over the dead mount, the stale
// loop device can be unbound and a new one works.
TEST(fuse_netns, killed_replicator_fails_io_and_a_restart_serves_again) {
  mirror_pair_options o;
  o.mib = 32;
  o.fuse = true;
  mirror_pair m(o);
  m.bring_up();
  lab& l = m.net();
  const std::string dev = m.ok(0, {{"cmd", "loop"}, {"volume", "db"}})["device"];
  l.register_loop(dev);
  ctl::process& writer =
      l.spawn("node1", "dd", {"dd", "if=/dev/zero", "of=" + dev, "bs=64k", "oflag=direct"});
  std::this_thread::sleep_for(500ms);
  m.kill9(0);
  const auto status = writer.wait(20s);
  ASSERT_TRUE(status.has_value()) << "dd still running 20 s after the replicator died";
  EXPECT_FALSE(status->ok()) << l.read_log("node1", "dd");

  m.start(0);  // the dead mount is replaced
  m.ok(0, {{"cmd", "attach"}, {"volume", "db"}});
  EXPECT_TRUE(fs::exists(m.fuse_file(0)));
  // The old loop device is still bound to the dead file: unloop finds and unbinds it.
  const json un = m.ok(0, {{"cmd", "unloop"}, {"volume", "db"}});
  EXPECT_EQ(un["device"], dev) << un.dump();
  m.ok(0, {{"cmd", "promote"}, {"volume", "db"}, {"force", true}});
  const std::string dev2 = m.ok(0, {{"cmd", "loop"}, {"volume", "db"}})["device"];
  l.register_loop(dev2);
  const ctl::run_result dd =
      ctl::run({"dd", "if=/dev/urandom", "of=" + dev2, "bs=64k", "count=16", "oflag=direct"}, 60s);
  EXPECT_TRUE(dd.status.ok()) << dd.output;
  m.ok(0, {{"cmd", "unloop"}, {"volume", "db"}});
}

}  // namespace
}  // namespace tandem::lab
