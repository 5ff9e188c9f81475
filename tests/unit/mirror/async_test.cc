// SPDX-License-Identifier: Apache-2.0
// Async replication: a write completes once it is durable on the primary; the peer receives the
// writes later, in the order the application submitted them. Convergence, the queue's status,
// the fall-back to the bitmap when the queue is full, a lost peer, demotion with writes still
// queued, a primary crash whose queued writes the activity log covers, and the crash campaign:
// whenever the primary dies, the secondary holds exactly a prefix of its writes.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "dataplane/mirror/volume.h"
#include "tests/unit/mirror/mirror_harness.h"

namespace tandem::test::mirror {
namespace {

using dm::conn_state;

dm::volume_options async_opt(cluster& c, node& n, uint64_t queue_bytes = 16u << 20,
                             unsigned entries = 4096) {
  dm::volume_options o = c.default_opt(n);
  o.mode = dm::replication_mode::async;
  o.async_queue_bytes = queue_bytes;
  o.async_queue_entries = entries;
  return o;
}

// Fresh volumes, A async and promoted, both connected after the initial full sync. `link`: a
// fault profile on what A sends (delay, rate), none when empty.
void setup_async(cluster& c, std::optional<dm::volume_options> oa = std::nullopt,
                 std::optional<dp::fault_profile> link = std::nullopt, uint64_t seed = 1) {
  c.create(c.a);
  c.create(c.b);
  if (link) c.with_faults(c.a, *link, seed);
  c.start(c.a, oa ? *oa : async_opt(c, c.a));
  c.start(c.b);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs() << c.b.all_logs();
}

void workload(app_driver& d, uint64_t count, size_t qd, uint64_t hot = blocks) {
  uint64_t issued = 0;
  while (issued < count) {
    while (issued < count && d.in_flight() < qd && d.submit_random(hot))
      ++issued;
    d.step();
  }
}

bool queue_empty(cluster& c) {
  const auto s = c.a.vol->status();
  return s.async.queued == 0 && c.b.vol->status().applying == 0;
}

TEST(mirror_async, writes_complete_before_the_peer_has_them_and_the_replicas_converge) {
  cluster c;
  setup_async(c);
  app_driver d(c, c.a, 41);
  // The secondary stops for 40 ms: writes still complete, and wait in the queue.
  c.b.paused = true;
  ASSERT_TRUE(d.submit(dm::io_op::write, 10, 4));
  ASSERT_TRUE(d.submit(dm::io_op::write, 300, 1, true));
  ASSERT_TRUE(d.submit(dm::io_op::discard, 500, 8));
  ASSERT_TRUE(d.drain(5'000'000));
  EXPECT_EQ(d.st().completed, 3u);
  c.run_for(40'000'000);
  auto s = c.a.vol->status();
  EXPECT_TRUE(s.async.enabled);
  EXPECT_EQ(s.async.queued, 3u);
  EXPECT_EQ(s.async.queued_bytes, 5u * blk);  // the discard carries no data
  EXPECT_GE(s.async.memory_bytes, 5u * blk);  // all of it in memory
  EXPECT_EQ(s.async.capacity_bytes, 16u << 20);
  EXPECT_GE(s.async.lag_ns, 40'000'000u);
  EXPECT_EQ(block_id(c.b.data->data(), 10), 0u);
  EXPECT_TRUE(c.a.vol->busy());
  c.b.paused = false;
  ASSERT_TRUE(c.run_until([&] { return queue_empty(c); }));
  s = c.a.vol->status();
  EXPECT_EQ(s.async.queued_bytes, 0u);
  EXPECT_EQ(s.async.unsent_bytes, 0u);
  EXPECT_EQ(s.async.memory_bytes, 0u);
  EXPECT_EQ(s.async.lag_ns, 0u);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));

