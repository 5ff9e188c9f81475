// SPDX-License-Identifier: Apache-2.0
// Kernel harness: fetches Debian's kernel, builds busybox initramfs images and boots them in qemu.
#include "tests/lab/kernel.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "control/exec/process.h"
#include "tests/lab/files.h"

namespace tandem::lab {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view boot_marker = "TANDEM-BOOT-OK";
constexpr std::string_view exit_marker = "TANDEM-EXIT=";
constexpr std::string_view preload_marker = "TANDEM-PRELOAD-FAILED=";
constexpr const char* busybox_path = "/bin/busybox";
constexpr const char* qemu_binary = "qemu-system-x86_64";

// An exclusive flock held for the object's lifetime; serialises cache updates across processes.
class file_lock {
 public:
  explicit file_lock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path.string());
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd_);
        throw std::system_error(err, std::generic_category(), "flock " + path.string());
      }
    }
  }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;
  ~file_lock() { ::close(fd_); }

 private:
  int fd_ = -1;
};

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

// Runs a bash script (pipelines fail as a whole) and returns its result.
ctl::run_result run_bash(const std::string& script, milliseconds timeout) {
  return ctl::run({"bash", "-o", "pipefail", "-c", script}, timeout);
}

std::string checked_bash(const std::string& script, milliseconds timeout, std::string_view what) {
  try {
    return ctl::run_checked({"bash", "-o", "pipefail", "-c", script}, timeout);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("kernel harness: " + std::string(what) + ": " + e.what());
  }
}

void write_file(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) throw std::runtime_error("kernel harness: cannot write " + path.string());
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    std::erase(line, '\r');
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

// Module names compare with '-' and '_' unified, as the kernel does.
std::string normalize_module(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

// "kernel/fs/fuse/fuse.ko.xz" -> "fuse".
std::string module_name_of(std::string_view path) {
  std::string base = fs::path(path).filename().string();
  size_t ko = base.find(".ko");
  if (ko != std::string::npos) base.resize(ko);
  return normalize_module(base);
}

// "x.ko.xz" -> "x.ko"; the decompressor command for it (empty when not compressed).
std::pair<std::string, std::string> decompressed_name(const std::string& path) {
  static const std::pair<std::string_view, std::string_view> suffixes[] = {
      {".xz", "xz -d -f"}, {".zst", "zstd -d -q -f --rm"}, {".gz", "gzip -d -f"}};
  for (const auto& [suffix, cmd] : suffixes) {
    if (path.size() > suffix.size() && path.ends_with(suffix)) {
      return {path.substr(0, path.size() - suffix.size()), std::string(cmd)};
    }
  }
  return {path, {}};
}

// The "depends=" entry of a .ko's .modinfo section, split on commas.
std::vector<std::string> module_depends(const fs::path& ko) {
  std::string data = read_file(ko);
  auto fail = [&](const char* why) {
    return std::runtime_error("kernel harness: " + ko.string() + ": " + why);
  };
  if (data.size() < sizeof(Elf64_Ehdr) || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0 ||
      data[EI_CLASS] != ELFCLASS64) {
    throw fail("not a 64-bit ELF module");
  }
  Elf64_Ehdr eh;
  std::memcpy(&eh, data.data(), sizeof eh);
  if (eh.e_shoff == 0 || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shstrndx >= eh.e_shnum ||
      eh.e_shoff + uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) > data.size()) {
    throw fail("bad section header table");
  }
  auto section = [&](size_t i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, data.data() + eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof sh);
    if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > data.size()) {
      throw fail("section outside the file");
    }
    return sh;
  };
  Elf64_Shdr names = section(eh.e_shstrndx);
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh = section(i);
    if (sh.sh_name >= names.sh_size) continue;
    std::string_view name(data.data() + names.sh_offset + sh.sh_name);
    if (name != ".modinfo") continue;
    std::string_view info(data.data() + sh.sh_offset, sh.sh_size);
    size_t pos = 0;
    while (pos < info.size()) {
      size_t end = info.find('\0', pos);
      if (end == std::string_view::npos) end = info.size();
      std::string_view entry = info.substr(pos, end - pos);
      pos = end + 1;
      if (!entry.starts_with("depends=")) continue;
      std::vector<std::string> deps;
      std::string_view list = entry.substr(std::strlen("depends="));
      while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view dep = list.substr(0, comma);
        if (!dep.empty()) deps.push_back(normalize_module(dep));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
      return deps;
    }
    return {};
  }
  throw fail("no .modinfo section");
}

