// SPDX-License-Identifier: Apache-2.0
// tandem-replicator serving a mirrored volume as /dev/tandem0 through tandem.ko, under qemu: two
// replicators in the guest (node1 with --kernel-devices, node2 its peer over loopback), ext4 on
// the device, digests and fsck, the primary's replicator killed during I/O (errors, no hang),
// a restarted replicator taking the device over, a switchover to node2 with identical files,
// a detach that deletes the device, and rmmod.
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/lab/kernel.h"

namespace tandem::lab {
namespace {

constexpr const char* config = R"yaml(mirrors:
  transport: {port: socket, keepalive: 200ms, dead_peer: 3s}
  volumes:
    - name: db
      data: /data/n1.img
      meta: /data/n1.meta
      size: 64MiB
      replicas:
        - {node: node1, address: 127.0.0.1, port: 7790, data: /data/n1.img, meta: /data/n1.meta}
        - {node: node2, address: 127.0.0.1, port: 7791, data: /data/n2.img, meta: /data/n2.meta}
)yaml";

constexpr const char* script = R"sh(set -e
export ASAN_OPTIONS=detect_leaks=0
R=/usr/local/bin/tandem-replicator
C=/usr/local/bin/tandemctl
fail() { echo "FAIL: $*"; exit 1; }
wait_for() {  # FILE PATTERN SECONDS [PID]
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le $(($3 * 10)) ] || { cat "$1"; fail "no '$2' in $1 after $3 s"; }
    if [ -n "$4" ] && ! kill -0 "$4" 2>/dev/null; then cat "$1"; fail "pid $4 exited"; fi
    sleep 0.1
  done
}
gone() {  # PID SECONDS
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le $(($2 * 10)) ] || fail "pid $1 still running after $2 s"
    sleep 0.1
  done
}
# status NODE PATTERN SECONDS: `tandemctl mirror status db` on NODE shows PATTERN.
status() {
  i=0
  while ! $C mirror status db -r /run/$1.sock > /tmp/st 2>&1 || ! grep -q "$2" /tmp/st; do
    i=$((i + 1))
    [ $i -le $(($3 * 10)) ] || { cat /tmp/st; fail "$1: no '$2' after $3 s"; }
    sleep 0.1
  done
}
K=0
start() {  # NODE [ARGS]: starts a replicator, sets PID_<NODE> and LOG_<NODE> (a new log each time)
  n=$1; shift
  K=$((K + 1))
  $R --config /etc/tandem/mirrors.yaml --node $n --socket /run/$n.sock "$@" > /tmp/$n.$K.log 2>&1 &
  eval PID_$n=$!
  eval LOG_$n=/tmp/$n.$K.log
  wait_for /tmp/$n.$K.log "READY /run/$n.sock" 120 $!
}
ln -sf /proc/mounts /etc/mtab
ip link set lo up
insmod /tandem/tandem.ko
mkdir -p /data /mnt /run
truncate -s 64M /data/n1.img /data/n2.img

echo "== two replicators, node1 serving /dev/tandem0"
start node1 --kernel-devices
start node2
for n in node1 node2; do $C mirror create db -r /run/$n.sock; $C mirror attach db -r /run/$n.sock; done
test -b /dev/tandem0
$C mirror promote db --force -r /run/node1.sock
status node2 'disk:       up_to_date' 120
status node2 'connection: connected' 60

echo "== ext4 on /dev/tandem0 (its first 48 MiB), replicated"
mkfs.ext4 -F -q -b 4096 /dev/tandem0 12288
mount -t ext4 /dev/tandem0 /mnt
mkdir /mnt/dir
dd if=/dev/urandom of=/mnt/a bs=64k count=64 2>/dev/null
dd if=/dev/urandom of=/mnt/dir/b bs=4k count=301 conv=fsync 2>/dev/null
echo small > /mnt/dir/small
sync
(cd /mnt && sha256sum a dir/b dir/small) > /tmp/sums
fstrim /mnt || true
umount /mnt
e2fsck -fn /dev/tandem0
$C mirror status db --json -r /run/node1.sock > /tmp/st.json
grep -q '"device": "/dev/tandem0"' /tmp/st.json
for k in writes flushes reads discards; do
  grep -A30 '"kernel"' /tmp/st.json | grep -q "\"$k\": [1-9]" || { cat /tmp/st.json; fail "no $k"; }