  // Then a random workload with overlaps, flushes, FUA, discards and zeroes.
  workload(d, 1500, 32, 256);
  ASSERT_TRUE(d.drain());
  ASSERT_TRUE(d.submit(dm::io_op::flush, 0, 0));
  ASSERT_TRUE(d.drain());
  ASSERT_TRUE(c.run_until([&] { return queue_empty(c); }));
  EXPECT_EQ(d.st().errors, 0u);
  EXPECT_TRUE(d.matches_last(c.a.data->data()));
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  s = c.a.vol->status();
  EXPECT_EQ(s.conn, conn_state::connected);
  EXPECT_GT(s.counters.async_queued, 1000u);
  EXPECT_GT(s.counters.async_queued_bytes, 0u);
  EXPECT_EQ(s.counters.async_fallbacks, 0u);
  EXPECT_EQ(s.counters.marked_dirty, 0u);
  EXPECT_EQ(s.counters.acks, s.counters.replicated + s.counters.peer_flushes);
  EXPECT_EQ(s.dirty_bits, 0u);
  // The queued flush reached the peer as a flush: what it covers is durable there.
  EXPECT_GT(c.b.vol->status().counters.applied, 1000u);
}

TEST(mirror_async, a_full_queue_falls_back_to_the_bitmap_and_the_peer_is_resynced) {
  cluster c;
  setup_async(c, async_opt(c, c.a, 2u << 20, 16));
  app_driver d(c, c.a, 43);
  c.b.paused = true;
  // 40 writes of one block, each completing at once: the 17th finds the queue full.
  for (uint64_t k = 0; k < 40; ++k) {
    ASSERT_TRUE(d.submit(dm::io_op::write, 7 * k, 1));
    ASSERT_TRUE(d.drain(5'000'000)) << "write " << k;
  }
  EXPECT_EQ(d.st().errors, 0u);
  auto s = c.a.vol->status();
  EXPECT_EQ(s.counters.async_fallbacks, 1u);
  EXPECT_TRUE(c.a.logged("async queue entries full")) << c.a.all_logs();
  EXPECT_GT(s.dirty_bits, 0u);
  EXPECT_EQ(s.async.queued, 0u);  // the queued writes were marked instead
  c.b.paused = false;
  ASSERT_TRUE(c.run_until([&] { return c.both_connected() && queue_empty(c); }))
      << c.a.all_logs() << c.b.all_logs();
  s = c.a.vol->status();
  EXPECT_EQ(s.last_action, dm::sync_action::source);
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// Queued writes keep their activity-log extents until the peer has them. Scattered writes over
// a slow link can fill the log: the next write waits at most 100 ms, then the engine falls back
// to the bitmap (which frees the slots) rather than hold the application back.
TEST(mirror_async, an_activity_log_full_of_queued_extents_falls_back_to_the_bitmap) {
  cluster c;
  setup_async(c);
  app_driver d(c, c.a, 44);
  c.b.paused = true;
  const uint64_t ext_blocks = ext_bytes / blk;
  for (uint64_t e = 0; e < 8; ++e) {  // the test volume's log has 8 slots
    ASSERT_TRUE(d.submit(dm::io_op::write, e * ext_blocks + 3, 1));
    ASSERT_TRUE(d.drain(5'000'000)) << "extent " << e;
  }
  EXPECT_EQ(c.a.vol->status().async.queued, 8u);
  ASSERT_TRUE(d.submit(dm::io_op::write, 9 * ext_blocks, 1));  // a ninth extent
  c.run_for(50'000'000);
  d.reap();
  EXPECT_EQ(d.in_flight(), 1u);  // waiting for a slot
  ASSERT_TRUE(d.drain(100'000'000));
  auto s = c.a.vol->status();
  EXPECT_EQ(s.counters.async_fallbacks, 1u);
  EXPECT_TRUE(c.a.logged("activity log is full")) << c.a.all_logs();
  EXPECT_GT(s.dirty_bits, 0u);
  c.b.paused = false;
  ASSERT_TRUE(c.run_until([&] { return c.both_connected() && queue_empty(c); }))
      << c.a.all_logs() << c.b.all_logs();
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

TEST(mirror_async, a_lost_peer_marks_every_queued_write_and_a_resync_restores_them) {
  cluster c;
  setup_async(c);
  app_driver d(c, c.a, 45);
  c.b.paused = true;
  workload(d, 200, 16, 256);
  ASSERT_TRUE(d.drain(50'000'000));
  EXPECT_GT(c.a.vol->status().async.queued, 0u);
  // The secondary is gone long enough to be declared dead.
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::connecting); }));
  auto s = c.a.vol->status();
  EXPECT_EQ(s.async.queued, 0u);
  EXPECT_EQ(s.async.queued_bytes, 0u);
  EXPECT_GT(s.dirty_bits, 0u);
  EXPECT_GT(s.counters.marked_dirty, 0u);
  // Writes go on meanwhile, into the bitmap.
  workload(d, 100, 16);
  ASSERT_TRUE(d.drain());
  c.b.paused = false;
  ASSERT_TRUE(c.run_until([&] { return c.both_connected() && queue_empty(c); }))
      << c.a.all_logs() << c.b.all_logs();
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

