// SPDX-License-Identifier: Apache-2.0
// Kernel harness: boots Debian's kernel under qemu TCG with a busybox initramfs to test modules.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::lab {

// Which Debian kernel to use and where to cache it. Empty fields take the build's defaults: the
// kernel that linux-headers-amd64 belongs to (TANDEM_KERNEL_RELEASE / TANDEM_KERNEL_VERSION, the
// one kmod/ builds against) and ${TANDEM_BUILD_DIR}/kernel.
struct kernel_source {
  std::string release{};              // e.g. "6.1.0-56-amd64"
  std::string version{};              // Debian package version, e.g. "6.1.192-2"
  std::filesystem::path cache_dir{};  // holds the .deb, the unpacked tree, a lock and run logs
};

// Debian's linux-image package for one release, partly unpacked in the cache: the kernel image,
// its config and module metadata; modules themselves are unpacked on demand by
// fetch_kernel_modules().
struct kernel_image {
  std::string release;
  std::string version;
  std::string package;              // e.g. "linux-image-6.1.0-56-amd64"
  std::filesystem::path cache_dir;  // the kernel_source's cache directory
  std::filesystem::path root;       // unpacked tree: boot/, lib/modules/<release>/
  std::filesystem::path vmlinuz;    // root/boot/vmlinuz-<release>
  std::filesystem::path config;     // root/boot/config-<release>
};

// Downloads (`apt-get download`, running `apt-get update` once if that fails) and unpacks the
// kernel image package unless the cache already has it. Safe when several processes call it at
// once (flock on <cache_dir>/lock). Throws std::runtime_error with apt's output on failure.
kernel_image fetch_kernel(const kernel_source& source = {});

// Unpacks the named modules ("loop", "fuse"; '-' and '_' are interchangeable) and, transitively,
// the modules they depend on, decompressing .ko.xz/.ko.zst/.ko.gz. Returns the .ko paths in load
// order (dependencies first); modules built into the kernel are left out. Cached and locked like
// fetch_kernel(). Throws std::runtime_error for a name the package does not have.
std::vector<std::filesystem::path> fetch_kernel_modules(const kernel_image& image,
                                                        const std::vector<std::string>& names);

// True when `name` is built into the image (listed in modules.builtin), so needs no insmod.
bool kernel_module_is_builtin(const kernel_image& image, std::string_view name);

// One file put into the guest's initramfs.
struct guest_file {
  std::string guest_path{};           // absolute path inside the guest; parents are created
  std::filesystem::path host_path{};  // copied from this host file...
  std::string content{};              // ...or, when host_path is empty, written from this
  mode_t mode = 0644;
};

// What the guest's /init does: mount proc, sysfs, devtmpfs, devpts and tmpfs on /tmp and /run,
// print a boot marker, insmod `modules` in order, run `command` with busybox sh (as root, in /,
// stdin from /dev/null, output to the console), print TANDEM-EXIT=<status> and power off.
struct initramfs_spec {
  std::string command{};                         // a shell script, e.g. "insmod /x.ko && dmesg"
  std::vector<guest_file> files{};               // extra files
  std::vector<std::filesystem::path> modules{};  // host .ko files, loaded before `command`
};

// The files a host executable needs in the guest: itself at `guest_path` (with `mode`), and for a
// dynamically linked one its program interpreter and every shared library ldd resolves, each at
// its host path (ld.so finds them there without a cache), copied with symlinks followed. Lists
// for several executables may be concatenated: a library listed twice is copied once. Throws
// std::runtime_error when ldd fails or cannot find a library.
std::vector<guest_file> guest_binary(const std::filesystem::path& host_path,
                                     const std::string& guest_path, mode_t mode = 0755);

// Writes a gzip-compressed newc cpio with busybox-static (/bin/busybox plus applet symlinks),
// /init and the spec's files to `out`.
void build_initramfs(const initramfs_spec& spec, const std::filesystem::path& out);

struct vm_options {
  std::string command{};                         // see initramfs_spec
  std::vector<guest_file> files{};               // see initramfs_spec
  std::vector<std::filesystem::path> modules{};  // see initramfs_spec
  unsigned memory_mb = 512;
  unsigned cpus = 1;
  std::chrono::milliseconds timeout = std::chrono::seconds(120);  // wall clock; qemu is killed
  std::string append{};                  // extra kernel command-line arguments
  std::vector<std::string> qemu_args{};  // extra qemu arguments, e.g. {"-drive", "..."}
  std::filesystem::path console_path{};  // serial log; empty: <cache>/runs/vm-*/console.log
};

// How a guest run ended. exit_code is set only when the command ran to the end; otherwise
// `error` says why (timeout, kernel panic, boot failure, a module that did not load).
struct vm_result {
  std::optional<int> exit_code;  // from the TANDEM-EXIT marker on the console
  bool booted = false;           // /init ran (the boot marker was printed)
  bool timed_out = false;        // qemu was killed after vm_options::timeout
  bool panicked = false;         // "Kernel panic" on the console
  std::string error;             // empty when exit_code is set
  std::string console;           // the whole serial console, kernel messages included
  std::filesystem::path console_path;
  std::chrono::milliseconds elapsed{0};  // qemu start to exit

  bool ok() const { return exit_code && *exit_code == 0; }
  // One line saying how the run ended, then (unless ok()) the tail of the console: for test
  // failure messages.
  std::string describe() const;
  // The command's exit status; throws std::runtime_error with describe() when there is none.
  int checked_exit_code() const;
};

// Boots `image` under `qemu-system-x86_64 -accel tcg` with an initramfs built from `options` and
// waits for it to power off. Throws only when the run cannot be set up (no qemu, unwritable
// cache); everything that happens in the guest is reported in the result.
vm_result run_in_vm(const kernel_image& image, const vm_options& options);
// Same with fetch_kernel()'s default kernel.
vm_result run_in_vm(const vm_options& options);

// Kernel messages on a console log that indicate a kernel bug: "BUG:", "Oops", "WARNING:",
// "Kernel panic", "general protection fault", "Call Trace", KASAN/UBSAN/KFENCE reports, RCU
// stalls and hung tasks. Only printk lines (with the "[    1.234567]" timestamp the harness
// turns on) count, so a guest program printing "WARNING:" is not mistaken for the kernel. The
// taint notice for unsigned out-of-tree modules is not an error. Returns the offending lines.
std::vector<std::string> kernel_errors(std::string_view console);
// The same lines, one per line, for a test's failure message.
std::string kernel_errors_text(std::string_view console);
bool console_has_kernel_errors(std::string_view console);

}  // namespace tandem::lab
