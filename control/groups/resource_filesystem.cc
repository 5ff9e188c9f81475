// SPDX-License-Identifier: Apache-2.0
// The filesystem resource: fsck and mount a block device (a mirror's, or a given one); on stop,
// end the processes still using it and unmount.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control/exec/process.h"
#include "control/groups/resource.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

// After SIGTERM, how long the users of the file system get before SIGKILL (at most).
constexpr milliseconds term_grace{3000};

milliseconds left_until(clock_type::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now());
  return std::max(left, 0ms);
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

// "maj:min" in `base` (10 in mountinfo, 16 in maps); nullopt when it is not that.
std::optional<dev_t> parse_dev(std::string_view s, int base) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  unsigned maj = 0, min = 0;
  const auto a = std::from_chars(s.data(), s.data() + colon, maj, base);
  const auto b = std::from_chars(s.data() + colon + 1, s.data() + s.size(), min, base);
  if (a.ec != std::errc() || a.ptr != s.data() + colon || b.ec != std::errc() ||
      b.ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return makedev(maj, min);
}

// ---- /proc/self/mountinfo --------------------------------------------------------------------

// mountinfo escapes blanks, tabs, newlines and backslashes as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 && oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct mount_entry {
  dev_t dev = 0;  // st_dev of the file system
  std::string mount_point;
  std::string fs_type;
  std::string source;
};

// The mount on top at `mount_point` (the last one mounted there), if any.
std::optional<mount_entry> mounted_at(const std::string& mount_point) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  std::optional<mount_entry> top;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string id, parent, mm, root, mp;
    if (!(in >> id >> parent >> mm >> root >> mp)) continue;
    if (unescape(mp) != mount_point) continue;
    mount_entry e;
    e.mount_point = unescape(mp);
    e.dev = parse_dev(mm, 10).value_or(0);
    std::string field;
    while (in >> field && field != "-") {
    }
    in >> e.fs_type >> e.source;
    e.source = unescape(e.source);
    top = std::move(e);
  }
  return top;
}

std::string real_path(const std::string& p) {
  std::error_code ec;
  auto r = std::filesystem::canonical(p, ec);
  return ec ? p : r.string();
}

// Whether the mount is of `device` (a block device node): its file system's device number, or
// failing that its source, names it.
bool is_of(const mount_entry& m, const std::string& device) {
  struct stat st {};
  if (::stat(device.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == m.dev) {
    return true;
  }
  return !m.source.empty() && real_path(m.source) == real_path(device);
}

// ---- mount options ---------------------------------------------------------------------------

struct mount_options {
  unsigned long flags = 0;
  std::string data;  // what the file system parses itself
};

mount_options parse_options(const std::string& text) {
  static const std::map<std::string, std::pair<unsigned long, bool>, std::less<>> known = {
      // name -> (flag, set)
      {"ro", {MS_RDONLY, true}},
      {"rw", {MS_RDONLY, false}},
      {"noatime", {MS_NOATIME, true}},
      {"atime", {MS_NOATIME, false}},
      {"nodiratime", {MS_NODIRATIME, true}},
      {"diratime", {MS_NODIRATIME, false}},
      {"relatime", {MS_RELATIME, true}},
      {"norelatime", {MS_RELATIME, false}},
      {"strictatime", {MS_STRICTATIME, true}},
      {"lazytime", {MS_LAZYTIME, true}},
      {"nolazytime", {MS_LAZYTIME, false}},
      {"nosuid", {MS_NOSUID, true}},
      {"suid", {MS_NOSUID, false}},
      {"nodev", {MS_NODEV, true}},
      {"dev", {MS_NODEV, false}},
      {"noexec", {MS_NOEXEC, true}},
      {"exec", {MS_NOEXEC, false}},
      {"sync", {MS_SYNCHRONOUS, true}},
      {"async", {MS_SYNCHRONOUS, false}},
      {"dirsync", {MS_DIRSYNC, true}},
  };
  mount_options o;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t end = std::min(text.find(',', pos), text.size());
    std::string opt = text.substr(pos, end - pos);
    pos = end + 1;
    while (!opt.empty() && opt.front() == ' ')
      opt.erase(0, 1);
    while (!opt.empty() && opt.back() == ' ')
      opt.pop_back();
    if (opt.empty() || opt == "defaults") continue;
    if (auto it = known.find(opt); it != known.end()) {
      if (it->second.second) {
        o.flags |= it->second.first;
      } else {
        o.flags &= ~it->second.first;
      }
      continue;
    }
    if (!o.data.empty()) o.data += ',';
    o.data += opt;
  }
  return o;
}

