// SPDX-License-Identifier: Apache-2.0
// mirrors_config (control/config/mirrors_config.h): the replicator's file alone or inside a cluster
// file, defaults, and each kind of volume mistake with its location.
#include "control/config/mirrors_config.h"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/config/config_json.h"
#include "tests/unit/config/test_util.h"

namespace tandem::ctl::config {
namespace {

using namespace std::chrono_literals;
using test::has_problem;
using test::only_error;

constexpr std::string_view mirrors_only = R"(mirrors:
  transport:
    port: dpdk
    dpdk: {eal_args: [--no-huge, --no-pci]}
    key_file: /etc/tandem/mirror.key
    rate_limit: 1Gbit
  volumes:
    - name: db
      data: /dev/vdb
      meta: /var/lib/tandem/db.meta
      replicas:
        - {node: x, address: 10.0.0.1, dpdk_device: "0000:03:00.0"}
        - {node: y, address: 10.0.0.2, port: 7791, dpdk_device: "net_af_packet0,iface=eth1", mtu: 9000}
)";

mirrors_load_result load_mirrors(std::string_view text) {
  return parse_mirrors_text(text, "mirrors.yaml");
}

std::string edit(std::string_view from, std::string_view to,
                 std::string text = std::string(mirrors_only)) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(mirrors_config, mirrors_only_file_loads_with_defaults) {
  auto r = load_mirrors(mirrors_only);
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  EXPECT_TRUE(r.diag.all().empty()) << r.diag.to_string();
  const mirrors_config& m = r.config;
  EXPECT_TRUE(m.present);
  EXPECT_EQ(m.transport.port, mirror_port::dpdk);
  EXPECT_EQ(m.transport.eal_args, (std::vector<std::string>{"--no-huge", "--no-pci"}));
  EXPECT_EQ(m.transport.key_file, "/etc/tandem/mirror.key");
  EXPECT_EQ(m.transport.keepalive, 200ms);
  EXPECT_EQ(m.transport.dead_peer, 3s);
  EXPECT_EQ(m.transport.rate_limit, 125'000'000u);
  EXPECT_EQ(m.transport.buffer, 32u << 20);
  EXPECT_EQ(m.control_socket, "/run/tandem/replicator.sock");
  ASSERT_EQ(m.volumes.size(), 1u);
  const mirror_volume& v = m.volumes[0];
  EXPECT_EQ(v.name, "db");
  EXPECT_EQ(v.size, 0u);
  EXPECT_EQ(v.block_size, 4096u);
  EXPECT_EQ(v.mode, mirror_mode::sync);
  EXPECT_EQ(v.bitmap_granularity, 64u << 10);
  EXPECT_EQ(v.al_extent, 4u << 20);
  EXPECT_EQ(v.al_slots, 1000u);
  EXPECT_EQ(v.resync_rate, 200u << 20);
  EXPECT_EQ(v.resync_min_rate, 10u << 20);
  EXPECT_FALSE(v.resync_checksum);
  EXPECT_EQ(v.split_brain, "disconnect");
  EXPECT_EQ(v.compression, "none");
  ASSERT_EQ(v.replicas.size(), 2u);
  EXPECT_EQ(v.replicas[0].port, 7790);
  EXPECT_EQ(v.replicas[1].port, 7791);
  EXPECT_EQ(v.replicas[0].dpdk_device, "0000:03:00.0");
  EXPECT_EQ(v.replicas[0].mtu, 1500u);
  EXPECT_EQ(v.replicas[1].dpdk_device, "net_af_packet0,iface=eth1");
  EXPECT_EQ(v.replicas[1].mtu, 9000u);
  EXPECT_EQ(v.data_on("y"), "/dev/vdb");
  EXPECT_EQ(m.find_volume("db"), &v);
  EXPECT_EQ(m.find_volume("nope"), nullptr);
}

TEST(mirrors_config, cluster_file_loads_too_and_checks_nodes) {
  auto r = parse_mirrors_file(std::string(TANDEM_EXAMPLES_DIR) + "/cluster.yaml");
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  ASSERT_EQ(r.config.volumes.size(), 1u);
  EXPECT_EQ(r.config.volumes[0].data_on("node-b"), "/dev/vdc");
  EXPECT_EQ(r.config.volumes[0].data_on("node-a"), "/dev/vdb");
  auto alone = parse_mirrors_file(std::string(TANDEM_EXAMPLES_DIR) + "/mirrors.yaml");
  EXPECT_TRUE(alone.ok()) << alone.diag.to_string();
  EXPECT_NO_THROW((void)load_mirrors_file(std::string(TANDEM_EXAMPLES_DIR) + "/mirrors.yaml"));

  // In a cluster file a replica's node must be a cluster node.
  const std::string cluster = std::string(test::minimal_cluster) + R"(mirrors:
  volumes:
    - name: db
      data: /dev/vdb
      meta: /m
      replicas:
        - {node: a, address: 10.0.1.1}
        - {node: bb, address: 10.0.1.2}
)";
  auto bad = load_mirrors(cluster);
  EXPECT_TRUE(only_error(bad.diag,
                         "mirrors.yaml:21:18: mirrors.volumes[0].replicas[1].node: "
                         "unknown node \"bb\" (did you mean \"b\"?)"));
  auto no_section = load_mirrors(test::minimal_cluster);
  EXPECT_TRUE(only_error(no_section.diag,
                         "mirrors.yaml: the cluster file has no mirrors: "
                         "section"));
}