TEST(mirror_async, demote_waits_for_the_queue_to_reach_the_peer) {
  cluster c;
  setup_async(c);
  app_driver d(c, c.a, 47);
  c.b.paused = true;
  for (uint64_t k = 0; k < 4; ++k)
    ASSERT_TRUE(d.submit(dm::io_op::write, 100 * k, 2));
  ASSERT_TRUE(d.drain(5'000'000));
  EXPECT_EQ(c.a.vol->demote(), -EBUSY);
  EXPECT_NE(c.a.vol->last_error().find("not yet acknowledged by the peer"), std::string::npos)
      << c.a.vol->last_error();
  EXPECT_EQ(c.a.vol->role(), dv::role::primary);
  c.b.paused = false;
  ASSERT_TRUE(c.run_until([&] { return queue_empty(c); }));
  EXPECT_EQ(c.a.vol->demote(), 0) << c.a.vol->last_error();
  ASSERT_TRUE(c.run_until([&] { return c.b.vol->status().peer_role == dv::role::secondary; }));
  // A planned switchover loses nothing.
  ASSERT_EQ(c.b.vol->promote(), 0) << c.b.vol->last_error();
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

// The primary dies with writes completed to the application and still queued for the peer: its
// activity log kept their extents, so its replay covers them and the peer gets them by resync.
TEST(mirror_async, primary_crash_with_queued_writes_resyncs_them_from_the_activity_log) {
  cluster c;
  setup_async(c);
  app_driver d(c, c.a, 49);
  c.b.paused = true;
  workload(d, 150, 16, 256);
  ASSERT_TRUE(d.drain(50'000'000));
  ASSERT_GT(c.a.vol->status().async.queued, 0u);
  c.kill(c.a);
  c.a.data->crash(1.0);  // a process kill: the page cache keeps every completed write
  c.b.paused = false;
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
  c.reopen(c.a);
  ASSERT_TRUE(c.a.meta->needs_replay());
  c.start(c.a, async_opt(c, c.a));
  EXPECT_GT(c.a.vol->status().dirty_bits, 0u);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs();
  EXPECT_EQ(c.a.vol->status().last_action, dm::sync_action::source);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// A crash campaign's round ends: the primary dies mid-stream (writes in flight, queued, on the
// wire), the secondary's image must be what the first k writes of the submission order leave,
// and it must take over. True when it was behind (k short of every write).
bool primary_dies_secondary_holds_a_prefix(cluster& c, app_driver& d, uint64_t round) {
  c.kill(c.a);
  const bool quiet = c.run_until(
      [&] { return c.in_state(c.b, conn_state::connecting) && c.b.vol->status().applying == 0; });
  EXPECT_TRUE(quiet) << "round " << round;
  const int64_t k = d.prefix_length(c.b.data->data());
  const auto total = static_cast<int64_t>(d.submission_order().size());
  EXPECT_GE(k, 0) << "round " << round << ": the secondary's image is no prefix of the " << total
                  << " writes";
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date) << "round " << round;
  EXPECT_EQ(c.b.vol->promote(), 0) << "round " << round << ": " << c.b.vol->last_error();
  return k >= 0 && k < total;
}

// The crash campaign: the primary runs a random workload over a slow link (delay and a rate
// limit, so the queue holds a backlog) and dies at a random moment. Whatever reached the
// secondary is exactly the first k of the primary's writes in submission order: every block
// holds what those k writes left, none is torn, and the secondary can take over.
TEST(mirror_async, crash_campaign_the_secondary_always_holds_a_prefix_of_the_writes) {
  unsigned lagging = 0;
  for (uint64_t round = 0; round < 8; ++round) {
    cluster c;
    dp::fault_profile link;
    link.delay_ns = 2'000'000 + 1'000'000 * (round % 3);
    link.jitter_ns = round % 2 == 0 ? 0 : 200'000;  // reorders on the wire; the stream does not
    link.rate_bps = 200'000'000;
    link.queue_bytes = 1u << 20;
    setup_async(c, async_opt(c, c.a, 64u << 20, 16384), link, 900 + round);
    app_driver d(c, c.a, 500 + round);
    workload(d, 200 + (d.rng().next() % 400), 24, round % 2 == 0 ? 256 : blocks);
    const auto s = c.a.vol->status();
    ASSERT_EQ(s.counters.async_fallbacks, 0u) << "round " << round;
    if (primary_dies_secondary_holds_a_prefix(c, d, round)) ++lagging;
  }
  // The campaign means something only if the secondary was behind when the primary died.
  EXPECT_GE(lagging, 6u);
}

// Fall-back under a continuing workload: the resync's chunks overtake the queue, so the target
// may turn UpToDate only once the writes queued before the last chunk read have reached it. The
// primary dies right then: the secondary holds a prefix.
TEST(mirror_async, a_resync_under_writes_ends_with_the_target_holding_a_prefix) {
  for (uint64_t round = 0; round < 4; ++round) {
    cluster c;
    dp::fault_profile link;
    link.delay_ns = 1'000'000;
    link.rate_bps = 100'000'000;  // a third of what the workload writes
    link.queue_bytes = 1u << 20;
    setup_async(c, async_opt(c, c.a, 2u << 20, 48), link, 70 + round);
    app_driver d(c, c.a, 700 + round);
    bool resyncing = false, done = false;
    for (int it = 0; it < 400'000 && !done; ++it) {
      // A burst three times the link's rate until the queue overflows, then a trickle the link
      // can carry beside the resync.
      const bool burst = c.a.vol->status().counters.async_fallbacks == 0;
      while ((burst || it % 400 == 0) && d.in_flight() < 8 && d.submit_random(256))
        if (!burst) break;
      d.step();
      const auto sb = c.b.vol->status();
      resyncing = resyncing || sb.conn == conn_state::sync_target;
      done = resyncing && sb.conn == conn_state::connected && sb.disk == dv::disk_state::up_to_date;
    }
    ASSERT_TRUE(done) << "round " << round << " in flight " << d.in_flight() << " queued "
                      << c.a.vol->status().async.queued << " A "
                      << dm::to_string(c.a.vol->status().conn) << " B "
                      << dm::to_string(c.b.vol->status().conn) << " submitted " << d.st().submitted
                      << " rc " << d.last_rc() << "\n"
                      << c.a.all_logs() << c.b.all_logs();
    EXPECT_GE(c.a.vol->status().counters.async_fallbacks, 1u);
    c.kill(c.a);
    ASSERT_TRUE(c.run_until([&] {
      return c.in_state(c.b, conn_state::connecting) && c.b.vol->status().applying == 0;
    }));
    EXPECT_GE(d.prefix_length(c.b.data->data()), 0) << "round " << round;
  }
}

// A planned disconnect of an async primary sends its final flush after the whole queue: the
// peer has every write durable, nothing is marked, and reconnecting resyncs nothing.
TEST(mirror_async, a_planned_disconnect_drains_the_queue_first) {
  cluster c;
  dp::fault_profile link;
  link.delay_ns = 2'000'000;  // the writes are still on their way when the disconnect comes
  setup_async(c, std::nullopt, link, 5);
  app_driver d(c, c.a, 53);
  for (uint64_t k = 0; k < 12; ++k)
    ASSERT_TRUE(d.submit(dm::io_op::write, 40 * k, 4));
  ASSERT_TRUE(d.drain(1'000'000));
  ASSERT_GT(c.a.vol->status().async.queued, 0u);
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::standalone); }))
      << c.a.all_logs();
  EXPECT_TRUE(c.a.logged("the peer flushed what it acknowledged")) << c.a.all_logs();
  const auto s = c.a.vol->status();
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_EQ(s.counters.marked_dirty, 0u);
  c.b.data->crash(0.0);  // the secondary's power fails: the flush made them durable
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