// ---- users of a file system ------------------------------------------------------------------

struct user {
  pid_t pid;
  std::string comm;
};

std::string read_link(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool under(const std::string& path, const std::string& mount_point) {
  if (path.rfind(mount_point, 0) != 0) return false;
  return path.size() == mount_point.size() || mount_point == "/" ||
         path[mount_point.size()] == '/' || path[mount_point.size()] == ' ';  // " (deleted)"
}

// Processes whose working directory, root, open files or mapped files are on the file system
// mounted at `mount_point` (device `dev`); never this process.
std::vector<user> users_of(const std::string& mount_point, dev_t dev) {
  std::vector<user> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == self || pid == 1) continue;
    const std::string base = "/proc/" + name;
    bool uses = under(read_link(base + "/cwd"), mount_point) ||
                under(read_link(base + "/root"), mount_point);
    if (!uses) {
      std::error_code fec;
      for (const auto& fd : std::filesystem::directory_iterator(base + "/fd", fec)) {
        if (under(read_link(fd.path().string()), mount_point)) {
          uses = true;
          break;
        }
      }
    }
    if (!uses) {
      // Mapped files by device number ("maj:min" in hex), which also catches deleted ones.
      std::ifstream maps(base + "/maps");
      std::string line;
      while (!uses && std::getline(maps, line)) {
        std::istringstream in(line);
        std::string range, perms, offset, devs;
        if (!(in >> range >> perms >> offset >> devs)) continue;
        const auto d = parse_dev(devs, 16);
        if (d && *d != 0 && *d == dev) uses = true;
      }
    }
    if (!uses) continue;
    std::ifstream comm(base + "/comm");
    std::string c;
    std::getline(comm, c);
    out.push_back({pid, c});
  }
  return out;
}

bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  return line[paren + 2] != 'Z' && line[paren + 2] != 'X';
}

std::string name_users(const std::vector<user>& users) {
  std::string s;
  for (const user& u : users) {
    if (!s.empty()) s += ", ";
    s += "pid " + std::to_string(u.pid) + " (" + u.comm + ")";
  }
  return s;
}

// SIGTERM, up to `grace` for them to end, then SIGKILL and a short wait. Returns how many it
// signalled.
size_t end_users(const std::vector<user>& users, milliseconds grace) {
  for (const user& u : users)
    ::kill(u.pid, SIGTERM);
  auto all_gone = [&] {
    return std::none_of(users.begin(), users.end(), [](const user& u) { return alive(u.pid); });
  };
  const auto until = clock_type::now() + grace;
  while (!all_gone() && clock_type::now() < until)
    std::this_thread::sleep_for(20ms);
  if (!all_gone()) {
    for (const user& u : users)
      if (alive(u.pid)) ::kill(u.pid, SIGKILL);
    const auto kill_until = clock_type::now() + 1s;
    while (!all_gone() && clock_type::now() < kill_until)
      std::this_thread::sleep_for(10ms);
  }
  return users.size();
}

std::string tidy(const std::string& s) {
  std::string out;
  for (char c : s)
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  std::string squeezed;
  for (char c : out)
    if (!(c == ' ' && (squeezed.empty() || squeezed.back() == ' '))) squeezed += c;
  while (!squeezed.empty() && squeezed.back() == ' ')
    squeezed.pop_back();
  if (squeezed.size() > 300) squeezed = "..." + squeezed.substr(squeezed.size() - 300);
  return squeezed;
}

// ---- the resource ----------------------------------------------------------------------------

