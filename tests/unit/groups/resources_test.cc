// SPDX-License-Identifier: Apache-2.0
// Group resources for real: exec commands and services (process groups, environment, log),
// ext4 on a loop device (fsck, mount, users ended, umount), and the mirror resource against an
// in-process stand-in for tandem-replicator's control socket.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/api/jsonl_socket.h"
#include "control/exec/process.h"
#include "control/groups/resource.h"
#include "tests/support/proc.h"
#include "tests/support/temp_dir.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using config::param_value;
using config::resource_type;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

pid_t read_pid(const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    const std::string s = slurp(path);
    if (!s.empty() && s.back() == '\n') return std::stoi(s);
    std::this_thread::sleep_for(10ms);
  }
  return -1;
}

// Waits up to `within` for the process to end (a zombie counts as ended).
bool ends(pid_t pid, std::chrono::milliseconds within = 2s) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (test::running(pid)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

config::resource_config make_rc(const std::string& name, resource_type t,
                                const std::map<std::string, param_value>& params) {
  config::resource_config rc;
  rc.name = name;
  rc.type = t;
  for (const auto& [k, v] : params)
    rc.params.values.emplace(k, v);
  return rc;
}

action_context ctx_for(const std::string& resource, std::chrono::milliseconds timeout = 5s,
                       const std::string& event = "start") {
  action_context c;
  c.cluster = "demo";
  c.node = "node1";
  c.group = "web";
  c.resource = resource;
  c.event = event;
  c.timeout = timeout;
  return c;
}

// ---- exec ------------------------------------------------------------------------------------

struct exec_fixture : ::testing::Test {
  test::temp_dir dir{"tandem-exec"};
  config::cluster_config cfg;
  resource_env env;

  exec_fixture() {
    env.cfg = &cfg;
    env.node = "node1";
    env.log_dir = dir.path() + "/logs/groups";  // does not exist yet
  }
  std::unique_ptr<resource> make(const std::map<std::string, param_value>& params,
                                 const std::string& name = "app") {
    return make_resource(make_rc(name, resource_type::exec, params), env);
  }
};

TEST_F(exec_fixture, sync_start_sees_the_environment_and_logs_its_output) {
  const std::string out = dir.file("env.out");
  auto r = make({{"start", std::string("env | grep ^TANDEM_ | sort > " + out + "; echo hello-log")},
                 {"stop", std::string("echo bye-log; echo $TANDEM_EVENT > " + dir.file("stop"))}});
  EXPECT_EQ(r->type(), resource_type::exec);
  EXPECT_EQ(r->name(), "app");
  EXPECT_EQ(r->main_pid(), -1);
  const action_result a = r->start(ctx_for("app", 5s, "failover"));
  ASSERT_TRUE(a.ok) << a.message;
  EXPECT_EQ(slurp(out),
            "TANDEM_CLUSTER=demo\nTANDEM_EVENT=failover\nTANDEM_GROUP=web\nTANDEM_NODE=node1\n"
            "TANDEM_RESOURCE=app\n");
  // Idempotent: a second start does not run the command again.
  std::filesystem::remove(out);
  EXPECT_TRUE(r->start(ctx_for("app")).ok);
  EXPECT_FALSE(std::filesystem::exists(out));

  const action_result s = r->stop(ctx_for("app", 5s, "move"));
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_EQ(slurp(dir.file("stop")), "move\n");
  // Stopping again: nothing to do, the stop command does not run twice.
  std::filesystem::remove(dir.file("stop"));
  EXPECT_TRUE(r->stop(ctx_for("app")).ok);
  EXPECT_FALSE(std::filesystem::exists(dir.file("stop")));

  const std::string log = slurp(env.log_dir + "/web.app.log");
  EXPECT_TRUE(contains(log, "hello-log\n")) << log;
  EXPECT_TRUE(contains(log, "bye-log\n")) << log;
  EXPECT_TRUE(contains(log, "tandem: start (event failover)")) << log;
  EXPECT_TRUE(contains(log, "tandem: stop exited with 0")) << log;
  EXPECT_EQ(r->describe()["log"], env.log_dir + "/web.app.log");

  // A failure quotes the command's output from the log, not tandem's own lines in it.
  auto bad = make({{"start", std::string("echo from-the-log; exit 2")}}, "bad");
  const action_result b = bad->start(ctx_for("bad"));
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.message, "start exited with 2: from-the-log");
}