TEST(mirror_async, options_are_checked) {
  cluster c;
  c.create(c.a);
  dm::volume_options o = async_opt(c, c.a, 1u << 20);
  EXPECT_THROW(dm::volume(*c.a.data, *c.a.meta, o), std::invalid_argument);
  o = async_opt(c, c.a, 16u << 20, 0);
  EXPECT_THROW(dm::volume(*c.a.data, *c.a.meta, o), std::invalid_argument);
  o = async_opt(c, c.a, 16u << 20, 1u << 20);
  EXPECT_THROW(dm::volume(*c.a.data, *c.a.meta, o), std::invalid_argument);
  EXPECT_EQ(dm::parse_replication_mode("async"), dm::replication_mode::async);
  EXPECT_EQ(dm::parse_replication_mode("sync"), dm::replication_mode::sync);
  EXPECT_FALSE(dm::parse_replication_mode("semi"));
  EXPECT_STREQ(dm::to_string(dm::replication_mode::async), "async");
}

}  // namespace
}  // namespace tandem::test::mirror

namespace tandem::test::mirror {
namespace {

// compression: igzip on an async primary: a compressible write is compressed as it enters the
// queue (so the queue holds more) and travels compressed; the secondary decompresses it. Random
// data travels raw.
TEST(mirror_async, compressible_writes_are_queued_and_sent_compressed) {
  cluster c;
  dm::volume_options oa = async_opt(c, c.a);
  oa.compression = dp::compression::igzip;
  setup_async(c, oa);
  c.b.paused = true;
  constexpr uint64_t n = 32, len = 64u << 10;
  std::vector<aligned_buf> bufs;
  for (uint64_t k = 0; k < n; ++k) {
    bufs.push_back(make_buf(len));
    for (uint64_t w = 0; w < len; ++w)
      bufs.back()[w] = static_cast<uint8_t>("tandem async "[w % 13] + k);
    dm::io_request io;
    io.op = dm::io_op::write;
    io.offset = k * len;
    io.length = len;
    io.buf = bufs.back().get();
    io.cookie = k + 1;
    ASSERT_EQ(c.a.vol->submit(io), 0);
  }
  ASSERT_TRUE(c.run_until([&] {
    dm::io_completion out[64];
    static unsigned done = 0;
    done += c.a.vol->reap(out);
    return done == n;
  }));
  auto s = c.a.vol->status();
  EXPECT_EQ(s.async.queued, n);
  EXPECT_LT(s.async.queued_bytes, n * len / 20) << s.async.queued_bytes;
  EXPECT_EQ(s.counters.async_compressed, n);
  EXPECT_EQ(s.counters.async_compressed_bytes, n * len);
  EXPECT_EQ(s.counters.async_compressed_wire_bytes, s.async.queued_bytes);
  // Random data is sent as it is.
  // (into an extent the queue already holds: a ninth would wait for a slot)
  app_driver d(c, c.a, 51);
  ASSERT_TRUE(d.submit(dm::io_op::write, 500, 8));
  ASSERT_TRUE(d.drain(5'000'000));
  EXPECT_EQ(c.a.vol->status().counters.async_compressed, n);
  c.b.paused = false;
  ASSERT_TRUE(c.run_until([&] { return queue_empty(c); })) << c.a.all_logs() << c.b.all_logs();
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_EQ(std::memcmp(c.b.data->data().data() + 5 * len, bufs[5].get(), len), 0);
  EXPECT_LT(c.a.vol->status().counters.replicated_bytes, 2 * n * len);
}

}  // namespace
}  // namespace tandem::test::mirror

