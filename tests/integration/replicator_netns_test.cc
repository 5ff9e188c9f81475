// SPDX-License-Identifier: Apache-2.0
// tandem-replicator between two lab hosts, driven only through its control socket: the crash
// campaign (kill -9 the primary in the middle of a random write workload, promote the
// secondary, no acknowledged write may be missing), resync after a disconnect, and refusals.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dataplane/app/workload.h"
#include "tests/lab/mirror_pair.h"
#include "tests/lab/tool_util.h"
#include "tests/support/tandemctl.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

using tool::mix;

// Both images byte-identical (read after both volumes are detached).
void expect_same_images(mirror_pair& m) {
  std::string da(m.volume_bytes(), '\0'), db(m.volume_bytes(), '\1');
  std::ifstream(m.image(0), std::ios::binary)
      .read(da.data(), static_cast<std::streamsize>(da.size()));
  std::ifstream(m.image(1), std::ios::binary)
      .read(db.data(), static_cast<std::streamsize>(db.size()));
  EXPECT_TRUE(da == db) << "the images differ";
}

// The product's promise: a failover never loses an acknowledged write. Each trial kills the
// primary's replicator (kill -9) at a random moment of a random write workload whose every
// acknowledged write is logged, promotes the secondary and checks every block against the log.
// TANDEM_CRASH_TRIALS sets the number of trials (default 24; the documented campaign runs 200).
TEST(replicator_netns, crash_campaign_loses_no_acknowledged_write) {
  const char* env = std::getenv("TANDEM_CRASH_TRIALS");
  const int trials = env && *env ? std::atoi(env) : 24;
  mirror_pair_options small;  // small: every trial starts with a full sync of fresh disks
  small.mib = 8;
  mirror_pair m(small);
  uint64_t total_acked = 0;
  for (int t = 0; t < trials; ++t) {
    SCOPED_TRACE("trial " + std::to_string(t));
    const uint64_t r = mix(0x7a11 + t);
    m.bring_up();
    const std::string log = m.dir() + "/trial" + std::to_string(t) + ".log";
    m.ok(0, {{"cmd", "workload"},
             {"volume", "db"},
             {"seed", r},
             {"qd", 1 + r % 16},
             {"max_size", 65536},
             {"fua_percent", 10},
             {"log", log}});
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + (r >> 20) % 700));
    m.kill9(0);
    m.take_over_and_stop(1);  // the failover
    const auto v = dp::app::verify_workload(m.image(1), log);
    EXPECT_GT(v.acked_writes, 0u);
    EXPECT_EQ(v.missing, 0u) << v.first_problem;
    EXPECT_EQ(v.corrupt, 0u) << v.first_problem;
    total_acked += v.acked_writes;
    std::printf("trial %d: %llu acknowledged writes, %llu blocks checked, 0 missing\n", t,
                static_cast<unsigned long long>(v.acked_writes),
                static_cast<unsigned long long>(v.checked_blocks));
  }
  std::printf("crash campaign: %d trials, %llu acknowledged writes, none missing\n", trials,
              static_cast<unsigned long long>(total_acked));
}

// Disconnect the secondary, write on the primary, reconnect: the bitmap resync brings the
// secondary back, sending only what changed, and both images end byte-identical.
TEST(replicator_netns, disconnect_write_reconnect_converges) {
  mirror_pair m;
  m.bring_up();
  m.ok(1, {{"cmd", "disconnect"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return v["connection"] != "connected"; }));
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 99},
           {"qd", 8},
           {"count", 400},
           {"region_size", 8u << 20},
           {"log", m.dir() + "/disconnected.log"}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return !v["workload"]["running"].get<bool>(); }));
  const json before = m.volume(0);
  EXPECT_GT(before["dirty_bytes"].get<uint64_t>(), 0u);
  EXPECT_LE(before["dirty_bytes"].get<uint64_t>(), 8u << 20);  // only the region written
  const uint64_t received_before = m.volume(1)["counters"]["resync_bytes_received"].get<uint64_t>();
  m.ok(1, {{"cmd", "connect"}, {"volume", "db"}});
  const auto synced = mirror_pair::in_sync;
  ASSERT_TRUE(m.wait_for(1, synced, 60s)) << m.volume(1).dump();
  ASSERT_TRUE(m.wait_for(0, synced, 60s)) << m.volume(0).dump();
  const uint64_t resynced =
      m.volume(1)["counters"]["resync_bytes_received"].get<uint64_t>() - received_before;
  EXPECT_GT(resynced, 0u);
  EXPECT_LE(resynced, before["dirty_bytes"].get<uint64_t>());  // only what changed
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  expect_same_images(m);
  const auto v = dp::app::verify_workload(m.image(1), m.dir() + "/disconnected.log");
  EXPECT_EQ(v.acked_writes, 400u);
  EXPECT_EQ(v.missing + v.corrupt, 0u) << v.first_problem;
}

