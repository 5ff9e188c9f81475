// SPDX-License-Identifier: Apache-2.0
// Proves the kernel harness: Debian kernel under qemu TCG runs our command and modules.
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/lab/kernel.h"

namespace tandem::lab {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(kernel_errors, finds_kernel_reports_but_not_taint_notices_or_userspace) {
  const std::string clean =
      "[    1.982705] tandem_hello: loading out-of-tree module taints kernel.\n"
      "[    1.984186] tandem_hello: module verification failed: signature and/or required key "
      "missing - tainting kernel\n"
      "[    1.991965] tandem_hello: loaded\r\n"
      "WARNING: this is a guest program, not the kernel\n"
      "[    0.000000] Command line: console=ttyS0 panic=-1 printk.time=1\n";
  EXPECT_FALSE(console_has_kernel_errors(clean)) << kernel_errors_text(clean);

  const std::string oops = clean +
                           "[    2.100000] BUG: kernel NULL pointer dereference, address: 0\n"
                           "[    2.100001] Oops: 0002 [#1] PREEMPT SMP NOPTI\n"
                           "[    2.100002] Call Trace:\n"
                           "[    2.100003]  <TASK>\n";
  EXPECT_THAT(kernel_errors(oops),
              ::testing::ElementsAre(HasSubstr("BUG: kernel NULL"), HasSubstr("Oops: 0002"),
                                     HasSubstr("Call Trace:")));
  EXPECT_TRUE(console_has_kernel_errors("[   12.5] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2\n"));
  EXPECT_TRUE(console_has_kernel_errors("[    3.3] Kernel panic - not syncing: Attempted\n"));
}

TEST(kernel_harness, hello_module_loads_and_unloads) {
  vm_options options;
  options.files = {{.guest_path = "/tandem/tandem_hello.ko", .host_path = TANDEM_HELLO_KO}};
  options.command = R"sh(set -e
insmod /tandem/tandem_hello.ko
grep -q '^tandem_hello ' /proc/modules
dmesg | grep 'tandem_hello: loaded'
rmmod tandem_hello
! grep -q '^tandem_hello ' /proc/modules
dmesg | grep 'tandem_hello: unloaded'
)sh";
  vm_result r = run_in_vm(options);
  ASSERT_TRUE(r.exit_code.has_value()) << r.describe();
  EXPECT_EQ(*r.exit_code, 0) << r.describe();
  EXPECT_TRUE(r.booted);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.panicked);
  EXPECT_THAT(r.console, HasSubstr("tandem_hello: loaded"));
  EXPECT_THAT(r.console, HasSubstr("tandem_hello: unloaded"));
  EXPECT_FALSE(console_has_kernel_errors(r.console))
      << kernel_errors_text(r.console) << r.describe();
}

TEST(kernel_harness, exit_status_is_the_commands) {
  vm_result r = run_in_vm({.command = "echo about to exit 3\nexit 3"});
  ASSERT_TRUE(r.exit_code.has_value()) << r.describe();
  EXPECT_EQ(*r.exit_code, 3) << r.describe();
  EXPECT_EQ(r.checked_exit_code(), 3);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.console, HasSubstr("about to exit 3"));
  EXPECT_FALSE(console_has_kernel_errors(r.console)) << kernel_errors_text(r.console);
}

TEST(kernel_harness, files_and_distro_modules_reach_the_guest) {
  kernel_image image = fetch_kernel();
  ASSERT_TRUE(std::filesystem::exists(image.vmlinuz)) << image.vmlinuz;

  // virtiofs needs fuse, virtio and virtio_ring: all must come back, dependencies first.
  auto modules = fetch_kernel_modules(image, {"virtiofs"});
  std::vector<std::string> names;
  names.reserve(modules.size());
  for (const auto& m : modules) {
    names.push_back(m.stem().string());
  }
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.back(), "virtiofs");
  EXPECT_THAT(names, ::testing::IsSupersetOf({"fuse", "virtio", "virtio_ring"}));
  for (const auto& m : modules) {
    EXPECT_TRUE(std::filesystem::is_regular_file(m)) << m;
  }
  EXPECT_THAT(fetch_kernel_modules(image, {"virtiofs"}), ::testing::ContainerEq(modules));
  EXPECT_TRUE(kernel_module_is_builtin(image, "unix"));
  EXPECT_THAT(fetch_kernel_modules(image, {"unix"}), ::testing::IsEmpty());
  EXPECT_THROW(fetch_kernel_modules(image, {"tandem_no_such_module"}), std::runtime_error);

  vm_options options;
  options.modules = modules;
  options.files = {{.guest_path = "/etc/tandem/note", .content = "from the host\n"},
                   {.guest_path = "/usr/local/bin/hello-tool",
                    .content = "#!/bin/sh\necho tool says $1\n",
                    .mode = 0755}};
  options.command = R"sh(set -e
test -d /sys/module/virtiofs
grep -qw fuse /proc/filesystems
test "$(cat /etc/tandem/note)" = "from the host"
test -x /usr/local/bin/hello-tool
/usr/local/bin/hello-tool ok
)sh";
  vm_result r = run_in_vm(image, options);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.console, HasSubstr("tool says ok"));
  EXPECT_FALSE(console_has_kernel_errors(r.console)) << kernel_errors_text(r.console);
}

TEST(kernel_harness, kernel_panic_is_reported_not_hung) {
  vm_result r =
      run_in_vm({.command = "echo 1 > /proc/sys/kernel/sysrq\necho c > /proc/sysrq-trigger",
                 .timeout = std::chrono::seconds(120)});
  EXPECT_FALSE(r.exit_code.has_value()) << r.describe();
  EXPECT_TRUE(r.booted);
  EXPECT_TRUE(r.panicked) << r.describe();
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_THAT(r.error, HasSubstr("kernel panic"));
  EXPECT_TRUE(console_has_kernel_errors(r.console));
  EXPECT_THROW(r.checked_exit_code(), std::runtime_error);
}

TEST(kernel_harness, timeout_kills_the_guest) {
  vm_result r = run_in_vm({.command = "sleep 1000", .timeout = std::chrono::seconds(2)});
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_THAT(r.error, HasSubstr("timed out"));
  EXPECT_LT(r.elapsed, std::chrono::seconds(30));  // qemu's own run, not the kernel fetch
  EXPECT_THAT(r.describe(), Not(HasSubstr("exited")));
}

}  // namespace
}  // namespace tandem::lab