TEST(mirrors_config, mirrors_only_file_refuses_other_keys) {
  auto r = load_mirrors(std::string("mirror:\n") + std::string(mirrors_only).substr(8));
  EXPECT_TRUE(has_problem(r.diag,
                          "mirrors.yaml:1:1: unknown key \"mirror\" (did you mean "
                          "\"mirrors\"?)"));
  EXPECT_TRUE(has_problem(r.diag, "mirrors.yaml:1:1: missing required key \"mirrors\""));
  EXPECT_THROW((void)load_mirrors_file("/nonexistent/mirrors.yaml"), config_error);
}

TEST(mirrors_config, bad_volume_name) {
  auto r = load_mirrors(edit("name: db", "name: Data.Base"));
  EXPECT_TRUE(only_error(r.diag,
                         "mirrors.yaml:8:13: mirrors.volumes[0].name: \"Data.Base\" is "
                         "not a valid volume name: 1 to 32 of a-z, 0-9, '_' and '-'"));
}

TEST(mirrors_config, duplicate_volume_name_and_paths) {
  auto r = load_mirrors(std::string(mirrors_only) + R"(    - name: db
      data: /dev/vdb
      meta: /var/lib/tandem/db2.meta
      replicas:
        - {node: x, address: 10.0.0.1, port: 7792, dpdk_device: net_memif1}
        - {node: y, address: 10.0.0.2, port: 7793, dpdk_device: net_memif1}
)");
  EXPECT_TRUE(has_problem(r.diag,
                          "mirrors.yaml:14:13: mirrors.volumes[1].name: volume name "
                          "\"db\" is used twice (first on line 8)"));
  EXPECT_TRUE(has_problem(r.diag,
                          "mirrors.yaml:15:13: mirrors.volumes[1].data: /dev/vdb on node "
                          "x is already used by volume db (data)"));
  EXPECT_TRUE(has_problem(r.diag,
                          "mirrors.yaml:15:13: mirrors.volumes[1].data: /dev/vdb on node "
                          "y is already used by volume db (data)"));
  EXPECT_EQ(r.diag.error_count(), 3u) << r.diag.to_string();
}

TEST(mirrors_config, duplicate_replica_port) {
  auto r = load_mirrors(
      edit("{node: y, address: 10.0.0.2, port: 7791,", "{node: y, address: 10.0.0.1, port: 7790,"));
  EXPECT_TRUE(only_error(r.diag,
                         "mirrors.yaml:13:46: mirrors.volumes[0].replicas[1].port: "
                         "10.0.0.1 port 7790 is already used by node x of volume db; "
                         "every replica needs its own address and port"));
}

TEST(mirrors_config, at_least_two_replicas) {
  auto r =
      load_mirrors(edit("        - {node: y, address: 10.0.0.2, port: 7791, dpdk_device: "
                        "\"net_af_packet0,iface=eth1\", "
                        "mtu: 9000}\n",
                        ""));
  EXPECT_TRUE(only_error(r.diag,
                         "mirrors.yaml:12:9: mirrors.volumes[0].replicas: a mirrored "
                         "volume needs at least 2 replicas, found 1"));
  auto twice = load_mirrors(edit("{node: y,", "{node: x,"));
  EXPECT_TRUE(only_error(twice.diag,
                         "mirrors.yaml:13:18: mirrors.volumes[0].replicas[1].node: "
                         "node \"x\" holds volume \"db\" twice"));
}

