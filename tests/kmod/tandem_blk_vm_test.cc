// SPDX-License-Identifier: Apache-2.0
// The kernel block shim tandem.ko under qemu: ext4 on /dev/tandem0 served by
// tandem-lab-blkserver (shim_ring), server death and re-attach, timeouts, multi-queue, removal.
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/lab/kernel.h"

namespace tandem::lab {
namespace {

// Shell helpers every guest script starts with.
constexpr const char* prelude = R"sh(set -e
export ASAN_OPTIONS=detect_leaks=0
S=/usr/local/bin/tandem-lab-blkserver
# Centiseconds since boot.
now_cs() { read up rest < /proc/uptime; echo $(( ${up%.*} * 100 + 1${up#*.} - 100 )); }
# wait_for FILE PATTERN SECONDS [PID]: PATTERN shows up in FILE while PID (if given) runs.
wait_for() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt $(($3 * 10)) ]; then echo "FAIL: no '$2' in $1 after $3 s"; cat "$1"; return 1; fi
    if [ -n "$4" ] && ! kill -0 "$4" 2>/dev/null; then
      echo "FAIL: pid $4 exited before '$2' showed up in $1"; cat "$1"; return 1
    fi
    sleep 0.1
  done
}
# gone PID SECONDS: the process ends within SECONDS.
gone() {
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt $(($2 * 10)) ]; then echo "FAIL: pid $1 still running after $2 s"; return 1; fi
    sleep 0.1
  done
}
fail() { echo "FAIL: $*"; exit 1; }
# not CMD...: fails when CMD succeeds (`! CMD` does not stop a `set -e` script).
not() { if "$@"; then fail "succeeded: $*"; fi; }
ln -sf /proc/mounts /etc/mtab
insmod /tandem/tandem.ko
test -c /dev/tandem-control
)sh";

vm_options base_options() {
  kernel_image image = fetch_kernel();
  vm_options o;
  o.modules = fetch_kernel_modules(image, {"crc32c_generic", "ext4"});
  o.files = {{.guest_path = "/tandem/tandem.ko", .host_path = TANDEM_KO}};
  auto add = [&](std::vector<guest_file> more) {
    o.files.insert(o.files.end(), more.begin(), more.end());
  };
  add(guest_binary(TANDEM_BLKSERVER, "/usr/local/bin/tandem-lab-blkserver"));
  add(guest_binary("/usr/sbin/mke2fs", "/usr/sbin/mkfs.ext4"));
  add(guest_binary("/usr/sbin/e2fsck", "/usr/sbin/e2fsck"));
  // util-linux blkdiscard (-z: WRITE_ZEROES); busybox has its own without -z.
  add(guest_binary("/usr/sbin/blkdiscard", "/usr/local/sbin/blkdiscard-z"));
  if (std::filesystem::exists("/etc/mke2fs.conf")) {
    o.files.push_back({.guest_path = "/etc/mke2fs.conf", .host_path = "/etc/mke2fs.conf"});
  }
  o.memory_mb = 1024;  // the sanitized server's shadow memory, tmpfs backing files
  o.timeout = std::chrono::seconds(240);
  return o;
}

// Substring checks on the console that print only what was missing (the console is long).
void expect_console_has(const vm_result& r, const std::string& what) {
  EXPECT_NE(r.console.find(what), std::string::npos) << "console lacks: " << what;
}

void expect_clean_run(const vm_result& r) {
  ASSERT_TRUE(r.exit_code.has_value()) << r.describe();
  EXPECT_EQ(*r.exit_code, 0) << r.describe();
  EXPECT_FALSE(console_has_kernel_errors(r.console))
      << kernel_errors_text(r.console) << r.describe();
}

TEST(tandem_blk_vm, ext4_survives_server_death_and_reattach) {
  vm_options o = base_options();
  // Device 0: 64 MiB; ext4 on the first 48 MiB, raw tests on the last 16 MiB (4 KiB block 12288).
  o.command = std::string(prelude) + R"sh(
$S --backing=/tmp/disk0.img --size=67108864 --depth=32 --max-io=131072 > /tmp/srv0.log 2>&1 &
SRV=$!
wait_for /tmp/srv0.log READY 60 $SRV
cat /tmp/srv0.log
test -b /dev/tandem0
test -c /dev/tandemc0
$S --info=0
$S --info=0 | grep -q 'state=0x1 '
grep -q 'features=0xf' /tmp/srv0.log

echo "== a second server cannot attach"
if $S --reattach=0 --backing=/tmp/disk0.img > /tmp/second.log 2>&1; then fail second attach; fi
cat /tmp/second.log
grep -q 'another server is attached' /tmp/second.log

echo "== ext4: mkfs (discards the device), write, fstrim, fsck, read back"
mkfs.ext4 -F -q -b 4096 /dev/tandem0 12288
mkdir -p /mnt
mount -t ext4 /dev/tandem0 /mnt
mkdir /mnt/dir
dd if=/dev/urandom of=/mnt/a bs=64k count=40 2>/dev/null
dd if=/dev/urandom of=/mnt/dir/b bs=4k count=301 2>/dev/null
dd if=/dev/urandom of=/mnt/dir/gone bs=1M count=4 2>/dev/null
echo small > /mnt/dir/small
sync
rm /mnt/dir/gone
dd if=/dev/urandom of=/mnt/dir/c bs=1M count=2 conv=fsync 2>/dev/null
sync
(cd /mnt && sha256sum a dir/b dir/c dir/small) > /tmp/sums
cat /tmp/sums
fstrim -v /mnt
umount /mnt
e2fsck -fn /dev/tandem0
mount -t ext4 /dev/tandem0 /mnt
(cd /mnt && sha256sum -c /tmp/sums)
umount /mnt

echo "== write zeroes and discard on the raw tail"
dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null
dd if=/dev/zero of=/tmp/zero1m bs=1M count=1 2>/dev/null
dd if=/tmp/pattern of=/dev/tandem0 bs=4k seek=12288 oflag=direct 2>/dev/null
/usr/local/sbin/blkdiscard-z -f -z -o $((48 << 20)) -l 1048576 /dev/tandem0
dd if=/dev/tandem0 of=/tmp/back bs=4k skip=12288 count=256 iflag=direct 2>/dev/null
cmp /tmp/back /tmp/zero1m
dd if=/dev/tandem0 of=/tmp/back bs=4k skip=12544 count=256 iflag=direct 2>/dev/null
dd if=/tmp/pattern of=/tmp/want bs=4k skip=256 count=256 2>/dev/null
cmp /tmp/back /tmp/want
blkdiscard -o $((49 << 20)) -l 1048576 /dev/tandem0
dd if=/dev/tandem0 of=/tmp/back bs=4k skip=12544 count=256 iflag=direct 2>/dev/null
cmp /tmp/back /tmp/zero1m
kill -USR1 $SRV
wait_for /tmp/srv0.log STATS 10
grep STATS /tmp/srv0.log
for op in reads writes fua_writes flushes discards write_zeroes; do
  grep -q "STATS.* $op=[1-9]" /tmp/srv0.log || grep -q "STATS $op=[1-9]" /tmp/srv0.log || fail "no $op"
done
grep -q 'STATS.* invalid=0 errors=0' /tmp/srv0.log

echo "== kill -9 the server during I/O"
(while dd if=/dev/zero of=/dev/tandem0 bs=4k seek=12288 count=4096 oflag=direct 2>>/tmp/dd.err; do :; done) &
LOOP=$!
sleep 1
kill -0 $LOOP
kill -9 $SRV
gone $LOOP 30
cat /tmp/dd.err
grep -q 'Input/output error' /tmp/dd.err
wait $SRV || true
t0=$(now_cs)
if dd if=/dev/tandem0 of=/dev/null bs=4k count=1 iflag=direct 2>/tmp/dd2.err; then fail read without a server; fi
t1=$(now_cs)
echo "read without a server failed after $((t1 - t0)) cs"
[ $((t1 - t0)) -lt 300 ] || fail "slow failure"
grep -q 'Input/output error' /tmp/dd2.err
$S --info=0 | grep -q 'state=0x0 '

echo "== DEL_DEV refuses while the block device is open"
exec 3</dev/tandem0
rc=0; $S --delete=0 || rc=$?
[ $rc -eq 2 ] || fail "delete with the device open: $rc"
exec 3<&-

echo "== re-attach"
$S --reattach=0 --backing=/tmp/disk0.img > /tmp/srv1.log 2>&1 &
SRV=$!
wait_for /tmp/srv1.log READY 60 $SRV
dd if=/tmp/pattern of=/dev/tandem0 bs=4k seek=12288 oflag=direct 2>/dev/null
dd if=/dev/tandem0 of=/tmp/back bs=4k skip=12288 count=1024 iflag=direct 2>/dev/null
cmp /tmp/back /tmp/pattern
mount -t ext4 /dev/tandem0 /mnt
(cd /mnt && sha256sum -c /tmp/sums)
umount /mnt
e2fsck -fn /dev/tandem0

echo "== DEL_DEV refuses while a server is attached"
rc=0; $S --delete=0 || rc=$?
[ $rc -eq 2 ] || fail "delete with a server attached: $rc"
kill -TERM $SRV
gone $SRV 30
cat /tmp/srv1.log
$S --delete=0
test ! -e /dev/tandem0
test ! -e /dev/tandemc0
rmmod tandem
not grep -q '^tandem ' /proc/modules
dmesg | grep -E 'tandem' | tail -20
echo ALL-OK
)sh";
  vm_result r = run_in_vm(o);
  expect_clean_run(r);
  expect_console_has(r, "ALL-OK");
  expect_console_has(r, "tandem0: server attached");
  expect_console_has(r, "tandem0: server detached");
  expect_console_has(r, "tandem0: deleted");
  expect_console_has(r, "tandem: unloaded");
  std::printf("guest run: %s\n", r.describe().c_str());
}

TEST(tandem_blk_vm, timeouts_multi_queue_and_parameter_checks) {
  vm_options o = base_options();
  o.cpus = 2;
  o.command = std::string(prelude) + R"sh(
echo "== ioctl and mmap argument checks"
$S --abi-checks
test ! -e /dev/tandem0
echo "== bad parameters are refused by the driver"
rc=0; $S --backing=/tmp/x.img --size=1048576 --depth=3 > /tmp/bad.log 2>&1 || rc=$?
cat /tmp/bad.log
[ $rc -eq 1 ] && grep -q 'TANDEM_BLK_IOC_ADD_DEV' /tmp/bad.log && grep -q 'Invalid argument' /tmp/bad.log
rc=0; $S --backing=/tmp/x.img --size=1000 > /tmp/bad.log 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q 'Invalid argument' /tmp/bad.log
test ! -e /dev/tandem0

echo "== a request the server sits on times out; its late completion is dropped"
# Device 1: one tag, 1 s timeout; the server holds the first request at 1 MiB for 5 s.
dd if=/dev/urandom of=/tmp/blk bs=4k count=1 2>/dev/null
dd if=/dev/zero of=/tmp/d1.img bs=1M count=16 2>/dev/null
dd if=/tmp/blk of=/tmp/d1.img bs=4k seek=256 conv=notrunc 2>/dev/null
$S --backing=/tmp/d1.img --dev-id=1 --depth=1 --timeout-ms=1000 --delay-offset=1048576 --delay-ms=5000 > /tmp/srv1.log 2>&1 &
SRV=$!
wait_for /tmp/srv1.log READY 60 $SRV
t0=$(now_cs)
if dd if=/dev/tandem1 of=/tmp/r bs=4k skip=256 count=1 iflag=direct 2>/tmp/e1; then fail "held read succeeded"; fi
t1=$(now_cs)
echo "held read failed after $((t1 - t0)) cs"
cat /tmp/e1
[ $((t1 - t0)) -ge 90 ] && [ $((t1 - t0)) -lt 450 ] || fail "timeout took $((t1 - t0)) cs"
grep -q DELAYED /tmp/srv1.log
# The only tag is still quarantined: this read waits for it, then fails once the quarantine
# (one more timeout) ends, well before the late completion.
if dd if=/dev/tandem1 of=/dev/null bs=4k count=1 iflag=direct 2>/tmp/e2; then fail "read on a quarantined tag succeeded"; fi
t2=$(now_cs)
echo "read on the quarantined tag failed after $((t2 - t1)) cs"
not grep -q LATE /tmp/srv1.log
wait_for /tmp/srv1.log LATE 15
grep LATE /tmp/srv1.log
dd if=/dev/tandem1 of=/tmp/r bs=4k skip=256 count=1 iflag=direct 2>/dev/null
cmp /tmp/r /tmp/blk
dd if=/dev/urandom of=/tmp/blk2 bs=4k count=8 2>/dev/null
dd if=/tmp/blk2 of=/dev/tandem1 bs=4k seek=100 oflag=direct 2>/dev/null
dd if=/dev/tandem1 of=/tmp/r2 bs=4k skip=100 count=8 iflag=direct 2>/dev/null
cmp /tmp/r2 /tmp/blk2
kill -TERM $SRV
gone $SRV 30
$S --delete=1
dmesg | grep -E 'tandem1: queue 0 tag 0 seq [0-9]+ timed out'

echo "== two queues, two CPUs, killed and re-attached under load"
$S --backing=/tmp/d2.img --size=33554432 --dev-id=2 --queues=2 --depth=16 > /tmp/srv2.log 2>&1 &
SRV=$!
wait_for /tmp/srv2.log 'READY dev=2 queues=2' 60 $SRV
dd if=/dev/urandom of=/tmp/p0 bs=1M count=2 2>/dev/null
dd if=/dev/urandom of=/tmp/p1 bs=1M count=2 2>/dev/null
taskset -c 0 dd if=/tmp/p0 of=/dev/tandem2 bs=16k oflag=direct 2>/dev/null &
A=$!
taskset -c 1 dd if=/tmp/p1 of=/dev/tandem2 bs=16k seek=1024 oflag=direct 2>/dev/null &
B=$!
wait $A
wait $B
dd if=/dev/tandem2 of=/tmp/r0 bs=16k count=128 iflag=direct 2>/dev/null
dd if=/dev/tandem2 of=/tmp/r1 bs=16k skip=1024 count=128 iflag=direct 2>/dev/null
cmp /tmp/r0 /tmp/p0
cmp /tmp/r1 /tmp/p1
(while taskset -c 0 dd if=/dev/tandem2 of=/dev/null bs=64k count=256 iflag=direct 2>>/tmp/q0.err; do :; done) &
A=$!
(while taskset -c 1 dd if=/dev/zero of=/dev/tandem2 bs=64k seek=256 count=128 oflag=direct 2>>/tmp/q1.err; do :; done) &
B=$!
sleep 1
kill -9 $SRV
gone $A 30
gone $B 30
grep -q 'Input/output error' /tmp/q0.err
grep -q 'Input/output error' /tmp/q1.err
wait $SRV || true
$S --reattach=2 --backing=/tmp/d2.img > /tmp/srv3.log 2>&1 &
SRV=$!
wait_for /tmp/srv3.log READY 60 $SRV
dd if=/dev/tandem2 of=/tmp/r0 bs=16k count=128 iflag=direct 2>/dev/null
cmp /tmp/r0 /tmp/p0
kill -TERM $SRV
gone $SRV 30
grep STATS /tmp/srv3.log
$S --delete=2
rmmod tandem
not grep -q '^tandem ' /proc/modules
echo ALL-OK
)sh";
  vm_result r = run_in_vm(o);
  expect_clean_run(r);
  expect_console_has(r, "ALL-OK");
  expect_console_has(r, "ABI-CHECKS OK");
  EXPECT_TRUE(
      std::regex_search(r.console, std::regex("tandem1: queue 0 tag 0 seq [0-9]+ timed out")))
      << r.describe();
  std::printf("guest run: %s\n", r.describe().c_str());
}

}  // namespace
}  // namespace tandem::lab