TEST_F(exec_fixture, sync_non_zero_exit_fails_with_the_status_and_the_last_output) {
  env.log_dir.clear();  // the output is still quoted, from memory
  auto r = make({{"start", std::string("echo first line; echo the-reason >&2; exit 3")}});
  const action_result a = r->start(ctx_for("app"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "start exited with 3")) << a.message;
  EXPECT_TRUE(contains(a.message, "first line | the-reason")) << a.message;
  // Only the last ~200 bytes are quoted.
  auto chatty = make({{"start", std::string("i=0; while [ $i -lt 100 ]; do echo line-$i; "
                                            "i=$((i+1)); done; exit 1")}});
  const action_result b = chatty->start(ctx_for("app"));
  EXPECT_FALSE(b.ok);
  EXPECT_TRUE(contains(b.message, "line-99")) << b.message;
  EXPECT_FALSE(contains(b.message, "line-1 ")) << b.message;
  EXPECT_LT(b.message.size(), 320u) << b.message;
}

TEST_F(exec_fixture, sync_timeout_kills_the_whole_process_group) {
  const std::string child = dir.file("child");
  auto r = make({{"start", std::string("sleep 30 & echo $! > " + child + "; sleep 30")}});
  const auto t0 = std::chrono::steady_clock::now();
  const action_result a = r->start(ctx_for("app", 400ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "timed out after 400 ms")) << a.message;
  EXPECT_LT(took, 3s);
  const pid_t c = read_pid(child);
  ASSERT_GT(c, 0);
  EXPECT_TRUE(ends(c)) << "the background child survived";
}

TEST_F(exec_fixture, user_and_working_dir) {
  auto unknown = make({{"start", std::string("true")}, {"user", std::string("no-such-user-x")}});
  const action_result a = unknown->start(ctx_for("app"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "user no-such-user-x does not exist")) << a.message;

  auto wd = make(
      {{"start", std::string("pwd > " + dir.file("pwd"))}, {"working_dir", dir.path() + "/logs"}},
      "wd");
  EXPECT_FALSE(wd->start(ctx_for("wd")).ok);  // not there yet
  std::filesystem::create_directories(dir.path() + "/logs");
  ASSERT_TRUE(wd->start(ctx_for("wd")).ok);
  EXPECT_EQ(slurp(dir.file("pwd")), dir.path() + "/logs\n");

  if (::geteuid() != 0) GTEST_SKIP() << "running as another user needs root";
  auto nobody =
      make({{"start", std::string("id -u; echo HOME=$HOME")}, {"user", std::string("nobody")}},
           "as-nobody");
  const action_result n = nobody->start(ctx_for("as-nobody"));
  ASSERT_TRUE(n.ok) << n.message;
  const std::string log = slurp(env.log_dir + "/web.as-nobody.log");
  EXPECT_TRUE(contains(log, "\n65534\n")) << log;
  EXPECT_TRUE(contains(log, "HOME=/nonexistent")) << log;
}