// Every write of the workload logged in `log` (400 of them) is on node2's image.
void expect_written(mirror_pair& m, const std::string& log) {
  const auto v = dp::app::verify_workload(m.image(1), log);
  EXPECT_EQ(v.acked_writes, 400u) << log;
  EXPECT_EQ(v.missing + v.corrupt, 0u) << v.first_problem;
}

// The replicator on DPDK ports (transport.port dpdk): each volume plugs its device on attach,
// replicates sync writes and a resync over it, and unplugs it on detach, so a second attach
// plugs it again.
void dpdk_pair_replicates_and_replugs(const std::string& port) {
  mirror_pair_options o;
  o.port = port;
  mirror_pair m(o);
  m.bring_up();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(m.volume(i)["transport"]["port"], "dpdk:net_" + port + "0") << m.volume(i).dump();
  }
  const std::string log1 = m.dir() + "/dpdk1.log", log2 = m.dir() + "/dpdk2.log";
  // Two workloads on disjoint halves, so that each log can be verified on its own.
  const uint64_t half = m.volume_bytes() / 2;
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 11},
           {"qd", 8},
           {"count", 400},
           {"region_size", half},
           {"log", log1}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return !v["workload"]["running"].get<bool>(); }))
      << m.volume(0).dump();
  EXPECT_EQ(m.volume(0)["counters"]["peer_errors"], 0u);
  // Replug: both volumes detach (their devices go away) and attach again.
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  expect_written(m, log1);
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "attach"}, {"volume", "db"}});
  m.ok(0, {{"cmd", "promote"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 60s)) << m.volume(1).dump();
  // Disconnected writes, then a bitmap resync over the port.
  m.ok(1, {{"cmd", "disconnect"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return v["connection"] != "connected"; }));
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 12},
           {"qd", 8},
           {"count", 400},
           {"region_offset", half},
           {"region_size", half},
           {"log", log2}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return !v["workload"]["running"].get<bool>(); }));
  m.ok(1, {{"cmd", "connect"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 60s)) << m.volume(1).dump();
  ASSERT_TRUE(m.wait_for(0, mirror_pair::in_sync, 60s)) << m.volume(0).dump();
  EXPECT_GT(m.volume(1)["counters"]["resync_bytes_received"].get<uint64_t>(), 0u);
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  expect_same_images(m);
  expect_written(m, log2);
}

TEST(replicator_netns, memif_pair_replicates_and_replugs) {
  dpdk_pair_replicates_and_replugs("memif");
}

TEST(replicator_netns, af_packet_pair_replicates_and_replugs) {
  dpdk_pair_replicates_and_replugs("af_packet");
}

// The primary's replicator is killed (kill -9) while it resyncs node2 and writes a burst at the
// same time. Restarted, it replays its activity log, the resync resumes from the bitmap, and
// the pair converges: identical images holding every write either workload had acknowledged.
TEST(replicator_netns, primary_crash_during_resync_and_writes_converges) {
  mirror_pair_options o;
  o.volume_extra = "resync: {rate: 16MiB, min_rate: 4MiB}";  // slow enough to crash inside it
  mirror_pair m(o);
  m.bring_up();
  const uint64_t half = m.volume_bytes() / 2;
  const std::string log1 = m.dir() + "/before.log", log2 = m.dir() + "/during.log";
  m.ok(1, {{"cmd", "disconnect"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return v["connection"] != "connected"; }));
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 21},
           {"qd", 16},
           {"count", 2000},
           {"max_size", 65536},
           {"region_size", half},
           {"log", log1}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return !v["workload"]["running"].get<bool>(); }));
  ASSERT_GT(m.volume(0)["dirty_bytes"].get<uint64_t>(), 4u << 20);

  m.ok(1, {{"cmd", "connect"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) {
    return v["connection"] == "sync_source" && v["resync"]["done_bytes"].get<uint64_t>() > 0;
  })) << m.volume(0).dump();
  // A burst of writes on the other half while the resync runs, then the crash in the middle.
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 22},
           {"qd", 8},
           {"count", 1000000},
           {"region_offset", half},
           {"region_size", half},
           {"log", log2}});
  std::this_thread::sleep_for(300ms);
  const json at_crash = m.volume(0);
  ASSERT_EQ(at_crash["connection"], "sync_source") << "the resync ended before the crash";
  ASSERT_GT(at_crash["workload"]["acked"].get<uint64_t>(), 0u);
  m.kill9(0);
  EXPECT_EQ(m.volume(1)["disk"], "inconsistent");  // a resync target is never UpToDate midway

  // Restart: attach replays the activity log; as primary again it resumes the resync.
  m.start(0);
  m.ok(0, {{"cmd", "attach"}, {"volume", "db"}});
  m.ok(0, {{"cmd", "promote"}, {"volume", "db"}});
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 120s)) << m.volume(1).dump();
  ASSERT_TRUE(m.wait_for(0, mirror_pair::in_sync, 120s)) << m.volume(0).dump();
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  expect_same_images(m);
  const auto before = dp::app::verify_workload(m.image(1), log1);
  EXPECT_EQ(before.acked_writes, 2000u);
  EXPECT_EQ(before.missing + before.corrupt, 0u) << before.first_problem;
  const auto during = dp::app::verify_workload(m.image(1), log2);
  EXPECT_GT(during.acked_writes, 0u);
  EXPECT_EQ(during.missing + during.corrupt, 0u) << during.first_problem;
}