// True when the ELF file has no program interpreter (a static executable).
bool is_static_executable(const fs::path& path) {
  std::string data = read_file(path);
  if (data.size() < sizeof(Elf64_Ehdr) || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0 ||
      data[EI_CLASS] != ELFCLASS64) {
    return false;
  }
  Elf64_Ehdr eh;
  std::memcpy(&eh, data.data(), sizeof eh);
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    size_t off = eh.e_phoff + i * sizeof(Elf64_Phdr);
    if (off + sizeof(Elf64_Phdr) > data.size()) return false;
    Elf64_Phdr ph;
    std::memcpy(&ph, data.data() + off, sizeof ph);
    if (ph.p_type == PT_INTERP) return false;
  }
  return true;
}

kernel_source with_defaults(kernel_source source) {
  if (source.release.empty()) source.release = TANDEM_KERNEL_RELEASE;
  if (source.version.empty()) source.version = TANDEM_KERNEL_VERSION;
  if (source.cache_dir.empty()) source.cache_dir = fs::path(TANDEM_BUILD_DIR) / "kernel";
  return source;
}

fs::path unpacked_dir(const kernel_source& source) {
  return source.cache_dir / (source.release + "_" + source.version);
}

fs::path deb_path(const kernel_source& source, const std::string& package) {
  // apt names files with the epoch's ':' escaped; this cache uses its own plain name.
  std::string version = source.version;
  std::replace(version.begin(), version.end(), ':', '_');
  return source.cache_dir / (package + "_" + version + ".deb");
}

// The packages that may hold /boot/vmlinuz-<release>: Debian's signed image first, then the
// unsigned one it is built from.
std::vector<std::string> image_packages(const std::string& release) {
  return {"linux-image-" + release, "linux-image-" + release + "-unsigned"};
}

// Downloads the image package into the cache; returns the package name. Caller holds the lock.
std::string download_image(const kernel_source& source) {
  auto packages = image_packages(source.release);
  for (const auto& package : packages) {
    if (fs::exists(deb_path(source, package))) return package;
  }
  fs::path tmp = source.cache_dir / "download.tmp";
  std::string log;
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (const auto& package : packages) {
      fs::remove_all(tmp);
      fs::create_directories(tmp);
      std::string spec = package + "=" + source.version;
      auto r =
          run_bash("cd " + shell_quote(tmp.string()) +
                       " && apt-get -q -o APT::Sandbox::User=root download " + shell_quote(spec),
                   std::chrono::minutes(10));
      log += "$ apt-get download " + spec + "\n" + r.output;
      if (r.timed_out || !r.status.ok()) continue;
      for (const auto& entry : fs::directory_iterator(tmp)) {
        if (entry.path().extension() == ".deb") {
          fs::rename(entry.path(), deb_path(source, package));
          fs::remove_all(tmp);
          return package;
        }
      }
      log += "(no .deb appeared)\n";
    }
    if (attempt == 0) {
      // Missing or stale package lists are the usual reason; refresh them once and retry.
      auto r = ctl::run({"apt-get", "-q", "update"}, std::chrono::minutes(10));
      log += "$ apt-get update\n" + r.output;
    }
  }
  fs::remove_all(tmp);
  throw std::runtime_error(
      "kernel harness: cannot download linux-image-" + source.release + " version " +
      source.version +
      " (the kernel matching linux-headers-amd64). Is the Debian archive reachable, and is that "
      "version still in it? If the archive moved on, upgrade the headers (apt-get install "
      "linux-headers-amd64) and reconfigure.\n" +
      log);
}