TEST(mirrors_config, sizes_and_geometry) {
  auto size = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                "      meta: /var/lib/tandem/db.meta\n      size: 10G\n"));
  EXPECT_TRUE(only_error(size.diag,
                         "mirrors.yaml:11:13: mirrors.volumes[0].size: \"10G\": \"G\" "
                         "is ambiguous, write GiB (powers of 1024) or GB (powers of "
                         "1000)"));
  auto odd = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                               "      meta: /var/lib/tandem/db.meta\n      size: 10000\n"
                               "      block_size: 512\n"));
  EXPECT_TRUE(only_error(odd.diag,
                         "mirrors.yaml:11:13: mirrors.volumes[0].size: 10000 is not a "
                         "multiple of the block size (512)"));
  auto bs = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                              "      meta: /var/lib/tandem/db.meta\n      block_size: 1024\n"));
  EXPECT_TRUE(only_error(bs.diag,
                         "mirrors.yaml:11:19: mirrors.volumes[0].block_size: 1KiB is not "
                         "a supported block size: 512 or 4096"));
  auto gran = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                "      meta: /var/lib/tandem/db.meta\n"
                                "      bitmap_granularity: 48KiB\n"));
  EXPECT_TRUE(only_error(gran.diag,
                         "mirrors.yaml:11:27: mirrors.volumes[0].bitmap_granularity: "
                         "\"48KiB\" is not a power of two from 4KiB to 16MiB (e.g. "
                         "64KiB)"));
  auto rate = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                "      meta: /var/lib/tandem/db.meta\n"
                                "      resync: {rate: 5MiB}\n"));
  EXPECT_TRUE(only_error(rate.diag,
                         "mirrors.yaml:11:22: mirrors.volumes[0].resync.rate: min_rate (10MiB) "
                         "exceeds rate (5MiB)"));
  auto ok = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                              "      meta: /var/lib/tandem/db.meta\n      size: 1.5GiB\n"
                              "      mode: async\n      activity_log: {extent: 1MiB, slots: 257}\n"
                              "      resync: {rate: 0, min_rate: 1Gbit, checksum: true}\n"
                              "      split_brain: discard-younger-primary\n"
                              "      compression: igzip\n"
                              "      async: {queue: 256MiB}\n"));
  ASSERT_TRUE(ok.ok()) << ok.diag.to_string();
  EXPECT_EQ(ok.config.volumes[0].async_queue, 256u << 20);
  auto small_queue = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                       "      meta: /var/lib/tandem/db.meta\n"
                                       "      async: {queue: 1MiB}\n"));
  EXPECT_NE(small_queue.diag.to_string().find(
                "mirrors.volumes[0].async.queue: 1MiB is outside 2MiB..64GiB"),
            std::string::npos)
      << small_queue.diag.to_string();
  EXPECT_TRUE(ok.config.volumes[0].resync_checksum);
  EXPECT_EQ(ok.config.volumes[0].split_brain, "discard-younger-primary");
  EXPECT_EQ(ok.config.volumes[0].compression, "igzip");
  auto policy = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                  "      meta: /var/lib/tandem/db.meta\n"
                                  "      split_brain: merge\n"));
  EXPECT_FALSE(policy.ok());
  EXPECT_NE(policy.diag.to_string().find("mirrors.volumes[0].split_brain"), std::string::npos)
      << policy.diag.to_string();
  EXPECT_EQ(ok.config.volumes[0].size, 3ull << 29);
  EXPECT_EQ(ok.config.volumes[0].mode, mirror_mode::async);
  EXPECT_EQ(ok.config.volumes[0].al_slots, 257u);
  auto bad = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                               "      meta: /var/lib/tandem/db.meta\n"
                               "      resync: {checksum: sometimes}\n"));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.diag.to_string().find("mirrors.volumes[0].resync.checksum"), std::string::npos)
      << bad.diag.to_string();
}