class filesystem_resource final : public resource {
 public:
  filesystem_resource(const config::resource_config& rc, const resource_env& env)
      : resource(rc.name), env_(env) {
    const config::param_map p = rc.params_for(env.node);
    if (const std::string* s = p.str("mirror")) mirror_ = *s;
    if (const std::string* s = p.str("device")) device_param_ = *s;
    if (const std::string* s = p.str("mount_point")) mount_point_ = *s;
    if (const std::string* s = p.str("fs_type")) fs_type_ = *s;
    if (const std::string* s = p.str("options")) options_ = *s;
    fsck_ = p.flag("fsck").value_or(true);
    kill_users_ = p.flag("kill_users").value_or(true);
    if (mount_point_.empty() || mount_point_.front() != '/') {
      throw std::runtime_error("resource " + rc.name +
                               ": filesystem needs an absolute mount_point");
    }
    if (mirror_.empty() == device_param_.empty()) {
      throw std::runtime_error("resource " + rc.name +
                               ": filesystem needs exactly one of mirror and device");
    }
    while (mount_point_.size() > 1 && mount_point_.back() == '/')
      mount_point_.pop_back();
    std::lock_guard<std::mutex> g(mu_);
    device_ = device_param_;
  }

  [[nodiscard]] config::resource_type type() const noexcept override {
    return config::resource_type::filesystem;
  }

  [[nodiscard]] nlohmann::json describe() const override {
    std::string dev;
    {
      std::lock_guard<std::mutex> g(mu_);
      dev = device_;
    }
    const auto m = mounted_at(real_path(mount_point_));
    const bool ours = m && (dev.empty() || is_of(*m, dev));
    nlohmann::json j = {{"device", dev}, {"mount_point", mount_point_}, {"mounted", ours}};
    if (!mirror_.empty()) j["mirror"] = mirror_;
    return j;
  }

 private:
  action_result do_start(const action_context& ctx) override;
  action_result do_stop(const action_context& ctx) override;
  // The device to mount now: the mirror resource's, or the configured one. Empty + `why`.
  std::string resolve_device(std::string& why) const;
  std::string fsck(const std::string& dev, clock_type::time_point deadline) const;

  resource_env env_;
  std::string mirror_, device_param_, mount_point_, fs_type_ = "ext4", options_ = "defaults";
  bool fsck_ = true, kill_users_ = true;
  mutable std::mutex mu_;
  std::string device_;  // guarded by mu_: the device last mounted (or configured)
};

std::string filesystem_resource::resolve_device(std::string& why) const {
  if (!device_param_.empty()) return device_param_;
  resource* m = env_.find ? env_.find(mirror_) : nullptr;
  if (m == nullptr) {
    why = "mirror resource " + mirror_ + " is not in this group";
    return {};
  }
  std::string dev = m->device();
  if (dev.empty()) why = "mirror resource " + mirror_ + " provides no device (is it active?)";
  return dev;
}

// fsck(8): 0 clean, 1 errors corrected; 2 reboot needed, 4 errors left, 8 operational error,
// 16 usage, 32 cancelled, 128 library error. "" when the file system may be mounted.
std::string filesystem_resource::fsck(const std::string& dev,
                                      clock_type::time_point deadline) const {
  const milliseconds t = left_until(deadline);
  const run_result r = run({"fsck", "-p", "-T", "-t", fs_type_, dev}, t);
  if (r.timed_out) {
    return "fsck of " + dev + " did not finish within " + std::to_string(t.count()) +
           " ms (the activation timeout must cover a full check)";
  }
  if (r.status.signal != 0) return "fsck of " + dev + " " + r.status.describe();
  const int c = r.status.code;
  if (c == 0 || c == 1) return {};
  std::string why;
  if (c & 4) {
    why = "left errors uncorrected (repair by hand: fsck -f " + dev + ")";
  } else if (c & 2) {
    why = "asks for a reboot";
  } else if (c & 8) {
    why = "failed (operational error)";
  } else {
    why = "failed";
  }
  return "fsck of " + dev + " " + why + ", exit status " + std::to_string(c) + ": " +
         tidy(r.output);
}