kernel_image image_of(const kernel_source& source, const std::string& package) {
  kernel_image image;
  image.release = source.release;
  image.version = source.version;
  image.package = package;
  image.cache_dir = source.cache_dir;
  image.root = unpacked_dir(source);
  image.vmlinuz = image.root / "boot" / ("vmlinuz-" + source.release);
  image.config = image.root / "boot" / ("config-" + source.release);
  return image;
}

fs::path modules_dir(const kernel_image& image) {
  return image.root / "lib" / "modules" / image.release;
}

// name -> path inside the package ("./lib/modules/<release>/kernel/.../x.ko[.xz]").
std::map<std::string, std::string> module_index(const kernel_image& image) {
  std::map<std::string, std::string> index;
  for (auto& line : split_lines(read_file(image.root / "modules.list"))) {
    if (!line.empty()) index.emplace(module_name_of(line), line);
  }
  return index;
}

std::set<std::string> builtin_modules(const kernel_image& image) {
  std::set<std::string> names;
  for (auto& line : split_lines(read_file_or_empty(modules_dir(image) / "modules.builtin"))) {
    if (!line.empty()) names.insert(module_name_of(line));
  }
  return names;
}

std::string tail_lines(std::string_view text, size_t count) {
  auto lines = split_lines(text);
  size_t first = lines.size() > count ? lines.size() - count : 0;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) {
    out += lines[i] + "\n";
  }
  return out;
}

// The last line of `console` that starts with `marker`, without the marker; nullopt if none.
std::optional<std::string> marker_value(const std::vector<std::string>& lines,
                                        std::string_view marker) {
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->starts_with(marker)) return it->substr(marker.size());
  }
  return std::nullopt;
}

std::string seconds_text(milliseconds ms) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  out << static_cast<double>(ms.count()) / 1000.0 << " s";
  return out.str();
}

std::string init_script(const std::vector<std::string>& modules) {
  std::string s =
      "#!/bin/busybox sh\n"
      "# /init of the tandem kernel harness (tests/lab/kernel.cc).\n"
      "export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root\n"
      "mkdir -p /proc /sys /dev /tmp /run /root\n"
      "mount -t proc proc /proc\n"
      "mount -t sysfs sysfs /sys\n"
      "mount -t devtmpfs devtmpfs /dev\n"
      "mkdir -p /dev/pts /dev/shm\n"
      "mount -t devpts devpts /dev/pts\n"
      "mount -t tmpfs tmpfs /tmp\n"
      "mount -t tmpfs tmpfs /run\n"
      "exec </dev/console >/dev/console 2>&1\n"
      "echo\n"
      "echo " +
      std::string(boot_marker) + "\n";
  for (const auto& m : modules) {
    std::string q = shell_quote(m);
    s += "if ! insmod " + q + "; then echo; echo ";
    s += std::string(preload_marker) + q + "; poweroff -f; fi\n";
  }
  s += "cd /\n"
       "sh /tandem/command.sh </dev/null\n"
       "rc=$?\n"
       "echo\n"
       "echo " +
       std::string(exit_marker) +
       "$rc\n"
       "sync\n"
       "poweroff -f\n"
       "sleep 5\n";  // if poweroff fails /init exits, the kernel panics and qemu (-no-reboot) ends
  return s;
}

// Run directories keep each guest's console and qemu log for a day for post-mortems.
void prune_old_runs(const fs::path& runs) {
  auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runs, ec)) {
    std::error_code ignored;
    if (entry.path().filename().string().starts_with("vm-") &&
        fs::last_write_time(entry.path(), ignored) < cutoff) {
      fs::remove_all(entry.path(), ignored);
    }
  }
}

}  // namespace