// The async history file: a volume's path and size, a replica's own path, the checks.
TEST(mirrors_config, async_history) {
  auto ok =
      load_mirrors(edit("address: 10.0.0.2,", "address: 10.0.0.2, history: /srv/db.history,",
                        edit("      meta: /var/lib/tandem/db.meta\n",
                             "      meta: /var/lib/tandem/db.meta\n      mode: async\n"
                             "      async: {queue: 8MiB, history: /var/lib/tandem/db.history, "
                             "history_size: 4GiB}\n")));
  ASSERT_TRUE(ok.ok()) << ok.diag.to_string();
  const mirror_volume& v = ok.config.volumes[0];
  EXPECT_EQ(v.async_history, "/var/lib/tandem/db.history");
  EXPECT_EQ(v.async_history_size, 4ull << 30);
  EXPECT_EQ(v.history_on("x"), "/var/lib/tandem/db.history");
  EXPECT_EQ(v.history_on("y"), "/srv/db.history");
  const auto j = to_json(ok.config);
  EXPECT_EQ(j["volumes"][0]["async"]["history"], "/var/lib/tandem/db.history") << j.dump();
  EXPECT_EQ(j["volumes"][0]["async"]["history_size"], "4GiB") << j.dump();
  EXPECT_EQ(j["volumes"][0]["replicas"][1]["history"], "/srv/db.history") << j.dump();

  auto small = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                 "      meta: /var/lib/tandem/db.meta\n      mode: async\n"
                                 "      async: {history: /h, history_size: 1MiB}\n"));
  EXPECT_NE(small.diag.to_string().find("mirrors.volumes[0].async.history_size: 1MiB is outside "
                                        "2MiB..16TiB"),
            std::string::npos)
      << small.diag.to_string();
  auto sync = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                "      meta: /var/lib/tandem/db.meta\n"
                                "      async: {history: /var/lib/tandem/db.history}\n"));
  EXPECT_NE(sync.diag.to_string().find("a history file is for mode: async"), std::string::npos)
      << sync.diag.to_string();
  auto clash = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                 "      meta: /var/lib/tandem/db.meta\n      mode: async\n"
                                 "      async: {history: /var/lib/tandem/db.meta}\n"));
  EXPECT_NE(clash.diag.to_string().find("is already used by volume db (meta)"), std::string::npos)
      << clash.diag.to_string();
}

TEST(mirrors_config, transport_rules) {
  auto r = load_mirrors(edit("    rate_limit: 1Gbit\n",
                             "    rate_limit: 1Gbit\n    keepalive: 1s\n    dead_peer: 2s\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "mirrors.yaml:8:16: mirrors.transport.dead_peer: 2s must be more "
                         "than twice keepalive (1s), or one lost keepalive drops the "
                         "link"));
  auto port = load_mirrors(edit("port: dpdk", "port: rdma"));
  EXPECT_TRUE(only_error(port.diag,
                         "mirrors.yaml:3:11: mirrors.transport.port: \"rdma\" is not "
                         "one of socket or dpdk"));
  auto ignored = load_mirrors(edit("port: dpdk", "port: socket"));
  ASSERT_TRUE(ignored.ok());
  EXPECT_TRUE(has_problem(ignored.diag,
                          "mirrors.yaml:4:11: warning: mirrors.transport.dpdk: "
                          "ignored: transport.port is socket"));
  EXPECT_TRUE(has_problem(ignored.diag,
                          "mirrors.yaml:13:99: warning: mirrors.volumes[0].replicas[1].mtu: "
                          "ignored: transport.port is socket"));
}

// transport.buffer: each volume's send and receive ring (most of an attached volume's memory).
TEST(mirrors_config, transport_buffer) {
  auto small =
      load_mirrors(edit("    rate_limit: 1Gbit\n", "    rate_limit: 1Gbit\n    buffer: 4MiB\n"));
  ASSERT_TRUE(small.ok()) << small.diag.to_string();
  EXPECT_EQ(small.config.transport.buffer, 4u << 20);
  EXPECT_EQ(to_json(small.config)["transport"]["buffer"], "4MiB");
  auto tiny =
      load_mirrors(edit("    rate_limit: 1Gbit\n", "    rate_limit: 1Gbit\n    buffer: 1MiB\n"));
  EXPECT_TRUE(only_error(tiny.diag,
                         "mirrors.yaml:7:13: mirrors.transport.buffer: 1MiB is outside 2MiB..1GiB "
                         "(each ring holds whole messages of up to 1MiB)"));
  auto huge =
      load_mirrors(edit("    rate_limit: 1Gbit\n", "    rate_limit: 1Gbit\n    buffer: 2GiB\n"));
  EXPECT_FALSE(huge.ok());
}