namespace tandem::test::mirror {
namespace {

// The history file between the queue's memory and the bitmap, over a RAM backend that hands
// out completions in a shuffled order and takes few requests at once.
std::unique_ptr<db::mem_backend> history_disk(uint64_t bytes, unsigned queue_depth = 4) {
  db::mem_options mo;
  mo.size = bytes;
  mo.block_size = blk;
  mo.queue_depth = queue_depth;
  mo.shuffle_seed = 7;
  return std::make_unique<db::mem_backend>(mo);
}

// The WAN: a rate limit and 100 ms of delay.
dp::fault_profile slow_link(uint64_t bps = 100'000'000) {
  dp::fault_profile link;
  link.delay_ns = 100'000'000;
  link.rate_bps = bps;
  link.queue_bytes = 1u << 20;
  return link;
}

// Runs the workload while tracking the most the history held; returns it.
uint64_t workload_watching_history(cluster& c, app_driver& d, uint64_t count) {
  uint64_t most = 0, issued = 0;
  const uint64_t end = c.now + 20'000'000'000ULL;  // writes that wait for ever fail the test
  while ((issued < count || d.in_flight() > 0) && c.now < end) {
    while (issued < count && d.in_flight() < 16 && d.submit_random(256))
      ++issued;
    d.step();
    const auto s = c.a.vol->status();
    most = std::max(most, s.async.history_bytes);
    EXPECT_LE(s.async.memory_bytes, s.async.capacity_bytes);
    if (s.async.history_bytes > 0) {
      EXPECT_GT(s.async.queued_bytes, s.async.memory_bytes);
    }
  }
  EXPECT_LT(c.now, end) << d.in_flight() << " writes never completed";
  return most;
}

// A link slower than the application: what the queue's 2 MiB cannot hold goes to the history
// file and comes back in order; nothing falls back to the bitmap, nothing is lost.
TEST(mirror_async, a_slow_link_spills_writes_to_the_history_file_and_nothing_is_lost) {
  auto hist = history_disk(32u << 20);
  cluster c;
  dm::volume_options oa = async_opt(c, c.a, 2u << 20);
  oa.async_history = hist.get();
  setup_async(c, oa, slow_link(), 61);
  app_driver d(c, c.a, 62);
  const uint64_t most = workload_watching_history(c, d, 300);
  EXPECT_EQ(d.st().errors, 0u);
  auto s = c.a.vol->status();
  EXPECT_EQ(s.async.history_capacity_bytes, 32u << 20);
  EXPECT_GT(most, 4u << 20) << "the history held at most " << most << " bytes";
  EXPECT_GT(s.counters.async_spilled, 50u);
  EXPECT_GT(s.async.queued_bytes, s.async.capacity_bytes);  // more than the memory holds
  ASSERT_TRUE(c.run_until([&] { return queue_empty(c); })) << c.a.all_logs() << c.b.all_logs();
  s = c.a.vol->status();
  EXPECT_EQ(s.counters.async_fallbacks, 0u) << c.a.all_logs();
  EXPECT_EQ(s.counters.marked_dirty, 0u);
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_EQ(s.async.history_bytes, 0u);
  EXPECT_EQ(s.counters.local_errors, 0u);
  EXPECT_EQ(s.conn, conn_state::connected);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  // Every spilled write was read back: each went out once.
  EXPECT_EQ(s.counters.acks, s.counters.replicated + s.counters.peer_flushes);
  EXPECT_EQ(hist->stats().read_bytes, hist->stats().write_bytes);
}

// Memory and history both full: the bitmap takes over (the peer is resynced), and the replicas
// still converge.
TEST(mirror_async, a_full_history_falls_back_to_the_bitmap_and_the_peer_is_resynced) {
  auto hist = history_disk(2u << 20);
  cluster c;
  dm::volume_options oa = async_opt(c, c.a, 2u << 20);
  oa.async_history = hist.get();
  setup_async(c, oa, slow_link(), 63);
  app_driver d(c, c.a, 64);
  (void)workload_watching_history(c, d, 300);
  EXPECT_EQ(d.st().errors, 0u);
  EXPECT_TRUE(c.a.logged("async queue and history full")) << c.a.all_logs();
  ASSERT_TRUE(c.run_until([&] { return c.both_connected() && queue_empty(c); }))
      << c.a.all_logs() << c.b.all_logs();
  ASSERT_TRUE(c.run_until([&] { return c.a.vol->status().dirty_bits == 0; }));
  const auto s = c.a.vol->status();
  EXPECT_GE(s.counters.async_fallbacks, 1u);
  EXPECT_GT(s.counters.async_spilled, 0u);
  EXPECT_EQ(s.async.history_bytes, 0u);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// A history file that fails a write: the engine says so and falls back to the bitmap.
TEST(mirror_async, a_failing_history_falls_back_to_the_bitmap) {
  auto hist = history_disk(16u << 20);
  cluster c;
  dm::volume_options oa = async_opt(c, c.a, 2u << 20);
  oa.async_history = hist.get();
  setup_async(c, oa, slow_link(), 65);
  hist->fail_nth(3, EIO);
  app_driver d(c, c.a, 66);
  (void)workload_watching_history(c, d, 200);
  EXPECT_EQ(d.st().errors, 0u);  // the application's writes are not the history's
  EXPECT_TRUE(c.a.logged("history write failed")) << c.a.all_logs();
  EXPECT_TRUE(c.a.logged("the async history failed")) << c.a.all_logs();
  ASSERT_TRUE(c.run_until([&] {
    return c.both_connected() && queue_empty(c) && c.a.vol->status().dirty_bits == 0;
  })) << c.a.all_logs()
      << c.b.all_logs();
  EXPECT_GE(c.a.vol->status().counters.async_fallbacks, 1u);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  // Not trusted again: the next burst falls back from memory, as without a history.
  EXPECT_TRUE(c.a.logged("not used until the volume is attached again")) << c.a.all_logs();
  const uint64_t spilled = c.a.vol->status().counters.async_spilled;
  (void)workload_watching_history(c, d, 200);
  EXPECT_EQ(c.a.vol->status().counters.async_spilled, spilled);
  ASSERT_TRUE(c.run_until(
      [&] { return c.both_connected() && queue_empty(c) && c.a.vol->status().dirty_bits == 0; }));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// A history disk that stops answering (its completions never come): the application waits at
// most a second for it, then the engine gives it up and falls back to the bitmap.
TEST(mirror_async, a_history_that_stops_answering_is_given_up_after_a_second) {
  struct stuck_backend final : db::backend {
    db::mem_backend inner;
    bool stuck = false;
    explicit stuck_backend(const db::mem_options& o) : inner(o) {}
    int submit(std::span<const db::request> r) noexcept override { return inner.submit(r); }
    int poll(std::span<db::completion> out) noexcept override {
      return stuck ? 0 : inner.poll(out);
    }
    int wait(unsigned m, std::chrono::nanoseconds t) noexcept override { return inner.wait(m, t); }
    int register_buffers(std::span<const iovec> r) noexcept override {
      return inner.register_buffers(r);
    }
    const db::geometry& geom() const noexcept override { return inner.geom(); }
    unsigned queue_depth() const noexcept override { return inner.queue_depth(); }
    unsigned in_flight() const noexcept override { return inner.in_flight(); }
    const db::backend_stats& stats() const noexcept override { return inner.stats(); }
    std::string name() const override { return "stuck"; }
  };
  db::mem_options mo;
  mo.size = 16u << 20;
  mo.block_size = blk;
  mo.queue_depth = 4;
  stuck_backend hist(mo);
  cluster c;
  dm::volume_options oa = async_opt(c, c.a, 2u << 20);
  oa.async_history = &hist;
  setup_async(c, oa, slow_link(), 67);
  hist.stuck = true;
  app_driver d(c, c.a, 68);
  const uint64_t t0 = c.now;
  (void)workload_watching_history(c, d, 200);
  EXPECT_EQ(d.st().errors, 0u);
  EXPECT_TRUE(c.a.logged("no history write completed for 1000 ms")) << c.a.all_logs();
  EXPECT_LT(c.now - t0, 3'000'000'000u);  // the writes waited about a second, not for ever
  hist.stuck = false;                     // what it held completes late; nothing uses it any more
  ASSERT_TRUE(c.run_until([&] {
    return c.both_connected() && queue_empty(c) && c.a.vol->status().dirty_bits == 0;
  })) << c.a.all_logs();
  EXPECT_GE(c.a.vol->status().counters.async_fallbacks, 1u);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// The crash campaign again, with the writes going through the history file (and, every other
// round, compressed): whenever the primary dies, the secondary holds exactly a prefix.
TEST(mirror_async, crash_campaign_with_the_history_the_secondary_holds_a_prefix) {
  unsigned lagging = 0, spilled = 0;
  for (uint64_t round = 0; round < 6; ++round) {
    auto hist = history_disk(64u << 20, 2 + round % 3);
    cluster c;
    dm::volume_options oa = async_opt(c, c.a, 2u << 20, 16384);
    oa.async_history = hist.get();
    if (round % 2 == 1) oa.compression = dp::compression::igzip;
    dp::fault_profile link = slow_link(200'000'000);
    link.delay_ns = 2'000'000 + 1'000'000 * (round % 3);
    setup_async(c, oa, link, 700 + round);
    app_driver d(c, c.a, 800 + round);
    workload(d, 200 + (d.rng().next() % 300), 24, 256);
    const auto s = c.a.vol->status();
    ASSERT_EQ(s.counters.async_fallbacks, 0u) << "round " << round << c.a.all_logs();
    if (s.counters.async_spilled > 0) ++spilled;
    // Dies while the history's writes are on their way back (the first few MiB left memory).
    c.run_for(100'000'000 + d.rng().next() % 300'000'000);
    if (primary_dies_secondary_holds_a_prefix(c, d, round)) ++lagging;
  }
  EXPECT_GE(spilled, 5u);
  EXPECT_GE(lagging, 5u);
}

TEST(mirror_async, history_options_are_checked) {
  auto small = history_disk(1u << 20);
  auto fine = history_disk(4u << 20);
  cluster c;
  c.create(c.a);
  dm::volume_options o = async_opt(c, c.a);
  o.async_history = small.get();
  EXPECT_THROW(dm::volume(*c.a.data, *c.a.meta, o), std::invalid_argument);
  o = c.default_opt(c.a);  // sync
  o.async_history = fine.get();
  EXPECT_THROW(dm::volume(*c.a.data, *c.a.meta, o), std::invalid_argument);
}

// Resident memory of this process (VmRSS), in bytes.
uint64_t resident_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  ADD_FAILURE() << "no VmRSS in /proc/self/status";
  return 0;
}

// The queue's entries are sized for memory and history together (a million for 4 GiB), but a
// volume that queues nothing, as every secondary, must not pay for them: with N:1 a standby
// holds dozens of async volumes.
TEST(mirror_async, the_queues_entries_take_memory_only_when_used) {
  cluster c;
  c.create(c.a);
  dm::volume_options o = async_opt(c, c.a, 16u << 20, dm::max_async_queue_entries);
  const uint64_t before = resident_bytes();
  auto v = std::make_unique<dm::volume>(*c.a.data, *c.a.meta, o);
  const uint64_t after = resident_bytes();
  const uint64_t grown = after > before ? after - before : 0;
  // A vector of them (112 bytes each) would have taken 112 MiB here.
  EXPECT_LT(grown, uint64_t{24} << 20)
      << "constructing the volume took " << (grown >> 20) << " MiB";
  // And the queue works at its full size: a primary's writes reach the peer.
  v.reset();
  setup_async(c, o);
  app_driver d(c, c.a, 7);
  workload(d, 500, 16);
  ASSERT_TRUE(d.drain());
  ASSERT_TRUE(c.run_until([&] { return queue_empty(c); }));
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

}  // namespace
}  // namespace tandem::test::mirror