done
grep -A30 '"kernel"' /tmp/st.json | grep -q '"errors": 0'

echo "== node1's replicator killed during I/O"
(while dd if=/dev/zero of=/dev/tandem0 bs=64k seek=768 count=256 oflag=direct 2>>/tmp/dd.err; do :; done) &
LOOP=$!
sleep 2
kill -0 $LOOP
kill -9 $PID_node1
gone $LOOP 30
grep -q 'Input/output error' /tmp/dd.err
if dd if=/dev/tandem0 of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then fail "read without a replicator"; fi

echo "== restarted, it takes /dev/tandem0 over"
start node1 --kernel-devices
$C mirror attach db -r /run/node1.sock
grep -q 'served as /dev/tandem0' $LOG_node1
$C mirror promote db -r /run/node1.sock || $C mirror promote db --force -r /run/node1.sock
status node1 'role:       primary' 30
dd if=/dev/tandem0 of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null
status node2 'connection: connected' 60
status node2 'disk:       up_to_date' 120
e2fsck -fn /dev/tandem0
mount -t ext4 /dev/tandem0 /mnt
(cd /mnt && sha256sum -c /tmp/sums)
umount /mnt

echo "== detach refused while mounted; switchover to node2"
mount -t ext4 /dev/tandem0 /mnt
cp -r /tmp/sums /mnt/sums
dd if=/dev/urandom of=/mnt/c bs=64k count=32 conv=fsync 2>/dev/null
(cd /mnt && sha256sum c) > /tmp/sums2
if $C mirror detach db -r /run/node1.sock 2>/tmp/detach.err; then fail "detach while mounted"; fi
cat /tmp/detach.err
grep -q '/dev/tandem0 is open' /tmp/detach.err
umount /mnt
$C mirror demote db -r /run/node1.sock
$C mirror detach db -r /run/node1.sock
test ! -e /dev/tandem0
i=0
until $C mirror promote db -r /run/node2.sock; do
  i=$((i + 1)); [ $i -le 50 ] || fail "node2 not promoted"; sleep 0.2
done
$C mirror status db -r /run/node2.sock

echo "== node2's image holds the file system"
kill -TERM $PID_node2
gone $PID_node2 30
kill -TERM $PID_node1
gone $PID_node1 30
e2fsck -fn /data/n2.img
mount -o loop,ro -t ext4 /data/n2.img /mnt
(cd /mnt && sha256sum -c /tmp/sums && sha256sum -c /tmp/sums2)
umount /mnt
rmmod tandem
grep -q 'shutting down' $LOG_node1
echo ALL-OK
)sh";

TEST(replicator_vm, kernel_device_mirrors_ext4_survives_a_crash_and_switches_over) {
  kernel_image image = fetch_kernel();
  vm_options o;
  o.modules = fetch_kernel_modules(image, {"crc32c_generic", "ext4", "loop"});
  o.files = {{.guest_path = "/tandem/tandem.ko", .host_path = TANDEM_KO},
             {.guest_path = "/etc/tandem/mirrors.yaml", .content = config}};
  auto add = [&](std::vector<guest_file> more) {
    o.files.insert(o.files.end(), more.begin(), more.end());
  };
  add(guest_binary(TANDEM_REPLICATOR, "/usr/local/bin/tandem-replicator"));
  add(guest_binary(TANDEMCTL, "/usr/local/bin/tandemctl"));
  add(guest_binary("/usr/sbin/mke2fs", "/usr/sbin/mkfs.ext4"));
  add(guest_binary("/usr/sbin/e2fsck", "/usr/sbin/e2fsck"));
  o.memory_mb = 2048;  // two sanitized replicators, tmpfs images
  o.cpus = 2;
  o.timeout = std::chrono::seconds(420);
  o.command = script;
  vm_result r = run_in_vm(image, o);
  ASSERT_TRUE(r.exit_code.has_value()) << r.describe();
  EXPECT_EQ(*r.exit_code, 0) << r.describe();
  EXPECT_NE(r.console.find("ALL-OK"), std::string::npos) << r.describe();
  EXPECT_FALSE(console_has_kernel_errors(r.console))
      << kernel_errors_text(r.console) << r.describe();
  std::printf("guest run: %s\n", r.describe().c_str());
}

}  // namespace
}  // namespace tandem::lab