TEST(mirrors_config, dpdk_devices) {
  auto missing = load_mirrors(edit(", dpdk_device: \"0000:03:00.0\"", ""));
  EXPECT_TRUE(only_error(missing.diag,
                         "mirrors.yaml:12:11: mirrors.volumes[0].replicas[0]: node \"x\" of "
                         "volume \"db\" needs a dpdk_device: transport.port is dpdk"));
  auto mtu = load_mirrors(edit("mtu: 9000", "mtu: 9600"));
  EXPECT_TRUE(only_error(mtu.diag,
                         "mirrors.yaml:13:99: mirrors.volumes[0].replicas[1].mtu: \"9600\" is out "
                         "of range: expected 576 to 9000"));
  auto spaces = load_mirrors(edit("\"0000:03:00.0\"", "\"net_memif0, role=server\""));
  EXPECT_TRUE(only_error(spaces.diag,
                         "mirrors.yaml:12:53: mirrors.volumes[0].replicas[0].dpdk_device: "
                         "\"net_memif0, role=server\" is not a DPDK device: a vdev spec "
                         "(net_memif0,role=server,socket=PATH) or a PCI address, without spaces"));
  // Frames bigger than memif's buffers would be chained over descriptors: refused.
  auto memif = load_mirrors(edit("net_af_packet0,iface=eth1", "net_memif0,socket=/run/a.sock"));
  EXPECT_TRUE(only_error(memif.diag,
                         "mirrors.yaml:13:103: mirrors.volumes[0].replicas[1].mtu: mtu 9000 "
                         "needs memif buffers of at least 9014 bytes (this device's bsize is "
                         "2048): add ,bsize=9216 to dpdk_device on both nodes, or lower the mtu"));
  EXPECT_TRUE(
      load_mirrors(edit("net_af_packet0,iface=eth1", "net_memif0,socket=/run/a.sock,bsize=9216"))
          .ok());
  // Two volumes on one node may not share an ethdev: each volume plugs and unplugs its own.
  std::string two(mirrors_only);
  two += R"(    - name: logs
      data: /dev/vdc
      meta: /var/lib/tandem/logs.meta
      replicas:
        - {node: x, address: 10.0.0.1, port: 7792, dpdk_device: "0000:03:00.0,x=1"}
        - {node: y, address: 10.0.0.2, port: 7793, dpdk_device: net_af_packet1}
)";
  auto shared = load_mirrors(two);
  EXPECT_TRUE(only_error(shared.diag,
                         "mirrors.yaml:18:65: mirrors.volumes[1].replicas[0].dpdk_device: "
                         "device 0000:03:00.0 on node x is already used by volume db; every "
                         "volume needs its own DPDK device"));
}

