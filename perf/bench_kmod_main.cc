// SPDX-License-Identifier: Apache-2.0
// The kernel shim benchmark, inside one qemu guest (TCG: absolute figures are an emulator's,
// the ratios between paths measured in the same guest are what count). fio against the same
// backing store (files on the guest's tmpfs) through:
//   loop        a loop device on a backing file: the kernel's own file-backed block device, the
//               ceiling;
//   shim        /dev/tandem0 served by tandem-lab-blkserver (pread / pwrite on a file): the
//               shim's rings and copies, no replication;
//   replicated  /dev/tandem0 served by tandem-replicator (--kernel-devices), a sync mirror to a
//               second replicator in the guest over loopback.
// Random writes 64 KiB QD32 and 4 KiB QD1, random reads 64 KiB QD32; one JSON line per result
// with ratio_to_loop and, for replicated, ratio_to_shim. TANDEM_BENCH_SECONDS: each fio run's
// length (default 5).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/lab/kernel.h"

namespace {

using namespace tandem;
using json = nlohmann::json;

constexpr const char* config = R"yaml(mirrors:
  transport: {port: socket}
  volumes:
    - name: db
      data: /data/n1.img
      meta: /data/n1.meta
      size: 256MiB
      replicas:
        - {node: node1, address: 127.0.0.1, port: 7790, data: /data/n1.img, meta: /data/n1.meta}
        - {node: node2, address: 127.0.0.1, port: 7791, data: /data/n2.img, meta: /data/n2.meta}
)yaml";

// The guest prints each fio JSON line prefixed with "FIOJ <path> <shape>: ".
constexpr const char* script = R"sh(set -e
fail() { echo "FAIL: $*"; exit 1; }
wait_for() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -le $(($3 * 10)) ] || { cat "$1"; fail "no '$2' in $1"; }
    sleep 0.1
  done
}
run_fio() {  # PATH-NAME DEVICE
  for shape in "randwrite 65536 32" "randwrite 4096 1" "randread 65536 32"; do
    set -- "$1" "$2" $shape
    /usr/local/bin/fio --name=b --thread --filename=$2 --rw=$3 --bs=$4 --iodepth=$5 --ioengine=libaio \
        --direct=1 --size=256M --time_based=1 --runtime=$SECONDS_EACH --randrepeat=0 \
        --output-format=json --output=/tmp/fio.json > /dev/null
    tr -d '\n' < /tmp/fio.json | sed "s/^/FIOJ $1 $3-$4-$5: /"
    echo
  done
}
ln -sf /proc/mounts /etc/mtab
ip link set lo up
insmod /tandem/tandem.ko
mkdir -p /data /run
truncate -s 256M /data/raw.img /data/n1.img /data/n2.img
dd if=/dev/urandom of=/data/raw.img bs=1M count=256 2>/dev/null

echo "== loop"
L=$(losetup -f)
losetup $L /data/raw.img
run_fio loop $L
losetup -d $L

echo "== shim (tandem-lab-blkserver)"
S=/usr/local/bin/tandem-lab-blkserver
$S --backing=/data/raw.img --size=268435456 --depth=64 --max-io=524288 > /tmp/srv.log 2>&1 &
SRV=$!
wait_for /tmp/srv.log READY 60
run_fio shim /dev/tandem0
kill -TERM $SRV; wait $SRV || true
$S --delete=0

echo "== replicated (tandem-replicator pair)"
R=/usr/local/bin/tandem-replicator
C=/usr/local/bin/tandemctl
$R --config /etc/tandem/mirrors.yaml --node node1 --socket /run/n1.sock --kernel-devices > /tmp/r1.log 2>&1 &
$R --config /etc/tandem/mirrors.yaml --node node2 --socket /run/n2.sock > /tmp/r2.log 2>&1 &
wait_for /tmp/r1.log READY 120
wait_for /tmp/r2.log READY 120
for s in n1 n2; do $C mirror create db -r /run/$s.sock; $C mirror attach db -r /run/$s.sock; done
$C mirror promote db --force -r /run/n1.sock
i=0
until $C mirror status db -r /run/n2.sock | grep -q 'disk:       up_to_date'; do
  i=$((i + 1)); [ $i -le 1200 ] || fail "no initial sync"; sleep 0.1
done
run_fio replicated /dev/tandem0
$C mirror status db -r /run/n1.sock
echo BENCH-DONE
)sh";

int run() {
  const char* sec = std::getenv("TANDEM_BENCH_SECONDS");
  const int seconds = sec && *sec ? std::max(1, std::atoi(sec)) : 5;
  lab::kernel_image image = lab::fetch_kernel();
  lab::vm_options o;
  o.modules = lab::fetch_kernel_modules(image, {"loop"});
  o.files = {{.guest_path = "/tandem/tandem.ko", .host_path = TANDEM_KO},
             {.guest_path = "/etc/tandem/mirrors.yaml", .content = config}};
  auto add = [&](std::vector<lab::guest_file> more) {
    o.files.insert(o.files.end(), more.begin(), more.end());
  };
  add(lab::guest_binary(TANDEM_REPLICATOR, "/usr/local/bin/tandem-replicator"));
  add(lab::guest_binary(TANDEMCTL, "/usr/local/bin/tandemctl"));
  add(lab::guest_binary(TANDEM_BLKSERVER, "/usr/local/bin/tandem-lab-blkserver"));
  add(lab::guest_binary("/usr/bin/fio", "/usr/local/bin/fio"));
  o.memory_mb = 2048;
  o.cpus = 2;
  o.timeout = std::chrono::seconds(300 + 9 * 3 * seconds);
  o.command = "SECONDS_EACH=" + std::to_string(seconds) + "\n" + script;
  const lab::vm_result r = lab::run_in_vm(image, o);
  if (!r.ok()) throw std::runtime_error("the guest run failed: " + r.describe());

  // path -> shape -> (MiB/s, p50 us)
  std::map<std::string, std::map<std::string, std::pair<double, double>>> res;
  std::istringstream in(r.console);
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("FIOJ ");
    if (at == std::string::npos) continue;
    std::istringstream head(line.substr(at + 5));
    std::string path, shape;
    head >> path >> shape;
    if (shape.empty() || shape.back() != ':') continue;
    shape.pop_back();
    const json j = json::parse(line.substr(line.find('{')));
    const bool reads = shape.rfind("randread", 0) == 0;
    const json& side = j["jobs"][0][reads ? "read" : "write"];
    res[path][shape] = {side["bw_bytes"].get<double>() / (1 << 20),
                        side["clat_ns"]["percentile"]["50.000000"].get<double>() / 1000};
  }
  if (res.size() != 3) throw std::runtime_error("missing fio results:\n" + r.describe());
  for (const auto& [path, shapes] : res) {
    for (const auto& [shape, v] : shapes) {
      const auto& loop = res["loop"][shape];
      json line = {{"bench", "kmod"},
                   {"path", path},
                   {"shape", shape},
                   {"mib_s", v.first},
                   {"p50_us", v.second},
                   {"ratio_to_loop", loop.first > 0 ? v.first / loop.first : 0.0},
                   {"where", "qemu TCG guest, 2 vCPUs"}};
      if (path == "replicated" && res["shim"].count(shape)) {
        const auto& shim = res["shim"][shape];
        line["ratio_to_shim"] = shim.first > 0 ? v.first / shim.first : 0.0;
      }
      std::printf("%s\n", line.dump().c_str());
    }
  }
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kmod: %s\n", e.what());
    return 1;
  }
}