kernel_image fetch_kernel(const kernel_source& requested) {
  kernel_source source = with_defaults(requested);
  fs::create_directories(source.cache_dir);
  file_lock lock(source.cache_dir / "lock");

  fs::path dir = unpacked_dir(source);
  fs::path stamp = dir / "ready";
  if (fs::exists(stamp)) {
    auto lines = split_lines(read_file(stamp));
    if (!lines.empty() && !lines[0].empty()) return image_of(source, lines[0]);
  }

  std::string package = download_image(source);
  fs::path deb = deb_path(source, package);
  fs::path tmp = dir.string() + ".tmp";
  fs::remove_all(tmp);
  fs::remove_all(dir);
  fs::create_directories(tmp);
  std::string rel = source.release;
  std::string tarfile = "dpkg-deb --fsys-tarfile " + shell_quote(deb.string());
  checked_bash(tarfile + " | tar -x -C " + shell_quote(tmp.string()) + " " +
                   shell_quote("./boot/vmlinuz-" + rel) + " " +
                   shell_quote("./boot/config-" + rel) + " " +
                   shell_quote("./lib/modules/" + rel + "/modules.builtin"),
               std::chrono::minutes(5), "unpacking " + deb.string());
  std::string listing =
      checked_bash(tarfile + " | tar -t", std::chrono::minutes(5), "listing " + deb.string());
  std::string modules;
  for (const auto& line : split_lines(listing)) {
    if (line.find(".ko") != std::string::npos && line.starts_with("./lib/modules/")) {
      modules += line + "\n";
    }
  }
  write_file(tmp / "modules.list", modules);
  kernel_image image = image_of(source, package);
  if (!fs::exists(tmp / "boot" / image.vmlinuz.filename())) {
    throw std::runtime_error("kernel harness: " + deb.string() + " has no /boot/vmlinuz-" + rel);
  }
  fs::rename(tmp, dir);
  write_file(stamp, package + "\n");
  return image;
}

bool kernel_module_is_builtin(const kernel_image& image, std::string_view name) {
  return builtin_modules(image).contains(normalize_module(name));
}

std::vector<fs::path> fetch_kernel_modules(const kernel_image& image,
                                           const std::vector<std::string>& names) {
  file_lock lock(image.cache_dir / "lock");
  auto index = module_index(image);
  auto builtin = builtin_modules(image);
  kernel_source source{image.release, image.version, image.cache_dir};
  fs::path deb = deb_path(source, image.package);
  if (!fs::exists(deb)) deb = deb_path(source, download_image(source));  // deleted by hand

  std::map<std::string, fs::path> local;                 // module -> unpacked .ko
  std::map<std::string, std::vector<std::string>> deps;  // module -> what it needs
  std::vector<std::string> pending;
  pending.reserve(names.size());
  for (const auto& n : names) {
    pending.push_back(normalize_module(n));
  }

  while (!pending.empty()) {
    std::vector<std::string> batch;
    std::vector<std::pair<std::string, std::string>> to_unpack;  // module, package path
    for (const auto& name : pending) {
      if (local.contains(name) || builtin.contains(name)) continue;
      if (std::find(batch.begin(), batch.end(), name) != batch.end()) continue;
      auto it = index.find(name);
      if (it == index.end()) {
        throw std::runtime_error("kernel harness: " + image.package + " has no module '" + name +
                                 "' (neither a .ko nor built in)");
      }
      batch.push_back(name);
      std::string rel = it->second.substr(it->second.starts_with("./") ? 2 : 0);
      auto [plain, decompress] = decompressed_name(rel);
      local[name] = image.root / plain;
      if (!fs::exists(image.root / plain)) to_unpack.emplace_back(name, rel);
    }
    pending.clear();
    if (!to_unpack.empty()) {
      // Unpack into a scratch tree and move finished files into place, so an interrupted run
      // never leaves a truncated module behind.
      fs::path tmp = image.cache_dir / "modules.tmp";
      fs::remove_all(tmp);
      fs::create_directories(tmp);
      std::string cmd = "dpkg-deb --fsys-tarfile " + shell_quote(deb.string()) + " | tar -x -C " +
                        shell_quote(tmp.string());
      for (const auto& [name, rel] : to_unpack) {
        cmd += " " + shell_quote("./" + rel);
      }
      checked_bash(cmd, std::chrono::minutes(5), "unpacking modules from " + deb.string());
      for (const auto& [name, rel] : to_unpack) {
        auto [plain, decompress] = decompressed_name(rel);
        if (!decompress.empty()) {
          checked_bash(decompress + " " + shell_quote((tmp / rel).string()), seconds(60),
                       "decompressing " + rel);
        }
        fs::create_directories((image.root / plain).parent_path());
        fs::rename(tmp / plain, image.root / plain);
      }
      fs::remove_all(tmp);
    }
    for (const auto& name : batch) {
      deps[name] = module_depends(local[name]);
      for (const auto& d : deps[name]) {
        pending.push_back(d);
      }
    }
  }

  // Dependencies first, each module once.
  std::vector<fs::path> order;
  std::set<std::string> done;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (!done.insert(name).second || !local.contains(name)) return;
    for (const auto& d : deps[name]) {
      visit(d);
    }
    order.push_back(local[name]);
  };
  for (const auto& n : names) {
    visit(normalize_module(n));
  }
  return order;
}