// Bad input changes nothing and says why: an Inconsistent node is not promoted, unknown volumes
// and commands are refused, corrupt metadata is reported and not reinitialised.
TEST(replicator_netns, refusals_are_clear_and_change_nothing) {
  mirror_pair m;
  m.fresh_disks();
  m.start(0);
  json r = m.call(0, {{"cmd", "attach"}, {"volume", "nope"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("unknown volume \"nope\" (configured: db)"),
            std::string::npos)
      << r.dump();
  r = m.call(0, {{"cmd", "frobnicate"}, {"volume", "db"}});
  EXPECT_NE(r["error"].get<std::string>().find("unknown command \"frobnicate\""),
            std::string::npos);
  r = m.call(0, {{"cmd", "attach"}, {"volume", "db"}});
  EXPECT_FALSE(r["ok"].get<bool>());  // no metadata yet
  EXPECT_NE(r["error"].get<std::string>().find(m.meta(0)), std::string::npos) << r.dump();
  m.ok(0, {{"cmd", "create"}, {"volume", "db"}});
  r = m.call(0, {{"cmd", "create"}, {"volume", "db"}});
  EXPECT_FALSE(r["ok"].get<bool>()) << "valid metadata was overwritten without force";
  m.ok(0, {{"cmd", "attach"}, {"volume", "db"}});
  r = m.call(0, {{"cmd", "promote"}, {"volume", "db"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("inconsistent"), std::string::npos) << r.dump();
  EXPECT_EQ(m.volume(0)["role"], "secondary");
  m.ok(0, {{"cmd", "detach"}, {"volume", "db"}});
  // Both superblock slots destroyed.
  {
    std::fstream f(m.meta(0), std::ios::in | std::ios::out | std::ios::binary);
    const std::string junk(8192, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const auto size_before = std::filesystem::file_size(m.meta(0));
  r = m.call(0, {{"cmd", "attach"}, {"volume", "db"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find(m.meta(0)), std::string::npos) << r.dump();
  EXPECT_FALSE(m.volume(0)["attached"].get<bool>());
  std::ifstream f(m.meta(0), std::ios::binary);
  std::string head(8192, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  EXPECT_EQ(head, std::string(8192, '\x5a')) << "corrupt metadata was rewritten";
  EXPECT_EQ(std::filesystem::file_size(m.meta(0)), size_before);
}

}  // namespace
}  // namespace tandem::lab

namespace tandem::lab {
namespace {

using test::cli_result;
using test::tandemctl;

// `tandemctl mirror` drives the pair end to end: status as text and JSON, a disconnect that
// the primary tracks, a refused promotion, reconnect and bitmap resync, and clear failures for
// an unknown volume, a missing argument and a replicator that is not running.
TEST(replicator_netns, tandemctl_mirror_drives_the_pair) {
  mirror_pair m;
  m.bring_up();
  cli_result r = tandemctl({"mirror", "status", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("node node1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("role:       primary"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("disk:       up_to_date"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("connection: connected"), std::string::npos) << r.out;

  r = tandemctl({"mirror", "disconnect", "db", "-r", m.sock(1)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "volume db: disconnected\n");
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return v["connection"] != "connected"; }));
  m.ok(0, {{"cmd", "workload"}, {"volume", "db"}, {"seed", 5}, {"count", 200}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return !v["workload"]["running"].get<bool>(); }));

  // The primary tracked what node2 missed.
  r = tandemctl({"mirror", "status", "db", "--json", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(json::parse(r.out)["volumes"][0]["dirty_bytes"].get<uint64_t>(), 0u) << r.out;
  r = tandemctl({"mirror", "promote", "db", "-r", m.sock(0)});
  EXPECT_EQ(r.code, 0) << r.err;  // already primary: accepted, nothing changes

  r = tandemctl({"mirror", "connect", "db", "-r", m.sock(1)});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto synced = mirror_pair::in_sync;
  ASSERT_TRUE(m.wait_for(1, synced, 60s)) << m.volume(1).dump();

  r = tandemctl({"mirror", "promote", "nope", "-r", m.sock(0)});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("unknown volume \"nope\" (configured: db)"), std::string::npos) << r.err;
  r = tandemctl({"mirror", "promote", "-r", m.sock(0)});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("Usage: tandemctl mirror promote VOLUME [--force]"), std::string::npos)
      << r.err;
  r = tandemctl({"mirror", "status", "-r", m.dir() + "/nobody.sock"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("nobody.sock"), std::string::npos) << r.err;
  r = tandemctl({"mirror", "detach", "db", "-r", m.sock(1)});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(m.volume(1)["attached"].get<bool>());
}

}  // namespace
}  // namespace tandem::lab