TEST_F(exec_fixture, async_service_runs_and_stop_ends_its_process_group) {
  const std::string child = dir.file("child");
  auto r = make({{"start", std::string("sleep 60 & echo $! > " + child + "; wait")},
                 {"stop", std::string("echo $TANDEM_EVENT > " + dir.file("stop-ran"))},
                 {"mode", std::string("async")}});
  const action_result a = r->start(ctx_for("app"));
  ASSERT_TRUE(a.ok) << a.message;
  const pid_t main = r->main_pid();
  ASSERT_GT(main, 0);
  EXPECT_TRUE(test::running(main));
  EXPECT_EQ(::getpgid(main), main);  // its own process group
  EXPECT_EQ(r->describe()["pid"], main);
  const pid_t c = read_pid(child);
  ASSERT_GT(c, 0);
  EXPECT_EQ(::getpgid(c), main);

  const action_result again = r->start(ctx_for("app"));
  EXPECT_TRUE(again.ok);
  EXPECT_TRUE(contains(again.message, "already running")) << again.message;
  EXPECT_EQ(r->main_pid(), main);

  const action_result s = r->stop(ctx_for("app", 5s, "stop"));
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_EQ(slurp(dir.file("stop-ran")), "stop\n");
  EXPECT_TRUE(ends(main, 100ms));
  EXPECT_TRUE(ends(c)) << "the service's child survived";
  EXPECT_EQ(r->main_pid(), -1);
  EXPECT_TRUE(r->stop(ctx_for("app")).ok);
}

TEST_F(exec_fixture, async_stop_kills_what_ignores_sigterm) {
  const std::string child = dir.file("child");
  auto r = make({{"start", std::string("trap '' TERM; sh -c \"trap '' TERM; sleep 60\" & echo $! "
                                       "> " +
                                       child + "; wait")},
                 {"mode", std::string("async")}});
  ASSERT_TRUE(r->start(ctx_for("app")).ok);
  const pid_t main = r->main_pid();
  const pid_t c = read_pid(child);
  ASSERT_GT(c, 0);
  const auto t0 = std::chrono::steady_clock::now();
  const action_result s = r->stop(ctx_for("app", 600ms));
  EXPECT_TRUE(s.ok) << s.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(ends(main, 100ms));
  EXPECT_TRUE(ends(c));
}

