// SPDX-License-Identifier: Apache-2.0
// Async replication between two tandem-replicators in lab namespaces (`mode: async`), over a
// link the transport's rate limit makes slow: the primary's writes complete at local speed and
// wait in the queue (status and tandemctl show it), the replicas converge once the link caught
// up; a queue too small for the burst falls back to the bitmap and a resync, unless a history
// file takes what the queue's memory cannot; and the crash campaign: kill -9 of the primary at a
// random moment leaves the secondary holding exactly a prefix of the workload's writes, in
// order.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
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
using test::cli_result;
using test::tandemctl;

bool workload_done(const json& v) {
  return v.contains("workload") && !v["workload"]["running"].get<bool>();
}

bool queue_empty(const json& v) {
  return v.contains("async") && v["async"]["queued"].get<uint64_t>() == 0;
}

std::string read_file(const std::string& path) {
  std::string s;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
      s.append(buf, n);
    std::fclose(f);
  }
  return s;
}

TEST(async_netns, writes_outrun_a_slow_link_then_the_replicas_converge) {
  mirror_pair_options o;
  o.mib = 32;
  o.transport = "keepalive: 100ms, dead_peer: 2s, rate_limit: 100Mbit";
  o.volume_extra = "mode: async\n      async: {queue: 64MiB}";
  mirror_pair m(o);
  m.bring_up();
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 60s)) << m.volume(1).dump();
  json v0 = m.volume(0);
  EXPECT_EQ(v0["replication"]["mode"], "async") << v0.dump();
  // About 32 MiB of writes: 3 s on a 100 Mbit/s link, far less to the local disk.
  const std::string log = m.dir() + "/async.log";
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 11},
           {"qd", 16},
           {"count", 1000},
           {"max_size", 65536},
           {"log", log}});
  uint64_t peak = 0;
  ASSERT_TRUE(m.wait_for(
      0,
      [&](const json& v) {
        if (v.contains("async")) peak = std::max(peak, v["async"]["queued_bytes"].get<uint64_t>());
        return workload_done(v);
      },
      60s, 5ms));
  v0 = m.volume(0);
  // Every write completed to the application while the peer still lacked some.
  EXPECT_GT(v0["async"]["queued_bytes"].get<uint64_t>(), 0u) << v0.dump();
  EXPECT_GT(peak, 4u << 20) << v0.dump();
  cli_result r = tandemctl({"mirror", "status", "db", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("async:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" of 64.0 MiB\n"), std::string::npos) << r.out;  // the memory, no history
  ASSERT_TRUE(m.wait_for(0, queue_empty, 60s)) << m.volume(0).dump();
  ASSERT_TRUE(m.wait_for(0, mirror_pair::in_sync, 60s)) << m.volume(0).dump();
  v0 = m.volume(0);
  EXPECT_EQ(mirror_pair::counter(v0, "async_fallbacks"), 0u) << v0.dump();
  EXPECT_GE(mirror_pair::counter(v0, "async_queued"), 1000u) << v0.dump();
  EXPECT_EQ(v0["async"]["lag_ms"], 0u);
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_TRUE(read_file(m.image(0)) == read_file(m.image(1))) << "the images differ";
  const auto v = dp::app::verify_workload(m.image(1), log);
  EXPECT_EQ(v.acked_writes, 1000u);
  EXPECT_EQ(v.missing, 0u) << v.first_problem;
  EXPECT_EQ(v.corrupt, 0u) << v.first_problem;
}

TEST(async_netns, a_queue_too_small_for_the_burst_falls_back_to_a_resync) {
  mirror_pair_options o;
  o.mib = 32;
  o.transport = "keepalive: 100ms, dead_peer: 2s, rate_limit: 50Mbit";
  o.volume_extra = "mode: async\n      async: {queue: 2MiB}\n      resync: {rate: 0}";
  mirror_pair m(o);
  m.bring_up();
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 60s)) << m.volume(1).dump();
  const std::string log = m.dir() + "/burst.log";
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 12},
           {"qd", 16},
           {"count", 600},
           {"max_size", 65536},
           {"log", log}});
  ASSERT_TRUE(m.wait_for(0, workload_done, 60s)) << m.volume(0).dump();
  json v0 = m.volume(0);
  EXPECT_GE(mirror_pair::counter(v0, "async_fallbacks"), 1u) << v0.dump();
  ASSERT_TRUE(m.wait_for(
      0, [](const json& v) { return mirror_pair::in_sync(v) && queue_empty(v); }, 90s))
      << m.volume(0).dump();
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 30s)) << m.volume(1).dump();
  v0 = m.volume(0);
  EXPECT_GT(mirror_pair::counter(v0, "resync_bytes_sent"), m.volume_bytes())
      << v0.dump();  // and a resync
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_TRUE(read_file(m.image(0)) == read_file(m.image(1))) << "the images differ";
  const auto v = dp::app::verify_workload(m.image(1), log);
  EXPECT_EQ(v.missing, 0u) << v.first_problem;
  EXPECT_EQ(v.corrupt, 0u) << v.first_problem;
}