std::vector<guest_file> guest_binary(const fs::path& host_path, const std::string& guest_path,
                                     mode_t mode) {
  if (!fs::is_regular_file(host_path)) {
    throw std::runtime_error("kernel harness: no executable at " + host_path.string());
  }
  std::vector<guest_file> files = {
      {.guest_path = guest_path, .host_path = host_path, .mode = mode}};
  if (is_static_executable(host_path)) return files;
  std::string listing = checked_bash("ldd " + shell_quote(host_path.string()), seconds(30),
                                     "listing the libraries of " + host_path.string());
  // "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "\t/lib64/ld-linux-x86-64.so.2
  // (0x...)", "\tlinux-vdso.so.1 (0x...)" (in the kernel, nothing to copy).
  for (const auto& raw : split_lines(listing)) {
    std::string line = raw;
    line.erase(0, line.find_first_not_of(" \t"));
    if (line.empty()) continue;
    std::string path;
    if (size_t arrow = line.find(" => "); arrow != std::string::npos) {
      path = line.substr(arrow + 4);
      if (path.starts_with("not found")) {
        throw std::runtime_error("kernel harness: ldd " + host_path.string() + ": " + line);
      }
    } else {
      path = line;
    }
    path = path.substr(0, path.find(" ("));
    if (!path.starts_with("/")) continue;  // linux-vdso.so.1
    files.push_back({.guest_path = path, .host_path = path, .mode = 0755});
  }
  return files;
}