action_result filesystem_resource::do_start(const action_context& ctx) {
  const auto deadline = clock_type::now() + ctx.timeout;
  std::string why;
  const std::string dev = resolve_device(why);
  if (dev.empty()) return {false, why};
  {
    std::lock_guard<std::mutex> g(mu_);
    device_ = dev;
  }
  struct stat st {};
  if (::stat(dev.c_str(), &st) != 0) {
    return {false, "device " + dev + ": " + errno_text(errno)};
  }
  if (!S_ISBLK(st.st_mode)) return {false, dev + " is not a block device"};

  std::error_code ec;
  std::filesystem::create_directories(mount_point_, ec);
  if (ec) return {false, "cannot create mount point " + mount_point_ + ": " + ec.message()};
  const std::string mp = real_path(mount_point_);
  if (auto m = mounted_at(mp)) {
    if (is_of(*m, dev)) return {true, "already mounted"};
    return {false, mp + " already has " + m->source + " (" + m->fs_type +
                       ") mounted on it; not mounting " + dev + " over it"};
  }
  if (fsck_) {
    if (std::string err = fsck(dev, deadline); !err.empty()) return {false, err};
  }
  const mount_options o = parse_options(options_);
  if (::mount(dev.c_str(), mp.c_str(), fs_type_.c_str(), o.flags,
              o.data.empty() ? nullptr : o.data.c_str()) != 0) {
    const int err = errno;
    return {false, "mount " + dev + " on " + mp + " (" + fs_type_ +
                       (options_ == "defaults" ? "" : ", " + options_) + "): " + errno_text(err)};
  }
  return {true, dev + " on " + mp};
}

action_result filesystem_resource::do_stop(const action_context& ctx) {
  const auto deadline = clock_type::now() + ctx.timeout;
  const std::string mp = real_path(mount_point_);
  auto m = mounted_at(mp);
  if (!m) return {true, "not mounted"};
  // What we mounted, or the configured device, or the mirror's; when none is known (a restarted
  // tandemd whose mirror resource is inactive), whatever is mounted at the mount point.
  std::string dev;
  {
    std::lock_guard<std::mutex> g(mu_);
    dev = device_;
  }
  if (dev.empty() && env_.find) {
    if (resource* r = env_.find(mirror_)) dev = r->device();
  }
  if (!dev.empty() && !is_of(*m, dev)) {
    return {true, mp + " holds " + m->source + ", not " + dev + ": left alone"};
  }
  std::string detail;
  size_t killed = 0;
  for (int attempt = 0;; ++attempt) {
    if (kill_users_) {
      const auto users = users_of(mp, m->dev);
      if (!users.empty()) {
        const milliseconds grace = std::min(term_grace, left_until(deadline) / 2);
        killed += end_users(users, grace);
      }
    }
    if (::umount2(mp.c_str(), UMOUNT_NOFOLLOW) == 0) break;
    const int err = errno;
    if (err == EINVAL && !mounted_at(mp)) break;  // someone else unmounted it meanwhile
    if (err != EBUSY || clock_type::now() >= deadline) {
      std::string msg = "umount " + mp + ": " + errno_text(err);
      if (err == EBUSY) {
        const auto users = users_of(mp, m->dev);
        msg += users.empty() ? " (no process holds it: a mount below it, or a kernel user?)"
                             : "; still used by " + name_users(users);
      }
      return {false, msg};
    }
    std::this_thread::sleep_for(
        std::min<milliseconds>(attempt < 5 ? 50ms : 200ms, left_until(deadline) + 1ms));
  }
  if (killed > 0) detail = "ended " + std::to_string(killed) + " process(es) using it; ";
  return {true, detail + "unmounted " + mp};
}

}  // namespace

std::unique_ptr<resource> make_filesystem_resource(const config::resource_config& rc,
                                                   const resource_env& env) {
  return std::make_unique<filesystem_resource>(rc, env);
}

}  // namespace tandem::ctl::groups