// mirrors.lcores, mirrors.lcore_cpus and a volume's lcore: tandem-replicator's polling threads.
TEST(mirrors_config, lcores_and_placement) {
  auto defaults = load_mirrors(mirrors_only);
  ASSERT_TRUE(defaults.ok()) << defaults.diag.to_string();
  EXPECT_EQ(defaults.config.lcores, 1u);
  EXPECT_TRUE(defaults.config.lcore_cpus.empty());
  EXPECT_FALSE(defaults.config.volumes[0].lcore.has_value());
  EXPECT_EQ(to_json(defaults.config)["lcores"], 1);

  auto ok = load_mirrors(edit("  volumes:\n", "  lcores: 4\n  lcore_cpus: [2, 3]\n  volumes:\n",
                              edit("      meta: /var/lib/tandem/db.meta\n",
                                   "      meta: /var/lib/tandem/db.meta\n      lcore: 3\n")));
  ASSERT_TRUE(ok.ok()) << ok.diag.to_string();
  EXPECT_TRUE(ok.diag.all().empty()) << ok.diag.to_string();
  EXPECT_EQ(ok.config.lcores, 4u);
  EXPECT_EQ(ok.config.lcore_cpus, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(ok.config.volumes[0].lcore, 3u);

  auto zero = load_mirrors(edit("  volumes:\n", "  lcores: 0\n  volumes:\n"));
  EXPECT_TRUE(only_error(zero.diag,
                         "mirrors.yaml:7:11: mirrors.lcores: \"0\" is out of range: expected 1 "
                         "to 64"));
  auto many = load_mirrors(edit("  volumes:\n", "  lcores: 65\n  volumes:\n"));
  EXPECT_TRUE(only_error(many.diag,
                         "mirrors.yaml:7:11: mirrors.lcores: \"65\" is out of range: expected 1 "
                         "to 64"));
  auto negative = load_mirrors(edit("  volumes:\n", "  lcore_cpus: [0, -1]\n  volumes:\n"));
  EXPECT_TRUE(only_error(negative.diag,
                         "mirrors.yaml:7:19: mirrors.lcore_cpus[1]: \"-1\" is out of range: "
                         "expected 0 to 1023"));
  auto word = load_mirrors(edit("  volumes:\n", "  lcore_cpus: [one]\n  volumes:\n"));
  EXPECT_TRUE(only_error(word.diag,
                         "mirrors.yaml:7:16: mirrors.lcore_cpus[0]: \"one\" is not a whole "
                         "number"));
  auto empty = load_mirrors(edit("  volumes:\n", "  lcore_cpus: []\n  volumes:\n"));
  EXPECT_TRUE(only_error(empty.diag,
                         "mirrors.yaml:7:15: mirrors.lcore_cpus: lists no CPU: leave the key out "
                         "to run the lcores unpinned"));
  auto scalar = load_mirrors(edit("  volumes:\n", "  lcore_cpus: 1\n  volumes:\n"));
  EXPECT_TRUE(only_error(scalar.diag,
                         "mirrors.yaml:7:15: mirrors.lcore_cpus: expected a list (\"- \" lines or "
                         "[a, b]), found the value \"1\""));
  // More CPUs than lcores: the rest are unused, which is worth a warning, not an error.
  auto extra =
      load_mirrors(edit("  volumes:\n", "  lcores: 2\n  lcore_cpus: [0, 1, 2]\n  volumes:\n"));
  ASSERT_TRUE(extra.ok()) << extra.diag.to_string();
  EXPECT_TRUE(has_problem(extra.diag,
                          "mirrors.yaml:8:15: warning: mirrors.lcore_cpus: lists 3 CPUs for 2 "
                          "lcores (mirrors.lcores): only the first 2 are used"))
      << extra.diag.to_string();

  // A volume's lcore must be one of the configured lcores: named with the volume and its place.
  auto outside = load_mirrors(edit("  volumes:\n", "  lcores: 2\n  volumes:\n",
                                   edit("      meta: /var/lib/tandem/db.meta\n",
                                        "      meta: /var/lib/tandem/db.meta\n      lcore: 2\n")));
  EXPECT_TRUE(only_error(outside.diag,
                         "mirrors.yaml:12:14: mirrors.volumes[0].lcore: volume \"db\" is placed "
                         "on lcore 2, but mirrors.lcores is 2 (lcores 0 to 1)"));
  auto default_one = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                       "      meta: /var/lib/tandem/db.meta\n      lcore: 1\n"));
  EXPECT_TRUE(only_error(default_one.diag,
                         "mirrors.yaml:11:14: mirrors.volumes[0].lcore: volume \"db\" is placed "
                         "on lcore 1, but mirrors.lcores is 1 (only lcore 0)"));
  auto bad_lcore = load_mirrors(edit("      meta: /var/lib/tandem/db.meta\n",
                                     "      meta: /var/lib/tandem/db.meta\n      lcore: first\n"));
  EXPECT_TRUE(only_error(bad_lcore.diag,
                         "mirrors.yaml:11:14: mirrors.volumes[0].lcore: \"first\" is not a whole "
                         "number"));

  // The keys survive the written-out form (tandemctl config show, reload diffs).
  const auto j = to_json(ok.config);
  EXPECT_EQ(j["lcores"], 4);
  EXPECT_EQ(j["lcore_cpus"], nlohmann::ordered_json::parse("[2, 3]"));
  EXPECT_EQ(j["volumes"][0]["lcore"], 3);
}

}  // namespace
}  // namespace tandem::ctl::config