void build_initramfs(const initramfs_spec& spec, const fs::path& out) {
  if (!fs::exists(busybox_path) || !is_static_executable(busybox_path)) {
    throw std::runtime_error(std::string("kernel harness: ") + busybox_path +
                             " is missing or not static: apt-get install busybox-static");
  }
  fs::path staging = out.string() + ".d";
  fs::remove_all(staging);
  for (const char* d : {"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run",
                        "root", "etc", "lib/modules/tandem", "tandem"}) {
    fs::create_directories(staging / d);
  }
  fs::copy_file(busybox_path, staging / "bin/busybox");
  fs::permissions(staging / "bin/busybox", static_cast<fs::perms>(0755));
  for (const auto& applet :
       split_lines(ctl::run_checked({busybox_path, "--list-full"}, seconds(10)))) {
    if (applet.empty() || applet == "bin/busybox") continue;
    fs::path link = staging / applet;
    fs::create_directories(link.parent_path());
    if (!fs::is_symlink(link)) fs::create_symlink("/bin/busybox", link);
  }

  std::vector<std::string> guest_modules;
  for (const auto& ko : spec.modules) {
    std::string guest = "/lib/modules/tandem/" + ko.filename().string();
    if (std::find(guest_modules.begin(), guest_modules.end(), guest) != guest_modules.end()) {
      throw std::runtime_error("kernel harness: two modules named " + ko.filename().string());
    }
    fs::copy_file(ko, staging / guest.substr(1));
    guest_modules.push_back(guest);
  }
  std::set<std::pair<std::string, fs::path>> copied;  // a library listed by several binaries
  for (const auto& f : spec.files) {
    if (!f.host_path.empty() && !copied.emplace(f.guest_path, f.host_path).second) continue;
    if (!f.guest_path.starts_with("/") || f.guest_path.size() < 2) {
      throw std::runtime_error("kernel harness: guest path must be absolute: " + f.guest_path);
    }
    fs::path dest = staging / f.guest_path.substr(1);
    fs::create_directories(dest.parent_path());
    fs::remove(dest);  // e.g. replacing an applet symlink
    if (!f.host_path.empty()) {
      fs::copy_file(f.host_path, dest);
    } else {
      write_file(dest, f.content);
    }
    fs::permissions(dest, static_cast<fs::perms>(f.mode & 07777));
  }
  write_file(staging / "tandem/command.sh", spec.command + "\n");
  fs::permissions(staging / "tandem/command.sh", static_cast<fs::perms>(0755));
  write_file(staging / "init", init_script(guest_modules));
  fs::permissions(staging / "init", static_cast<fs::perms>(0755));

  checked_bash("cd " + shell_quote(staging.string()) +
                   " && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet"
                   " | gzip -1 > " +
                   shell_quote(fs::absolute(out).string()),
               seconds(120), "packing the initramfs");
  fs::remove_all(staging);
}

std::string vm_result::describe() const {
  std::string s;
  if (exit_code) {
    s = "guest command exited " + std::to_string(*exit_code);
  } else {
    s = "guest run failed: " + error;
  }
  s += " (" + seconds_text(elapsed) + ", console " + console_path.string() + ")";
  if (!ok()) s += "\n--- last console lines ---\n" + tail_lines(console, 60);
  return s;
}

int vm_result::checked_exit_code() const {
  if (!exit_code) throw std::runtime_error("kernel harness: " + describe());
  return *exit_code;
}