// The same burst with a 2 MiB queue and a history file: the writes spill to disk instead of
// falling back, come back in order, and nothing is lost; tandemctl shows the history.
TEST(async_netns, a_history_file_takes_the_burst_the_queue_cannot) {
  mirror_pair_options o;
  o.mib = 32;
  o.transport = "keepalive: 100ms, dead_peer: 2s, rate_limit: 50Mbit";
  o.volume_extra = "mode: async\n      async: {queue: 2MiB, history_size: 64MiB}";
  o.history = true;
  mirror_pair m(o);
  m.bring_up();
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 60s)) << m.volume(1).dump();
  json v0 = m.volume(0);
  EXPECT_EQ(v0["async"]["history_capacity_bytes"], 64u << 20) << v0.dump();
  const std::string log = m.dir() + "/history.log";
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", 12},
           {"qd", 16},
           {"count", 600},
           {"max_size", 65536},
           {"log", log}});
  uint64_t peak = 0;
  ASSERT_TRUE(m.wait_for(
      0,
      [&](const json& v) {
        if (v.contains("async")) peak = std::max(peak, v["async"]["history_bytes"].get<uint64_t>());
        return workload_done(v);
      },
      60s, 5ms))
      << m.volume(0).dump();
  EXPECT_GT(peak, 4u << 20) << m.volume(0).dump();
  cli_result r = tandemctl({"mirror", "status", "db", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  // Memory and history apart: "memory X of 2.0 MiB, history Y of 64.0 MiB".
  EXPECT_NE(r.out.find(" of 2.0 MiB, history "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" of 64.0 MiB"), std::string::npos) << r.out;
  ASSERT_TRUE(m.wait_for(
      0, [](const json& v) { return mirror_pair::in_sync(v) && queue_empty(v); }, 90s))
      << m.volume(0).dump();
  v0 = m.volume(0);
  EXPECT_EQ(mirror_pair::counter(v0, "async_fallbacks"), 0u) << v0.dump();
  EXPECT_GT(mirror_pair::counter(v0, "async_spilled_bytes"), 4u << 20) << v0.dump();
  EXPECT_EQ(v0["async"]["history_bytes"], 0u);
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_TRUE(read_file(m.image(0)) == read_file(m.image(1))) << "the images differ";
  const auto v = dp::app::verify_workload(m.image(1), log);
  EXPECT_EQ(v.acked_writes, 600u);
  EXPECT_EQ(v.missing, 0u) << v.first_problem;
  EXPECT_EQ(v.corrupt, 0u) << v.first_problem;
}

// The DR promise of async mode: when the primary dies (kill -9 of its replicator, at a random
// moment of a random workload over a slow link), the secondary holds exactly the first k writes
// of the workload, in order, with nothing torn: crash-consistent, as if the primary had lost
// power after write k. TANDEM_ASYNC_CRASH_TRIALS sets the trials (default 6).
TEST(async_netns, crash_campaign_the_secondary_holds_a_prefix_of_the_writes) {
  const char* env = std::getenv("TANDEM_ASYNC_CRASH_TRIALS");
  const int trials = env && *env ? std::atoi(env) : 6;
  mirror_pair_options o;
  o.mib = 8;
  o.transport = "keepalive: 100ms, dead_peer: 1s, rate_limit: 40Mbit";
  o.volume_extra = "mode: async\n      async: {queue: 64MiB}";
  mirror_pair m(o);
  int behind = 0;
  for (int t = 0; t < trials; ++t) {
    SCOPED_TRACE("trial " + std::to_string(t));
    const uint64_t r = tool::mix(0xa5c0 + t);
    m.bring_up();
    const std::string log = m.dir() + "/async-trial" + std::to_string(t) + ".log";
    m.ok(0, {{"cmd", "workload"},
             {"volume", "db"},
             {"seed", r},
             {"qd", 1 + r % 16},
             {"max_size", 65536},
             {"fua_percent", 10},
             {"log", log}});
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + (r >> 20) % 600));
    m.kill9(0);
    m.take_over_and_stop(1);  // the failover
    const auto p = dp::app::verify_prefix(m.image(1), log);
    EXPECT_GT(p.acked_writes, 0u);
    EXPECT_GE(p.prefix, 0) << p.first_problem;
    if (p.prefix >= 0 && static_cast<uint64_t>(p.prefix) < p.acked_writes) ++behind;
    std::printf(
        "trial %d: %llu writes acknowledged on the primary, the secondary holds the "
        "first %lld\n",
        t, static_cast<unsigned long long>(p.acked_writes), static_cast<long long>(p.prefix));
  }
  // Meaningful only if the secondary was behind when the primary died.
  EXPECT_GE(behind, trials / 2);
}

}  // namespace
}  // namespace tandem::lab