TEST_F(exec_fixture, async_start_that_returns_at_once_fails_and_a_dead_service_has_no_pid) {
  auto quick = make({{"start", std::string("echo done-already")}, {"mode", std::string("async")}});
  const action_result a = quick->start(ctx_for("app"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "exited with 0 at once")) << a.message;
  EXPECT_TRUE(contains(a.message, "done-already")) << a.message;
  EXPECT_EQ(quick->main_pid(), -1);

  auto svc = make({{"start", std::string("exec sleep 60")}, {"mode", std::string("async")}}, "svc");
  ASSERT_TRUE(svc->start(ctx_for("svc")).ok);
  const pid_t pid = svc->main_pid();
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (svc->main_pid() != -1 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(svc->main_pid(), -1);  // what a pid monitor sees
  // Starting again replaces the dead service.
  ASSERT_TRUE(svc->start(ctx_for("svc")).ok);
  EXPECT_GT(svc->main_pid(), 0);
  EXPECT_NE(svc->main_pid(), pid);
  EXPECT_TRUE(svc->stop(ctx_for("svc")).ok);
}

// ---- filesystem ------------------------------------------------------------------------------

std::string loop_unavailable() {
  if (::geteuid() != 0) return "loop devices and mounts need root";
  if (::access("/dev/loop-control", R_OK | W_OK) != 0) return "no /dev/loop-control";
  const run_result r = run({"losetup", "--version"});
  if (!r.status.ok()) return "losetup is not available";
  if (!run({"mkfs.ext4", "-V"}).status.ok()) return "mkfs.ext4 is not available";
  return "";
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

// A loop device over a fresh 64 MiB ext4 image, detached (after a lazy unmount of anything
// still mounted at `mount_point`) even when the test fails.
struct ext4_loop {
  std::string image;
  std::string device;
  std::string mount_point;
  ext4_loop(const std::string& dir, std::string mp) : mount_point(std::move(mp)) {
    image = dir + "/fs.img";
    run_checked({"truncate", "-s", "64M", image});
    run_checked({"mkfs.ext4", "-q", "-F", image});
    device = trimmed(run_checked({"losetup", "--find", "--show", image}));
    if (device.rfind("/dev/loop", 0) != 0) throw std::runtime_error("losetup said " + device);
  }
  ~ext4_loop() {
    while (::umount2(mount_point.c_str(), MNT_DETACH) == 0) {
    }
    if (!device.empty()) run({"losetup", "-d", device});
  }
  ext4_loop(const ext4_loop&) = delete;
  ext4_loop& operator=(const ext4_loop&) = delete;
};

// Unmounts (lazily) whatever is still mounted at `path` when the test ends.
struct unmount_guard {
  std::string path;
  ~unmount_guard() {
    while (::umount2(path.c_str(), MNT_DETACH) == 0) {
    }
  }
};

bool mounted(const std::string& path, std::string* line = nullptr) {
  std::ifstream f("/proc/self/mountinfo");
  std::string l;
  bool found = false;
  while (std::getline(f, l)) {
    std::istringstream in(l);
    std::string a, b, c, d, mp;
    in >> a >> b >> c >> d >> mp;
    if (mp == path) {
      found = true;
      if (line) *line = l;
    }
  }
  return found;
}

// A mirror resource stand-in: provides a device.
class fake_mirror final : public resource {
 public:
  explicit fake_mirror(std::string dev) : resource("data"), dev_(std::move(dev)) {}
  [[nodiscard]] resource_type type() const noexcept override { return resource_type::mirror; }
  action_result do_start(const action_context&) override { return {true, ""}; }
  action_result do_stop(const action_context&) override { return {true, ""}; }
  [[nodiscard]] std::string device() const override { return dev_; }

 private:
  std::string dev_;
};

struct filesystem_fixture : ::testing::Test {
  test::temp_dir dir{"tandem-fs"};
  config::cluster_config cfg;
  resource_env env;
  std::string mp;
  std::unique_ptr<unmount_guard> guard;

  void SetUp() override {
    if (std::string why = loop_unavailable(); !why.empty()) GTEST_SKIP() << why;
    env.cfg = &cfg;
    env.node = "node1";
    mp = dir.path() + "/mnt/data";  // created by the resource
    guard = std::make_unique<unmount_guard>();
    guard->path = mp;
  }
};

TEST_F(filesystem_fixture, fsck_mount_idempotent_start_users_ended_and_umount) {
  ext4_loop loop(dir.path(), mp);
  // Mark the file system "not clean": fsck -p must then check it (and mark it clean).
  run_checked({"debugfs", "-w", "-R", "ssv state 0", loop.device});
  fake_mirror mirror(loop.device);
  env.find = [&](std::string_view n) -> resource* { return n == "data" ? &mirror : nullptr; };
  auto fs = make_resource(make_rc("fs", resource_type::filesystem,
                                  {{"mirror", std::string("data")},
                                   {"mount_point", mp},
                                   {"options", std::string("noatime,nodev,commit=7")},
                                   {"fsck", true},
                                   {"kill_users", true}}),
                          env);
  EXPECT_EQ(fs->type(), resource_type::filesystem);
  EXPECT_FALSE(fs->describe()["mounted"].get<bool>());

  const action_result a = fs->start(ctx_for("fs"));
  ASSERT_TRUE(a.ok) << a.message;
  std::string line;
  ASSERT_TRUE(mounted(mp, &line));
  EXPECT_TRUE(contains(line, "noatime")) << line;
  EXPECT_TRUE(contains(line, "nodev")) << line;
  EXPECT_TRUE(contains(line, "commit=7")) << line;
  EXPECT_TRUE(contains(line, " - ext4 ")) << line;
  const json d = fs->describe();
  EXPECT_EQ(d["device"], loop.device);
  EXPECT_EQ(d["mount_point"], mp);
  EXPECT_TRUE(d["mounted"].get<bool>());

  const action_result again = fs->start(ctx_for("fs"));
  EXPECT_TRUE(again.ok) << again.message;
  EXPECT_TRUE(contains(again.message, "already mounted")) << again.message;

  // A process working inside the file system, and one holding a file open in it.
  spawn_options so;
  so.argv = {"sleep", "60"};
  so.cwd = mp;
  process in_cwd = process::spawn(so);
  spawn_options so2;
  so2.argv = {"sh", "-c", "exec 3>" + mp + "/held; trap '' TERM; exec sleep 60"};
  process holder = process::spawn(so2);
  std::this_thread::sleep_for(100ms);

  // Without kill_users the umount fails and names who holds it.
  auto polite =
      make_resource(make_rc("fs2", resource_type::filesystem,
                            {{"device", loop.device}, {"mount_point", mp}, {"kill_users", false}}),
                    env);
  const action_result busy = polite->stop(ctx_for("fs2", 300ms));
  EXPECT_FALSE(busy.ok);
  EXPECT_TRUE(contains(busy.message, "still used by")) << busy.message;
  EXPECT_TRUE(contains(busy.message, "pid " + std::to_string(in_cwd.pid()) + " (sleep)"))
      << busy.message;
  EXPECT_TRUE(mounted(mp));

  const auto t0 = std::chrono::steady_clock::now();
  // SIGTERM, then (the holder ignores it) SIGKILL after min(3 s, half the time left).
  const action_result s = fs->stop(ctx_for("fs", 2s));
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_FALSE(mounted(mp));
  const auto st1 = in_cwd.wait(2s);
  ASSERT_TRUE(st1.has_value());
  EXPECT_EQ(st1->signal, SIGTERM);
  const auto st2 = holder.wait(2s);
  ASSERT_TRUE(st2.has_value());
  EXPECT_EQ(st2->signal, SIGKILL);  // it ignored SIGTERM
  EXPECT_FALSE(fs->describe()["mounted"].get<bool>());
  EXPECT_TRUE(fs->stop(ctx_for("fs")).ok);  // stopping again: not mounted

  // fsck ran before the mount: the state it marked clean survived the mount.
  const std::string sb = run_checked({"dumpe2fs", "-h", loop.device});
  EXPECT_TRUE(contains(sb, "Filesystem state:         clean")) << sb;
}

TEST_F(filesystem_fixture, fsck_failure_is_reported_and_nothing_is_mounted) {
  ext4_loop loop(dir.path(), mp);
  {
    // Destroy the primary superblock (through the device, so no cache holds the old one).
    std::ofstream img(loop.device, std::ios::in | std::ios::out | std::ios::binary);
    img.seekp(1024);
    const std::string zeros(1024, '\0');
    img.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  auto fs = make_resource(
      make_rc("fs", resource_type::filesystem, {{"device", loop.device}, {"mount_point", mp}}),
      env);
  const action_result a = fs->start(ctx_for("fs"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "fsck of " + loop.device)) << a.message;
  EXPECT_TRUE(contains(a.message, "exit status 8")) << a.message;
  EXPECT_FALSE(mounted(mp));
}

TEST_F(filesystem_fixture, a_foreign_mount_at_the_mount_point_is_refused) {
  ext4_loop loop(dir.path(), mp);
  std::filesystem::create_directories(mp);
  ASSERT_EQ(::mount("tmpfs", mp.c_str(), "tmpfs", 0, "size=1m"), 0)
      << std::generic_category().message(errno);
  std::ofstream(mp + "/precious") << "keep me";
  auto fs = make_resource(
      make_rc("fs", resource_type::filesystem, {{"device", loop.device}, {"mount_point", mp}}),
      env);
  const action_result a = fs->start(ctx_for("fs"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "already has tmpfs (tmpfs) mounted on it")) << a.message;
  EXPECT_EQ(slurp(mp + "/precious"), "keep me");
  // Its stop leaves the foreign mount alone.
  EXPECT_TRUE(fs->stop(ctx_for("fs")).ok);
  EXPECT_EQ(slurp(mp + "/precious"), "keep me");
  EXPECT_EQ(::umount2(mp.c_str(), 0), 0);
}

TEST_F(filesystem_fixture, a_mirror_without_a_device_fails_clearly) {
  fake_mirror mirror("");
  env.find = [&](std::string_view n) -> resource* { return n == "data" ? &mirror : nullptr; };
  auto fs = make_resource(make_rc("fs", resource_type::filesystem,
                                  {{"mirror", std::string("data")}, {"mount_point", mp}}),
                          env);
  const action_result a = fs->start(ctx_for("fs"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "mirror resource data provides no device")) << a.message;
}

// ---- mirror ----------------------------------------------------------------------------------

// tandem-replicator's control socket, played by a script: a volume "db" whose state the
// commands change, answers that can be overridden per command, and every command recorded.
struct fake_replicator {
  asio::io_context io;
  std::unique_ptr<api::jsonl_server> server;
  std::thread thread;
  std::mutex mu;
  std::vector<std::string> commands;
  std::string role = "secondary", disk = "up_to_date", connection = "connected";
  bool attached = true;
  json kernel;  // status "kernel" object when set
  // Queued answers for a command (used first, one per request).
  std::map<std::string, std::deque<json>> scripted;
  // Called on each status (after recording), to change the state over time.
  std::function<void()> on_status;

  explicit fake_replicator(const std::string& path) {
    api::jsonl_server_options o;
    o.path = path;
    server =
        std::make_unique<api::jsonl_server>(io, o, [this](const json& r) { return answer(r); });
    thread = std::thread([this] { io.run(); });
  }
  ~fake_replicator() {
    io.stop();
    thread.join();
  }
  json answer(const json& r) {
    std::lock_guard<std::mutex> g(mu);
    const std::string cmd = r.value("cmd", "");
    commands.push_back(cmd + (r.value("force", false) ? "+force" : ""));
    if (r.value("volume", "") != "db") return {{"ok", false}, {"error", "unknown volume"}};
    if (auto it = scripted.find(cmd); it != scripted.end() && !it->second.empty()) {
      json a = it->second.front();
      it->second.pop_front();
      if (a.value("ok", false) && cmd == "promote") role = "primary";
      return a;
    }
    if (cmd == "status") {
      if (on_status) on_status();
      json v = {{"name", "db"}, {"attached", attached}};
      if (attached) {
        v["role"] = role;
        v["disk"] = disk;
        v["connection"] = connection;
        v["resync"] = {{"done_bytes", 10}, {"total_bytes", 100}};
      }
      if (!kernel.is_null()) v["kernel"] = kernel;
      return {{"ok", true}, {"node", "node1"}, {"volumes", json::array({v})}};
    }
    if (cmd == "promote") {
      if (disk != "up_to_date") {
        return {{"ok", false},
                {"error", "promote db: the local data is " + disk +
                              ", not UpToDate: promotion refused (force overrides)"}};
      }
      role = "primary";
      return {{"ok", true}};
    }
    if (cmd == "demote") {
      role = "secondary";
      return {{"ok", true}};
    }
    if (cmd == "loop") return {{"ok", true}, {"device", "/dev/loop7"}, {"existing", false}};
    if (cmd == "unloop") return {{"ok", true}, {"device", "/dev/loop7"}};
    return {{"ok", false}, {"error", "unexpected " + cmd}};
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> g(mu);
    return commands;
  }
  void clear() {
    std::lock_guard<std::mutex> g(mu);
    commands.clear();
  }
};

struct mirror_fixture : ::testing::Test {
  test::temp_dir dir{"tandem-mirror"};
  config::cluster_config cfg;
  resource_env env;
  std::unique_ptr<fake_replicator> repl;

  mirror_fixture() {
    cfg.mirrors.control_socket = dir.path() + "/replicator.sock";
    for (const char* name : {"logs", "db"}) {
      config::mirror_volume v;
      v.name = name;
      cfg.mirrors.volumes.push_back(v);
    }
    env.cfg = &cfg;
    env.node = "node1";
  }
  void start_replicator() { repl = std::make_unique<fake_replicator>(cfg.mirrors.control_socket); }
  std::unique_ptr<resource> make(const std::string& frontend) {
    return make_resource(make_rc("data", resource_type::mirror,
                                 {{"volume", std::string("db")}, {"frontend", frontend}}),
                         env);
  }
};

TEST_F(mirror_fixture, fuse_start_promotes_and_reports_the_loop_device_stop_unloops_then_demotes) {
  start_replicator();
  auto m = make("fuse");
  EXPECT_EQ(m->type(), resource_type::mirror);
  EXPECT_EQ(m->device(), "");
  const action_result a = m->start(ctx_for("data"));
  ASSERT_TRUE(a.ok) << a.message;
  EXPECT_EQ(m->device(), "/dev/loop7");
  EXPECT_EQ(m->describe()["device"], "/dev/loop7");
  EXPECT_EQ(m->describe()["volume"], "db");
  EXPECT_EQ(repl->seen(), (std::vector<std::string>{"status", "promote", "loop"}));
  EXPECT_EQ(repl->role, "primary");

  // Started again: already primary, the device asked for again (loop answers the existing one).
  repl->clear();
  EXPECT_TRUE(m->start(ctx_for("data")).ok);
  EXPECT_EQ(repl->seen(), (std::vector<std::string>{"status", "loop"}));

  // Stop: unloop first, then demote, retried while requests are in flight.
  repl->clear();
  repl->scripted["unloop"].push_back(
      {{"ok", false}, {"error", "unloop db: /dev/loop7 is in use (mounted?); unmount it first"}});
  repl->scripted["demote"].push_back(
      {{"ok", false}, {"error", "demote db: 2 application requests in flight"}});
  const action_result s = m->stop(ctx_for("data"));
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_EQ(repl->seen(),
            (std::vector<std::string>{"status", "unloop", "unloop", "demote", "demote"}));
  EXPECT_EQ(repl->role, "secondary");
  EXPECT_EQ(m->device(), "");
}

TEST_F(mirror_fixture, data_that_is_not_uptodate_is_never_promoted) {
  start_replicator();
  repl->disk = "inconsistent";
  repl->connection = "standalone";
  auto m = make("fuse");
  const action_result a = m->start(ctx_for("data"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "Inconsistent, not UpToDate")) << a.message;
  EXPECT_TRUE(contains(a.message, "tandemctl mirror promote db --force")) << a.message;
  for (const auto& c : repl->seen())
    EXPECT_NE(c.rfind("promote", 0), 0u) << "promoted: " << c;
  EXPECT_EQ(m->device(), "");

  // The replicator refuses (-EROFS) although the status said UpToDate a moment before.
  repl->disk = "up_to_date";
  repl->scripted["promote"].push_back(
      {{"ok", false},
       {"error",
        "promote db: the local data is outdated, not UpToDate: promotion refused (force "
        "overrides)"}});
  const action_result b = m->start(ctx_for("data"));
  EXPECT_FALSE(b.ok);
  EXPECT_TRUE(contains(b.message, "outdated, not UpToDate")) << b.message;
  EXPECT_TRUE(contains(b.message, "--force")) << b.message;
  for (const auto& c : repl->seen())
    EXPECT_EQ(c.find("+force"), std::string::npos);
}

TEST_F(mirror_fixture, waits_for_the_peer_to_demote_and_for_a_resync_towards_this_node) {
  start_replicator();
  repl->scripted["promote"].push_back(
      {{"ok", false}, {"error", "promote db: the peer is primary; demote it first"}});
  auto m = make("fuse");
  const action_result a = m->start(ctx_for("data"));
  ASSERT_TRUE(a.ok) << a.message;
  EXPECT_EQ(repl->seen(),
            (std::vector<std::string>{"status", "promote", "status", "promote", "loop"}));

  // Receiving a resync: wait for it, then promote.
  ASSERT_TRUE(m->stop(ctx_for("data")).ok);
  repl->clear();
  repl->disk = "inconsistent";
  repl->connection = "sync_target";
  int looks = 0;
  repl->on_status = [&] {
    if (++looks == 3) {
      repl->disk = "up_to_date";
      repl->connection = "connected";
    }
  };
  const action_result b = m->start(ctx_for("data"));
  ASSERT_TRUE(b.ok) << b.message;
  EXPECT_EQ(looks, 3);

  // A resync that does not end in time: a failure that says so, nothing promoted.
  ASSERT_TRUE(m->stop(ctx_for("data")).ok);
  repl->on_status = nullptr;
  repl->disk = "inconsistent";
  repl->connection = "sync_target";
  repl->clear();
  const action_result c = m->start(ctx_for("data", 500ms));
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(contains(c.message, "receiving a resync")) << c.message;
  EXPECT_TRUE(contains(c.message, "10 of 100 bytes")) << c.message;
  for (const auto& cmd : repl->seen())
    EXPECT_EQ(cmd, "status");
}

TEST_F(mirror_fixture, a_replicator_that_is_not_running_is_a_clear_failure) {
  auto m = make("fuse");
  const action_result a = m->start(ctx_for("data"));
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.message,
            "tandem-replicator is not running (socket " + cfg.mirrors.control_socket + ")");
  // Nothing to demote: stopping succeeds and says why.
  const action_result s = m->stop(ctx_for("data"));
  EXPECT_TRUE(s.ok);
  EXPECT_TRUE(contains(s.message, "not running")) << s.message;
}

TEST_F(mirror_fixture, kmod_device_comes_from_the_replicator_or_the_volume_index) {
  start_replicator();
  auto m = make("kmod");
  // No /dev/tandem1 here (db is the second volume): a failure that says what is missing, and
  // the promotion is undone.
  if (::access("/dev/tandem1", F_OK) == 0) GTEST_SKIP() << "this host has /dev/tandem1";
  const action_result a = m->start(ctx_for("data"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(contains(a.message, "/dev/tandem1 is not there")) << a.message;
  EXPECT_TRUE(contains(a.message, "tandem.ko")) << a.message;
  EXPECT_EQ(repl->seen(), (std::vector<std::string>{"status", "promote", "status", "demote"}));
  EXPECT_EQ(repl->role, "secondary");

  // The replicator names the device it serves (its dev_dir may differ): that one is used.
  struct stat st {};
  if (::stat("/dev/loop0", &st) != 0 || !S_ISBLK(st.st_mode)) GTEST_SKIP() << "no /dev/loop0";
  repl->kernel = {{"device", "/dev/loop0"}};
  const action_result b = m->start(ctx_for("data"));
  ASSERT_TRUE(b.ok) << b.message;
  EXPECT_EQ(m->device(), "/dev/loop0");
  repl->clear();
  ASSERT_TRUE(m->stop(ctx_for("data")).ok);
  EXPECT_EQ(repl->seen(), (std::vector<std::string>{"status", "demote"}));  // no unloop
}

// ---- the factory -----------------------------------------------------------------------------

TEST(resource_factory, a_resource_without_its_required_parameters_is_refused_by_name) {
  config::cluster_config cfg;
  resource_env env;
  env.cfg = &cfg;
  env.node = "node1";
  auto message = [&](resource_type t) {
    try {
      (void)make_resource(make_rc("vip", t, {}), env);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  // Each type names the first required parameter it lacks.
  EXPECT_EQ(message(resource_type::floating_ip), "resource vip: parameter address is missing");
  EXPECT_EQ(message(resource_type::aws_vip), "resource vip: parameter address is missing");
  EXPECT_EQ(message(resource_type::aws_eip), "resource vip: parameter allocation_id is missing");
  EXPECT_EQ(message(resource_type::aws_dns), "resource vip: parameter record_name is missing");
  EXPECT_EQ(message(resource_type::gcp_dns), "resource vip: parameter record_name is missing");
  EXPECT_EQ(message(resource_type::azure_dns), "resource vip: parameter record_name is missing");
  // A mirror resource whose volume is not configured is refused at set-up.
  EXPECT_THROW((void)make_resource(
                   make_rc("m", resource_type::mirror, {{"volume", std::string("nope")}}), env),
               std::runtime_error);
}

}  // namespace
}  // namespace tandem::ctl::groups