vm_result run_in_vm(const kernel_image& image, const vm_options& options) {
  if (!fs::exists(image.vmlinuz)) {
    throw std::runtime_error("kernel harness: no kernel at " + image.vmlinuz.string());
  }
  fs::path runs = image.cache_dir / "runs";
  fs::create_directories(runs);
  prune_old_runs(runs);
  std::string tmpl = (runs / "vm-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
  }
  fs::path run_dir = tmpl;
  fs::path initrd = run_dir / "initramfs.cpio.gz";
  build_initramfs({options.command, options.files, options.modules}, initrd);

  vm_result result;
  result.console_path =
      options.console_path.empty() ? run_dir / "console.log" : fs::absolute(options.console_path);
  fs::create_directories(result.console_path.parent_path());
  fs::remove(result.console_path);
  fs::path qemu_log = run_dir / "qemu.log";

  std::string append = "console=ttyS0 panic=-1 printk.time=1";
  if (!options.append.empty()) append += " " + options.append;
  // -nodefaults: no NIC, VGA or drives unless qemu_args add them; the only serial port is the
  // console, written straight to the log file.
  std::vector<std::string> argv = {qemu_binary, "-accel", "tcg", "-cpu", "max"};
  argv.insert(argv.end(), {"-m", std::to_string(options.memory_mb) + "M"});
  argv.insert(argv.end(), {"-smp", std::to_string(options.cpus)});
  argv.insert(argv.end(), {"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"});
  argv.insert(argv.end(), {"-serial", "file:" + result.console_path.string()});
  argv.insert(argv.end(), {"-kernel", image.vmlinuz.string(), "-initrd", initrd.string()});
  argv.insert(argv.end(), {"-append", append});
  argv.insert(argv.end(), options.qemu_args.begin(), options.qemu_args.end());

  ctl::spawn_options spawn;
  spawn.argv = argv;
  spawn.output_path = qemu_log.string();
  spawn.kill_with_parent = true;  // never leave a qemu behind when the test dies
  auto start = std::chrono::steady_clock::now();
  ctl::exit_status status;
  {
    auto qemu = ctl::process::spawn(spawn);
    if (auto st = qemu.wait(options.timeout)) {
      status = *st;
    } else {
      result.timed_out = true;
      status = qemu.stop(SIGKILL, seconds(2));
    }
  }
  result.elapsed =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  result.console = read_file_or_empty(result.console_path);
  std::string qemu_output = read_file_or_empty(qemu_log);
  fs::remove(initrd);

  auto lines = split_lines(result.console);
  result.booted = marker_value(lines, boot_marker).has_value();
  auto errors = kernel_errors(result.console);
  auto panic_line = std::find_if(errors.begin(), errors.end(), [](const std::string& l) {
    return l.find("Kernel panic") != std::string::npos;
  });
  result.panicked = panic_line != errors.end();
  if (auto rc = marker_value(lines, exit_marker)) {
    try {
      size_t used = 0;
      int value = std::stoi(*rc, &used);
      if (used == rc->size()) result.exit_code = value;
    } catch (const std::exception&) {
    }
  }
  if (!result.exit_code) {
    std::string why;
    if (auto module = marker_value(lines, preload_marker)) {
      why = "insmod " + *module + " failed before the command ran";
    } else if (result.timed_out) {
      why = "timed out after " + seconds_text(options.timeout) + " and was killed (" +
            (result.booted ? "the command was still running" : "/init was never reached") + ")";
    } else if (result.panicked) {
      why = "kernel panic: " + *panic_line;
    } else if (!result.booted) {
      why = "the kernel never reached /init (qemu " + status.describe() + ")";
    } else {
      why = "the guest stopped before printing " + std::string(exit_marker) + " (qemu " +
            status.describe() + ")";
    }
    while (!qemu_output.empty() && std::isspace(static_cast<unsigned char>(qemu_output.back()))) {
      qemu_output.pop_back();
    }
    if (!qemu_output.empty()) why += "; qemu said: " + qemu_output;
    result.error = why;
  }
  return result;
}

vm_result run_in_vm(const vm_options& options) {
  return run_in_vm(fetch_kernel(), options);
}

std::vector<std::string> kernel_errors(std::string_view console) {
  static constexpr std::string_view patterns[] = {"BUG:",
                                                  "Oops",
                                                  "WARNING:",
                                                  "Kernel panic",
                                                  "general protection fault",
                                                  "Call Trace",
                                                  "kernel BUG at",
                                                  "KASAN:",
                                                  "UBSAN:",
                                                  "KFENCE:",
                                                  "detected stall",
                                                  "blocked for more than"};
  std::vector<std::string> found;
  for (const auto& line : split_lines(console)) {
    // A printk line carries a "[    1.234567]" timestamp before the message.
    size_t open = line.find('[');
    while (open != std::string::npos) {
      size_t close = line.find(']', open);
      if (close == std::string::npos) break;
      std::string_view stamp = std::string_view(line).substr(open + 1, close - open - 1);
      bool is_stamp =
          !stamp.empty() && stamp.find('.') != std::string_view::npos &&
          std::all_of(stamp.begin(), stamp.end(), [](char c) {
            return c == ' ' || c == '.' || std::isdigit(static_cast<unsigned char>(c)) != 0;
          });
      if (is_stamp) {
        std::string_view message = std::string_view(line).substr(close + 1);
        bool bad = std::any_of(std::begin(patterns), std::end(patterns), [&](std::string_view p) {
          return message.find(p) != std::string_view::npos;
        });
        if (bad) found.push_back(line);
        break;
      }
      open = line.find('[', open + 1);
    }
  }
  return found;
}

std::string kernel_errors_text(std::string_view console) {
  std::string out;
  for (const auto& l : kernel_errors(console))
    out += l + "\n";
  return out;
}

bool console_has_kernel_errors(std::string_view console) {
  return !kernel_errors(console).empty();
}

}  // namespace tandem::lab
