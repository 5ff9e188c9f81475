// SPDX-License-Identifier: Apache-2.0
// The mirror engine end to end: two volumes on RAM backends over in-memory ports with a fake
// clock. Sync writes with overlaps, flush / FUA / discard / write_zeroes; a write completes only
// after the peer acked; disconnect, bitmap resync and its byte count; full sync; a lossy link;
// secondary kill and power loss; primary crash with activity-log replay; failover; split brain;
// refusals; promotion rules; the resync rate controller; writes during a resync.
#include "dataplane/mirror/volume.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include <gtest/gtest.h>

#include "tests/unit/mirror/mirror_harness.h"

namespace tandem::test::mirror {
namespace {

using dm::conn_state;

// Fresh metadata on both nodes, A promoted by force (its data becomes the reference), both
// connected: A sends B a full resync first.
void setup_synced(cluster& c, std::optional<dm::volume_options> oa = std::nullopt,
                  std::optional<dm::volume_options> ob = std::nullopt) {
  c.create(c.a);
  c.create(c.b);
  c.start(c.a, oa);
  c.start(c.b, ob);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }))
      << "A " << dm::to_string(c.a.vol->connection_state()) << " B "
      << dm::to_string(c.b.vol->connection_state()) << "\n"
      << c.a.all_logs() << c.b.all_logs();
}

// Runs `count` random requests at queue depth `qd` over the first `hot` blocks.
void workload(cluster& c, app_driver& d, uint64_t count, size_t qd, uint64_t hot = blocks) {
  uint64_t issued = 0;
  while (issued < count) {
    while (issued < count && d.in_flight() < qd && d.submit_random(hot))
      ++issued;
    d.step();
  }
  (void)c;
}

// Waits for everything in flight, then flushes (a flush covers what completed before it).
void final_flush(app_driver& d) {
  ASSERT_TRUE(d.drain());
  ASSERT_TRUE(d.submit(dm::io_op::flush, 0, 0));
  ASSERT_TRUE(d.drain());
}

TEST(mirror_volume, sync_writes_with_overlaps_leave_identical_replicas) {
  cluster c;
  setup_synced(c);
  const auto s0 = c.a.vol->status();
  EXPECT_EQ(s0.counters.resync_bytes_sent, vol_size);  // the initial full sync
  EXPECT_EQ(s0.gen, c.b.vol->status().gen);

  app_driver d(c, c.a, 11);
  workload(c, d, 1500, 32, 256);  // a 1 MiB hot area: overlaps are frequent
  final_flush(d);
  EXPECT_EQ(d.st().errors, 0u);
  EXPECT_GT(d.st().writes, 500u);
  EXPECT_GT(d.st().discards + d.st().zeroes, 100u);
  EXPECT_GT(d.st().fuas, 50u);
  EXPECT_TRUE(d.matches_last(c.a.data->data()));
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  // Everything flushed is durable on both sides.
  EXPECT_EQ(std::memcmp(c.b.data->durable().data(), c.b.data->data().data(), vol_size), 0);
  const auto s = c.a.vol->status();
  EXPECT_EQ(s.conn, conn_state::connected);
  EXPECT_GT(s.counters.replicated, 1000u);
  EXPECT_EQ(s.counters.acks, s.counters.replicated + s.counters.peer_flushes);
  EXPECT_EQ(s.counters.peer_errors, 0u);
  EXPECT_EQ(s.counters.marked_dirty, 0u);
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_GT(s.counters.al_commits, 0u);
  EXPECT_GT(c.b.vol->status().counters.applied, 1000u);
}

TEST(mirror_volume, reads_return_what_was_written) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 3);
  for (uint64_t k = 0; k < 64; k += 4)
    ASSERT_TRUE(d.submit(dm::io_op::write, k, 3));
  ASSERT_TRUE(d.drain());
  d.reads_racing_ = false;
  ASSERT_TRUE(d.submit(dm::io_op::read, 0, 64));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(d.st().reads, 1u);
  EXPECT_EQ(c.a.vol->status().counters.read_bytes, 64u * blk);
}

TEST(mirror_volume, submit_validation) {
  cluster c;
  setup_synced(c);
  auto buf = make_buf(2 << 20);
  dm::io_request r;
  r.op = dm::io_op::write;
  r.buf = buf.get();
  r.offset = 100;  // misaligned
  r.length = blk;
  EXPECT_EQ(c.a.vol->submit(r), -EINVAL);
  r.offset = vol_size;  // beyond the end
  EXPECT_EQ(c.a.vol->submit(r), -EINVAL);
  r.offset = 0;
  r.length = 2 << 20;  // longer than max_io_bytes
  EXPECT_EQ(c.a.vol->submit(r), -EINVAL);
  r.length = blk;
  r.buf = buf.get() + 8;  // misaligned buffer
  EXPECT_EQ(c.a.vol->submit(r), -EINVAL);
  r.buf = nullptr;
  EXPECT_EQ(c.a.vol->submit(r), -EINVAL);
  r.op = dm::io_op::flush;
  r.length = 0;
  EXPECT_EQ(c.b.vol->submit(r), -EROFS);  // the secondary
  EXPECT_EQ(c.a.vol->submit(r), 0);
  // The queue fills at max_in_flight.
  r.op = dm::io_op::write;
  r.buf = buf.get();
  r.length = blk;
  int accepted = 0, again = 0;
  for (int k = 0; k < 100; ++k) {
    const int rc = c.a.vol->submit(r);
    accepted += rc == 0;
    again += rc == -EAGAIN;
  }
  EXPECT_EQ(accepted, 63);  // 64 slots, one taken by the flush
  EXPECT_EQ(again, 37);
  ASSERT_TRUE(c.run_until([&] {
    dm::io_completion out[128];
    c.a.vol->reap(out);
    return c.a.vol->status().app_in_flight == 0;
  }));
  EXPECT_GT(c.a.vol->status().counters.rejected, 40u);
}

// The peer's ack is what completes a write: with the link cut, the local write is done but the
// application waits; it completes once the link carries the ack.
TEST(mirror_volume, a_write_completes_only_after_the_peer_acked) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 5);
  c.a.raw.cut = c.b.raw.cut = true;
  ASSERT_TRUE(d.submit(dm::io_op::write, 100, 2));
  for (int k = 0; k < 2500; ++k)  // 50 ms: less than the dead-peer timeout
    d.step();
  EXPECT_EQ(d.in_flight(), 1u);
  EXPECT_NE(block_id(c.a.data->data(), 100), 0u);  // written locally
  EXPECT_EQ(block_id(c.b.data->data(), 100), 0u);  // not on the peer
  const uint64_t restored = c.now;
  c.a.raw.cut = c.b.raw.cut = false;
  ASSERT_TRUE(d.drain());
  EXPECT_GE(d.last_completion_ns(), restored);
  EXPECT_EQ(block_id(c.b.data->data(), 100), block_id(c.a.data->data(), 100));
  EXPECT_EQ(c.a.vol->status().counters.marked_dirty, 0u);
}

TEST(mirror_volume, flush_and_fua_are_durable_on_both_sides) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 6);
  ASSERT_TRUE(d.submit(dm::io_op::write, 10, 1));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(block_id(c.b.data->durable(), 10), 0u);  // not yet durable anywhere
  EXPECT_EQ(block_id(c.a.data->durable(), 10), 0u);
  ASSERT_TRUE(d.submit(dm::io_op::flush, 0, 0));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(block_id(c.a.data->durable(), 10), 1u);
  EXPECT_EQ(block_id(c.b.data->durable(), 10), 1u);
  ASSERT_TRUE(d.submit(dm::io_op::write, 20, 1, /*fua=*/true));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(block_id(c.a.data->durable(), 20), 2u);
  EXPECT_EQ(block_id(c.b.data->durable(), 20), 2u);
  // Discard and write_zeroes read back as zeroes on both sides.
  ASSERT_TRUE(d.submit(dm::io_op::discard, 10, 1));
  ASSERT_TRUE(d.submit(dm::io_op::write_zeroes, 20, 1));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(block_id(c.a.data->data(), 10), 0u);
  EXPECT_EQ(block_id(c.b.data->data(), 10), 0u);
  EXPECT_EQ(block_id(c.b.data->data(), 20), 0u);
  EXPECT_TRUE(cluster::identical(c.a, c.b));
}

// Explicit disconnect, writes to ten chunks, reconnect: the bitmap resync sends exactly those
// ten chunks and the replicas converge.
TEST(mirror_volume, disconnect_write_reconnect_resyncs_only_the_dirty_chunks) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 7);
  workload(c, d, 200, 16);
  final_flush(d);
  c.run_for(10'000'000);
  const auto before = c.a.vol->status();
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
  EXPECT_EQ(c.a.vol->connection_state(), conn_state::standalone);
  EXPECT_EQ(c.a.vol->status().dirty_bits, 0u);  // everything was acked and flushed
  const uint64_t chunk_blocks = chunk_bytes / blk;
  for (uint64_t k = 0; k < 10; ++k)
    ASSERT_TRUE(d.submit(dm::io_op::write, (k * 5 + 3) * chunk_blocks + 1, 2));
  ASSERT_TRUE(d.drain());
  auto s = c.a.vol->status();
  EXPECT_EQ(s.dirty_bits, 10u);
  EXPECT_EQ(s.dirty_bytes, 10u * chunk_bytes);
  EXPECT_NE(s.gen.current, before.gen.current);  // a new current id: wrote without the peer
  EXPECT_EQ(s.gen.bitmap, before.gen.current);
  EXPECT_EQ(s.counters.marked_dirty, 10u);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  s = c.a.vol->status();
  EXPECT_EQ(s.counters.resync_bytes_sent - before.counters.resync_bytes_sent, 10u * chunk_bytes);
  EXPECT_EQ(s.last_action, dm::sync_action::source);
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_EQ(s.gen, c.b.vol->status().gen);
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

// A link failure (dead-peer timeout) in the middle of writes: they complete locally, the unacked
// ones and the unflushed extents are marked, and the link's return resyncs them.
TEST(mirror_volume, peer_loss_marks_unacked_writes_and_the_link_return_resyncs) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 8);
  workload(c, d, 300, 16);
  c.a.raw.cut = c.b.raw.cut = true;
  workload(c, d, 100, 16);
  ASSERT_TRUE(d.drain(2'000'000'000));  // completes once the peer is declared dead
  EXPECT_EQ(c.a.vol->connection_state(), conn_state::connecting);
  EXPECT_GT(c.a.vol->status().dirty_bits, 0u);
  EXPECT_GT(c.a.vol->status().counters.session_losses, 0u);
  workload(c, d, 100, 16);  // still disconnected
  c.a.raw.cut = c.b.raw.cut = false;
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  workload(c, d, 100, 16);
  final_flush(d);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

TEST(mirror_volume, full_sync_of_a_new_empty_peer) {
  cluster c;
  c.create(c.a);
  c.start(c.a);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  app_driver d(c, c.a, 9);
  workload(c, d, 400, 16);  // standalone: only A has it
  final_flush(d);
  EXPECT_FALSE(d.matches_last(std::span<const uint8_t>(std::vector<uint8_t>(vol_size))));
  c.create(c.b);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::sync_target); }));
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::inconsistent);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  const auto s = c.a.vol->status();
  EXPECT_EQ(s.last_action, dm::sync_action::full_source);
  EXPECT_EQ(s.counters.resync_bytes_sent, vol_size);
  EXPECT_EQ(c.b.vol->status().counters.resync_bytes_received, vol_size);
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date);
  EXPECT_EQ(s.gen, c.b.vol->status().gen);
  EXPECT_TRUE(cluster::identical(c.a, c.b));
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  // The target's end is durable: the resynced data and the clean metadata.
  EXPECT_EQ(std::memcmp(c.b.data->durable().data(), c.b.data->data().data(), vol_size), 0);
}

TEST(mirror_volume, sync_writes_over_a_lossy_link) {
  cluster c;
  dp::fault_profile f;
  f.drop = 0.03;
  f.duplicate = 0.02;
  f.reorder = 0.03;
  f.corrupt = 0.005;
  f.delay_ns = 50'000;
  f.jitter_ns = 30'000;
  c.with_faults(c.a, f, 21);
  c.with_faults(c.b, f, 22);
  setup_synced(c);
  app_driver d(c, c.a, 12);
  workload(c, d, 600, 24, 512);
  final_flush(d);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_GT(c.a.faults->faults().tx.dropped, 0u);
  EXPECT_GT(c.a.vol->status().transport.retransmitted, 0u);
}

// Backends with a tiny queue (submissions refused, retried next poll) that complete in a
// shuffled order, on both sides, through a resync and a random workload.
TEST(mirror_volume, small_shuffled_backend_queues_delay_but_lose_nothing) {
  cluster c;
  c.create(c.a, vol_size, 0x5a, 3, 77);
  c.create(c.b, vol_size, 0x5a, 3, 78);
  c.start(c.a);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  app_driver d(c, c.a, 15);
  workload(c, d, 400, 32, 256);
  final_flush(d);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  EXPECT_GT(c.a.data->stats().queue_full, 0u);
  EXPECT_GT(c.b.data->stats().queue_full, 0u);
}

// kill -9 of the secondary's process between completions: its disk keeps everything (page
// cache), so every write completed to the application is on the promoted secondary.
TEST(mirror_volume, secondary_kill_keeps_every_completed_write) {
  for (uint64_t round = 0; round < 2; ++round) {
    cluster c;
    setup_synced(c);
    app_driver d(c, c.a, 100 + round);
    workload(c, d, 200 + 150 * round, 24, 1024);
    c.kill(c.b);
    c.b.data->crash(1.0);  // a process kill loses nothing the kernel had
    EXPECT_TRUE(d.survived(c.b.data->data(), /*all_completed=*/true)) << "round " << round;
    // Fail over: the old primary is gone too; the secondary comes back and is promoted.
    c.kill(c.a);
    c.reopen(c.b);
    c.start(c.b);
    EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date);
    ASSERT_EQ(c.b.vol->promote(), 0) << c.b.vol->last_error();
    EXPECT_TRUE(d.survived(c.b.data->data(), true));
  }
}

// Power loss of the secondary: every write completed and then covered by a completed flush, or
// written with FUA, survives; whatever else survived block by block is some write's data.
TEST(mirror_volume, secondary_power_loss_keeps_flushed_and_fua_writes) {
  for (uint64_t round = 0; round < 3; ++round) {
    cluster c;
    setup_synced(c);
    app_driver d(c, c.a, 200 + round);
    workload(c, d, 300 + 100 * round, 24, 1024);
    c.kill(c.b);
    c.b.data->crash(0.5, 300 + round);
    EXPECT_TRUE(d.survived(c.b.data->data(), /*all_completed=*/false)) << "round " << round;
    // The primary marked what the secondary acked but had not flushed (and what it never
    // acked): when the secondary comes back, the resync restores every block it lost.
    workload(c, d, 50, 8);
    c.reopen(c.b);
    c.start(c.b);
    ASSERT_EQ(c.b.vol->connect(), 0);
    ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.b.all_logs();
    EXPECT_EQ(c.b.vol->status().last_action, dm::sync_action::target);
    final_flush(d);
    EXPECT_TRUE(cluster::identical(c.a, c.b))
        << "round " << round << " block " << cluster::first_difference(c.a, c.b);
    EXPECT_TRUE(d.matches_last(c.b.data->data()));
  }
}

// Writes the secondary acked but never flushed are lost by its power failure; the primary knows
// which extents held writes not yet covered by a peer flush and resyncs them when it returns.
TEST(mirror_volume, writes_acked_but_unflushed_on_a_failed_secondary_are_resynced) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 211);
  const uint64_t ext_blocks = ext_bytes / blk;
  ASSERT_TRUE(d.submit(dm::io_op::write, 3 * ext_blocks + 5, 4));
  ASSERT_TRUE(d.submit(dm::io_op::write, 9 * ext_blocks + 1, 1));
  ASSERT_TRUE(d.drain());  // acked by B: in its volatile cache only
  EXPECT_EQ(block_id(c.b.data->durable(), 3 * ext_blocks + 5), 0u);
  c.kill(c.b);
  c.b.data->crash(0.0);  // power loss: every unflushed block is gone
  EXPECT_EQ(block_id(c.b.data->data(), 3 * ext_blocks + 5), 0u);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::connecting); }));
  // A marked both extents, nothing else.
  EXPECT_EQ(c.a.vol->status().dirty_bytes, 2u * ext_bytes);
  c.reopen(c.b);
  c.start(c.b);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  EXPECT_EQ(c.a.vol->status().counters.resync_bytes_sent, vol_size + 2u * ext_bytes);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

// A planned disconnect of the secondary right after unflushed writes: it flushes what it
// acknowledged and says so, the primary marks nothing, and the secondary's power loss afterwards
// loses none of those writes.
TEST(mirror_volume, a_planned_disconnect_of_the_secondary_costs_no_resync) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 213);
  const uint64_t ext_blocks = ext_bytes / blk;
  ASSERT_TRUE(d.submit(dm::io_op::write, 3 * ext_blocks + 5, 4));
  ASSERT_TRUE(d.submit(dm::io_op::write, 9 * ext_blocks + 1, 1));
  ASSERT_TRUE(d.drain());  // acked by B: in its volatile cache only
  EXPECT_EQ(block_id(c.b.data->durable(), 3 * ext_blocks + 5), 0u);
  ASSERT_EQ(c.b.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] {
    return c.b.vol->connection_state() == conn_state::standalone &&
           c.in_state(c.a, conn_state::connecting);
  })) << c.b.all_logs();
  EXPECT_TRUE(c.b.logged("disconnected (what this node acknowledged is durable)"))
      << c.b.all_logs();
  EXPECT_TRUE(c.a.logged("the peer is leaving")) << c.a.all_logs();
  EXPECT_EQ(c.a.vol->status().dirty_bits, 0u);
  EXPECT_EQ(c.a.vol->status().counters.marked_dirty, 0u);
  c.b.data->crash(0.0);  // power loss after the disconnect: nothing acknowledged is lost
  EXPECT_NE(block_id(c.b.data->data(), 3 * ext_blocks + 5), 0u);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

// A planned disconnect on the primary sends one more flush and leaves once the peer
// acknowledged it: nothing is marked, and reconnecting resyncs nothing.
TEST(mirror_volume, a_planned_disconnect_of_the_primary_costs_no_resync) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 214);
  workload(c, d, 200, 16);
  ASSERT_TRUE(d.drain());  // no final flush: extents are written since the last peer flush
  const auto before = c.a.vol->status();
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.a.vol->connection_state() == conn_state::standalone; }))
      << c.a.all_logs();
  EXPECT_TRUE(c.a.logged("disconnected (the peer flushed what it acknowledged)")) << c.a.all_logs();
  EXPECT_EQ(c.a.vol->status().dirty_bits, 0u);
  EXPECT_EQ(c.a.vol->status().counters.marked_dirty, 0u);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  EXPECT_EQ(c.a.vol->status().counters.resync_bytes_sent, before.counters.resync_bytes_sent);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// The failover: the primary dies, the secondary disconnects and is promoted at once, without
// waiting for a leave the dead peer will never confirm.
TEST(mirror_volume, a_failover_promotes_right_after_the_disconnect) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 216);
  workload(c, d, 50, 8);
  c.kill(c.a);
  ASSERT_EQ(c.b.vol->disconnect(), 0);
  ASSERT_EQ(c.b.vol->promote(), 0) << c.b.vol->last_error();
  EXPECT_EQ(c.b.vol->role(), dv::role::primary);
  EXPECT_EQ(c.b.vol->connection_state(), conn_state::standalone);
  EXPECT_TRUE(c.b.logged("disconnected (promoted before the peer confirmed)")) << c.b.all_logs();
}

// A secondary that cannot flush leaves without the promise: the primary marks as before.
TEST(mirror_volume, a_planned_disconnect_without_a_working_flush_marks_as_before) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 215);
  const uint64_t ext_blocks = ext_bytes / blk;
  ASSERT_TRUE(d.submit(dm::io_op::write, 3 * ext_blocks + 5, 4));
  ASSERT_TRUE(d.drain());
  c.b.data->fail_all(EIO);  // its disk dies: the leave flush fails
  ASSERT_EQ(c.b.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::connecting); }));
  EXPECT_TRUE(c.b.logged("the data device failed a flush")) << c.b.all_logs();
  EXPECT_EQ(c.a.vol->status().dirty_bytes, ext_bytes);
}

// After a flush the peer acknowledged, a lost peer costs no resync at all.
TEST(mirror_volume, a_peer_flush_bounds_what_a_lost_peer_costs) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 212);
  workload(c, d, 100, 8);
  final_flush(d);
  c.kill(c.b);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::connecting); }));
  EXPECT_EQ(c.a.vol->status().dirty_bits, 0u);
  EXPECT_EQ(c.a.vol->status().counters.marked_dirty, 0u);
}

// Extents leave the activity log only once the writes in them are durable: a power loss of the
// primary afterwards loses nothing the replay would not cover.
TEST(mirror_volume, evicted_extents_are_flushed_before_they_leave_the_activity_log) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 213);
  const uint64_t ext_blocks = ext_bytes / blk;
  for (uint64_t e = 0; e < 8; ++e)  // fills the 8 slots; no flush anywhere
    ASSERT_TRUE(d.submit(dm::io_op::write, e * ext_blocks + 2, 2));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(block_id(c.a.data->durable(), 2), 0u);
  for (uint64_t e = 8; e < 16; ++e)  // evicts the first eight
    ASSERT_TRUE(d.submit(dm::io_op::write, e * ext_blocks + 2, 2));
  ASSERT_TRUE(d.drain());
  for (uint64_t e = 0; e < 8; ++e)
    EXPECT_NE(block_id(c.a.data->durable(), e * ext_blocks + 2), 0u) << "extent " << e;
  c.kill(c.a);
  c.a.data->crash(0.0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
  c.reopen(c.a);
  c.start(c.a);
  EXPECT_EQ(c.a.vol->status().dirty_bytes, 8u * ext_bytes);  // the eight hot extents
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// The primary crashes (process and power) in the middle of writes, then comes back: its
// activity log is replayed into the bitmap, and because the secondary was not promoted it is
// the source for exactly those extents; the replicas converge.
TEST(mirror_volume, primary_crash_replays_the_activity_log_and_converges) {
  for (uint64_t round = 0; round < 2; ++round) {
    cluster c;
    setup_synced(c);
    app_driver d(c, c.a, 300 + round);
    workload(c, d, 300 + 100 * round, 24);
    c.kill(c.a);
    c.a.data->crash(0.5, 7 + round);
    EXPECT_TRUE(d.survived(c.a.data->data(), false)) << "round " << round;
    ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
    c.reopen(c.a);
    ASSERT_TRUE(c.a.meta->needs_replay());
    c.start(c.a);
    EXPECT_TRUE(c.a.logged("crashed while primary")) << c.a.all_logs();
    EXPECT_EQ(c.a.vol->role(), dv::role::secondary);
    const auto s0 = c.a.vol->status();
    EXPECT_TRUE(s0.flags & dv::flag_crashed_primary);
    EXPECT_GT(s0.dirty_bits, 0u);
    // The replay bounds the resync: at most al_slots extents.
    EXPECT_LE(s0.dirty_bytes, 8u * ext_bytes);
    ASSERT_EQ(c.a.vol->connect(), 0);
    ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs();
    const auto s = c.a.vol->status();
    EXPECT_EQ(s.last_action, dm::sync_action::source);
    EXPECT_EQ(s.counters.resync_bytes_sent, s0.dirty_bytes);
    EXPECT_FALSE(s.flags & dv::flag_crashed_primary);
    EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
    // And it can be primary again, replicating.
    ASSERT_EQ(c.a.vol->promote(), 0);
    app_driver d2(c, c.a, 400 + round);
    workload(c, d2, 100, 16);
    final_flush(d2);
    EXPECT_TRUE(cluster::identical(c.a, c.b));
  }
}

// Fail-over after a primary crash: the secondary is promoted and writes; the old primary comes
// back, its replayed extents join the new primary's bitmap, and it becomes the target.
TEST(mirror_volume, failover_then_the_old_primary_rejoins_as_target) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 31);
  workload(c, d, 400, 24);
  c.kill(c.a);
  c.a.data->crash(0.5, 3);
  // Not one write acknowledged to the application is missing on the secondary.
  EXPECT_TRUE(d.survived(c.b.data->data(), /*all_completed=*/true));
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
  ASSERT_EQ(c.b.vol->promote(), 0);
  app_driver db_(c, c.b, 32);
  workload(c, db_, 200, 16);
  final_flush(db_);
  std::vector<uint8_t> b_image(c.b.data->data().begin(), c.b.data->data().end());
  c.reopen(c.a);
  c.start(c.a);
  const uint64_t a_replayed = c.a.vol->status().dirty_bytes;
  EXPECT_GT(a_replayed, 0u);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs() << c.b.all_logs();
  EXPECT_EQ(c.a.vol->status().last_action, dm::sync_action::target);
  // The source's data is untouched; the target took the union of both bitmaps.
  EXPECT_EQ(std::memcmp(c.b.data->data().data(), b_image.data(), vol_size), 0);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_GE(c.b.vol->status().counters.resync_bytes_sent, a_replayed);
  EXPECT_EQ(c.a.vol->status().gen, c.b.vol->status().gen);
}

TEST(mirror_volume, split_brain_is_detected_and_nothing_is_resynced) {
  cluster c;
  setup_synced(c);
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
  ASSERT_EQ(c.b.vol->promote(), 0);
  app_driver da(c, c.a, 41), dbb(c, c.b, 42);
  ASSERT_TRUE(da.submit(dm::io_op::write, 0, 4));
  ASSERT_TRUE(dbb.submit(dm::io_op::write, 100, 4));
  ASSERT_TRUE(da.drain());
  ASSERT_TRUE(dbb.drain());
  std::vector<uint8_t> a_image(c.a.data->data().begin(), c.a.data->data().end());
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] {
    return c.in_state(c.a, conn_state::split_brain) && c.in_state(c.b, conn_state::split_brain);
  })) << c.a.all_logs()
      << c.b.all_logs();
  c.run_for(100'000'000);
  EXPECT_TRUE(c.in_state(c.a, conn_state::split_brain));
  const auto sa = c.a.vol->status(), sb = c.b.vol->status();
  EXPECT_NE(sa.reason.find("split brain"), std::string::npos) << sa.reason;
  EXPECT_TRUE(c.a.logged("split brain")) << c.a.all_logs();
  EXPECT_EQ(sa.counters.resync_bytes_sent, vol_size);  // only the initial full sync
  EXPECT_EQ(sb.counters.resync_bytes_sent, 0u);
  EXPECT_EQ(std::memcmp(c.a.data->data().data(), a_image.data(), vol_size), 0);
  EXPECT_FALSE(cluster::identical(c.a, c.b));
  // Both keep writing locally meanwhile.
  ASSERT_TRUE(da.submit(dm::io_op::write, 8, 1));
  ASSERT_TRUE(da.drain());
  EXPECT_EQ(c.a.vol->status().counters.replicated, sa.counters.replicated);
}

TEST(mirror_volume, promotion_of_inconsistent_data_is_refused_unless_forced) {
  cluster c;
  c.create(c.a);
  c.start(c.a);
  EXPECT_EQ(c.a.vol->disk(), dv::disk_state::inconsistent);
  EXPECT_EQ(c.a.vol->promote(), -EROFS);
  EXPECT_NE(c.a.vol->last_error().find("inconsistent, not UpToDate"), std::string::npos)
      << c.a.vol->last_error();
  EXPECT_EQ(c.a.vol->role(), dv::role::secondary);
  EXPECT_EQ(c.a.vol->promote(true), 0);
  EXPECT_EQ(c.a.vol->role(), dv::role::primary);
  EXPECT_EQ(c.a.vol->disk(), dv::disk_state::up_to_date);
  EXPECT_NE(c.a.vol->status().gen.current, 0u);
}

TEST(mirror_volume, a_sync_target_refuses_promotion_and_the_peer_cannot_be_promoted_twice) {
  cluster c;
  c.create(c.a);
  c.create(c.b);
  auto oa = c.default_opt(c.a);
  oa.resync_rate = 2u << 20;  // slow, so the resync lasts
  c.start(c.a, oa);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::sync_target); }));
  c.run_for(200'000'000, 100'000);
  EXPECT_TRUE(c.in_state(c.b, conn_state::sync_target));
  EXPECT_EQ(c.b.vol->promote(), -EROFS);
  EXPECT_EQ(c.b.vol->role(), dv::role::secondary);
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::inconsistent);
  EXPECT_TRUE(c.b.vol->status().flags & dv::flag_resync_in_progress);
  EXPECT_EQ(c.b.vol->promote(true), -EBUSY);  // and A is primary
  // A demotes: B may be promoted by force now; the pair decides again.
  EXPECT_EQ(c.a.vol->demote(), 0);
  c.run_for(1'000'000);
  EXPECT_EQ(c.b.vol->promote(true), 0);
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date);
}

TEST(mirror_volume, a_different_volume_size_is_refused_with_a_clear_error) {
  cluster c;
  c.create(c.a);
  c.create(c.b, vol_size / 2);
  c.start(c.a);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] {
    return c.in_state(c.a, conn_state::refused) && c.in_state(c.b, conn_state::refused);
  }));
  const auto s = c.a.vol->status();
  EXPECT_NE(s.reason.find("volume size differs"), std::string::npos) << s.reason;
  EXPECT_TRUE(c.a.logged("refused node 2 at 10.0.0.2:7789")) << c.a.all_logs();
  EXPECT_NE(c.b.vol->status().reason.find("volume size differs"), std::string::npos);
  EXPECT_EQ(s.counters.resync_bytes_sent, 0u);
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::inconsistent);
  // The primary keeps working (locally, recording what the peer lacks).
  app_driver d(c, c.a, 51);
  ASSERT_TRUE(d.submit(dm::io_op::write, 0, 1));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(c.a.vol->status().counters.replicated, 0u);
}

TEST(mirror_volume, another_volumes_identity_is_refused) {
  cluster c;
  c.create(c.a);
  c.create(c.b, vol_size, 0x77);  // another uuid
  c.start(c.a);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] {
    return c.in_state(c.a, conn_state::refused) && c.in_state(c.b, conn_state::refused);
  }));
  EXPECT_NE(c.a.vol->status().reason.find("holds another volume"), std::string::npos)
      << c.a.vol->status().reason;
  EXPECT_EQ(c.b.vol->status().counters.resync_bytes_received, 0u);
}

// The rate controller: bytes per simulated second at the configured rate, and the minimum rate
// while the application writes.
TEST(mirror_volume, resync_rate_limit_and_yield_to_application_writes) {
  cluster c;
  c.create(c.a);
  c.create(c.b);
  auto oa = c.default_opt(c.a);
  oa.resync_rate = 1u << 20;
  oa.resync_min_rate = 256u << 10;
  oa.resync_chunk = 64u << 10;
  oa.app_active_ns = 50'000'000;
  c.start(c.a, oa);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::sync_source); }));
  const uint64_t chunk = oa.resync_chunk;
  auto done = [&] { return c.a.vol->status().resync_done_bytes; };
  c.run_for(100'000'000, 100'000);  // the pipeline fills
  uint64_t b0 = done();
  c.run_for(1'000'000'000, 100'000);
  uint64_t b1 = done();
  EXPECT_GE(b1 - b0, (1u << 20) - 2 * chunk);
  EXPECT_LE(b1 - b0, (1u << 20) + 2 * chunk);
  EXPECT_EQ(c.a.vol->status().resync_limit, 1u << 20);
  c.run_for(1'000'000'000, 100'000);
  const uint64_t b2 = done();
  EXPECT_GE(b2 - b1, (1u << 20) - 2 * chunk);
  EXPECT_LE(b2 - b1, (1u << 20) + 2 * chunk);
  EXPECT_GT(c.a.vol->status().resync_rate, 3u << 18);
  // The application writes: the resync backs off to 256 KiB/s.
  app_driver d(c, c.a, 61);
  const uint64_t end = c.now + 1'000'000'000;
  const uint64_t w0 = done();
  while (c.now < end) {
    if (d.in_flight() < 4) d.submit(dm::io_op::write, d.rng().next() % blocks, 1);
    d.step(100'000);
  }
  const uint64_t w1 = done();
  EXPECT_LE(w1 - w0, (256u << 10) + 2 * chunk);
  EXPECT_GE(w1 - w0, (256u << 10) - 2 * chunk);
  EXPECT_EQ(c.a.vol->status().resync_limit, 256u << 10);
  ASSERT_TRUE(d.drain());
  // Pause on the target: nothing moves; resume: it finishes.
  c.b.vol->pause_resync();
  c.run_for(200'000'000, 100'000);
  const uint64_t p0 = done();
  c.run_for(500'000'000, 100'000);
  EXPECT_EQ(done(), p0);
  EXPECT_TRUE(c.a.vol->status().resync_paused_by_peer);
  c.b.vol->resume_resync();
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }, 20'000'000'000ULL, 100'000));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// Application writes during a bitmap resync, overlapping the chunks being resynced: the newer
// data always lands last, and the replicas end identical.
TEST(mirror_volume, writes_during_a_resync_stay_correct) {
  cluster c;
  auto oa = c.default_opt(c.a);
  oa.resync_min_rate = 32u << 20;  // the application writes throughout: keep the test short
  setup_synced(c, oa);
  app_driver d(c, c.a, 71);
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  workload(c, d, 800, 32);  // disconnected: lots of dirty chunks
  final_flush(d);
  const uint64_t dirty = c.a.vol->status().dirty_bytes;
  EXPECT_GT(dirty, 1u << 20);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::sync_source); }));
  // Write while the resync runs (at min rate: the application is active), one request every
  // 100 us, up to 16 in flight.
  uint64_t during = 0;
  for (uint64_t k = 0; c.a.vol->connection_state() == conn_state::sync_source; ++k) {
    if (k % 5 == 0 && d.in_flight() < 16 && d.submit_random()) ++during;
    d.step();
  }
  EXPECT_GT(during, 500u);
  workload(c, d, 200, 16);
  final_flush(d);
  ASSERT_TRUE(c.both_connected());
  EXPECT_GE(c.a.vol->status().counters.resync_bytes_sent, vol_size + dirty);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

TEST(mirror_volume, automatic_resync_off_waits_for_the_operator) {
  cluster c;
  setup_synced(c);
  // B restarts with automatic resync off.
  app_driver d(c, c.a, 81);
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  workload(c, d, 50, 8);
  final_flush(d);
  auto o = c.default_opt(c.b);
  o.auto_resync = false;
  c.kill(c.b);
  c.reopen(c.b);
  c.start(c.b, o);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::sync_pending); }));
  c.run_for(100'000'000);
  EXPECT_TRUE(c.in_state(c.a, conn_state::sync_pending));
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::outdated);
  EXPECT_EQ(c.b.vol->request_resync(false), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  EXPECT_TRUE(cluster::identical(c.a, c.b));
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date);
}

TEST(mirror_volume, operator_full_resync_and_role_switchover) {
  cluster c;
  setup_synced(c);
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  EXPECT_EQ(c.a.vol->request_resync(true), -ENOTCONN);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  const uint64_t sent0 = c.a.vol->status().counters.resync_bytes_sent;
  ASSERT_EQ(c.a.vol->request_resync(true), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::sync_source); }));
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  EXPECT_EQ(c.a.vol->status().counters.resync_bytes_sent - sent0, vol_size);
  // Switchover: A demotes, B promotes and replicates to A.
  ASSERT_EQ(c.a.vol->demote(), 0);
  c.run_for(1'000'000);
  ASSERT_EQ(c.b.vol->promote(), 0) << c.b.vol->last_error();
  app_driver d(c, c.b, 91);
  workload(c, d, 300, 16);
  final_flush(d);
  EXPECT_TRUE(c.both_connected());
  EXPECT_TRUE(cluster::identical(c.a, c.b));
  EXPECT_TRUE(d.matches_last(c.a.data->data()));
  EXPECT_GT(c.b.vol->status().counters.replicated, 100u);
  // A primary cannot be promoted twice.
  EXPECT_EQ(c.a.vol->promote(), -EBUSY);
  // Clean shutdown of both.
  EXPECT_EQ(c.b.vol->shutdown(), 0);
  EXPECT_EQ(c.a.vol->shutdown(), 0);
  c.kill(c.a);
  c.reopen(c.a);
  EXPECT_FALSE(c.a.meta->needs_replay());
}

// The activity log through a metadata backend (io_uring on the metadata file): records are
// written asynchronously, extents are evicted under a wide workload, and a crash replays them.
TEST(mirror_volume, activity_log_through_meta_io_and_replay) {
  cluster c;
  c.create(c.a);
  c.create(c.b);
  db::uring_options uo;
  uo.path = c.a.meta_path;
  uo.mode = db::io_mode::buffered;
  c.a.meta_io = std::make_unique<db::uring_backend>(uo);
  auto oa = c.default_opt(c.a);
  oa.meta_io = c.a.meta_io.get();
  c.start(c.a, oa);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  app_driver d(c, c.a, 101);
  // io_uring completes for real: give it wall-clock time between steps.
  uint64_t issued = 0;
  while (issued < 400) {
    while (issued < 400 && d.in_flight() < 16 && d.submit_random())
      ++issued;
    c.a.meta_io->wait(0, std::chrono::microseconds(50));
    d.step();
  }
  ASSERT_TRUE(c.run_until([&] {
    c.a.meta_io->wait(0, std::chrono::microseconds(50));
    d.reap();
    return d.in_flight() == 0;
  }));
  const auto s = c.a.vol->status();
  EXPECT_GT(s.counters.al_commits, 5u);
  EXPECT_GT(s.counters.al_waits, 5u);
  EXPECT_EQ(s.counters.local_errors, 0u);
  EXPECT_TRUE(cluster::identical(c.a, c.b));
  c.kill(c.a);
  c.a.data->crash(0.0);
  c.reopen(c.a);
  ASSERT_TRUE(c.a.meta->needs_replay());
  c.start(c.a);
  EXPECT_GT(c.a.vol->status().dirty_bits, 0u);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// ---- Checksum resync ------------------------------------------------------------------------

// The disk under B changed behind the engine's back (bit rot, a restored backup): `n` blocks,
// every `stride`-th from `first`, get other contents.
void rot_blocks(node& n, uint64_t first, uint64_t stride, uint64_t count) {
  auto image = n.data->data();
  auto* bytes = const_cast<uint8_t*>(image.data());
  for (uint64_t k = 0; k < count; ++k)
    fill_block(bytes + (first + k * stride) * blk, 0xbad0000 + k, first + k * stride);
}

TEST(mirror_volume, checksum_resync_of_identical_volumes_sends_only_digests) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 101);
  workload(c, d, 300, 16);
  final_flush(d);
  ASSERT_TRUE(cluster::identical(c.a, c.b));
  const auto s0 = c.a.vol->status();
  const auto b0 = c.b.vol->status();
  ASSERT_EQ(c.a.vol->request_resync(true, true), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::sync_source); }));
  EXPECT_TRUE(c.a.vol->status().resync_checksum);
  EXPECT_TRUE(c.b.vol->status().resync_checksum);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs();
  const auto s = c.a.vol->status();
  const auto b = c.b.vol->status();
  EXPECT_EQ(s.counters.resync_bytes_sent - s0.counters.resync_bytes_sent, 0u);
  EXPECT_EQ(s.counters.resync_bytes_same - s0.counters.resync_bytes_same, vol_size);
  EXPECT_EQ(s.counters.resync_digest_chunks - s0.counters.resync_digest_chunks,
            vol_size / (256u << 10));
  EXPECT_EQ(b.counters.resync_bytes_same - b0.counters.resync_bytes_same, vol_size);
  EXPECT_EQ(b.counters.resync_bytes_received, b0.counters.resync_bytes_received);
  // Digests of 16 bytes per 4 KiB block plus headers: well under 1% of the volume on the wire.
  const uint64_t wire = s.transport.sent_bytes;
  EXPECT_LT(static_cast<double>(wire), 0.01 * static_cast<double>(vol_size)) << wire;
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_EQ(b.disk, dv::disk_state::up_to_date);
  EXPECT_EQ(s.gen, b.gen);
  EXPECT_FALSE(s.resync_checksum);  // over
  EXPECT_TRUE(cluster::identical(c.a, c.b));
}

TEST(mirror_volume, checksum_resync_repairs_scattered_differences_block_by_block) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 102);
  workload(c, d, 300, 16);
  final_flush(d);
  // 40 single blocks, 7 blocks apart (never adjacent), and one run of 5 adjacent blocks.
  rot_blocks(c.b, 3, 7, 40);
  rot_blocks(c.b, 700, 1, 5);
  ASSERT_FALSE(cluster::identical(c.a, c.b));
  const auto s0 = c.a.vol->status();
  ASSERT_EQ(c.a.vol->request_resync(true, true), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::sync_source); }));
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs();
  const auto s = c.a.vol->status();
  EXPECT_EQ(s.counters.resync_bytes_sent - s0.counters.resync_bytes_sent, 45u * blk);
  EXPECT_EQ(s.counters.resync_bytes_same - s0.counters.resync_bytes_same, vol_size - 45u * blk);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

// The checksum option on the target alone is enough; a bitmap resync of chunks in which only a
// few blocks changed sends those blocks.
TEST(mirror_volume, checksum_option_on_either_side_makes_a_bitmap_resync_send_changed_blocks) {
  cluster c;
  auto ob = c.default_opt(c.b);
  ob.resync_checksum = true;
  setup_synced(c, std::nullopt, ob);
  app_driver d(c, c.a, 103);
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
  const uint64_t chunk_blocks = chunk_bytes / blk;
  for (uint64_t k = 0; k < 10; ++k)
    ASSERT_TRUE(d.submit(dm::io_op::write, (k * 5 + 3) * chunk_blocks + 1, 2));
  ASSERT_TRUE(d.drain());
  EXPECT_EQ(c.a.vol->status().dirty_bytes, 10u * chunk_bytes);
  const auto s0 = c.a.vol->status();
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }));
  const auto s = c.a.vol->status();
  EXPECT_EQ(s.counters.resync_bytes_sent - s0.counters.resync_bytes_sent, 20u * blk);
  EXPECT_EQ(s.counters.resync_bytes_same - s0.counters.resync_bytes_same,
            10u * chunk_bytes - 20u * blk);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

// Writes land on chunks between their digests and their data (the re-read path), over a lossy
// link and a target whose disk differs in scattered blocks.
TEST(mirror_volume, writes_during_a_checksum_resync_stay_correct) {
  cluster c;
  dp::fault_profile f;
  f.drop = 0.02;
  f.reorder = 0.02;
  f.delay_ns = 50'000;
  c.with_faults(c.a, f, 31);
  c.with_faults(c.b, f, 32);
  auto oa = c.default_opt(c.a);
  oa.resync_min_rate = 16u << 20;
  oa.resync_checksum = true;
  setup_synced(c, oa);
  app_driver d(c, c.a, 104);
  workload(c, d, 200, 16);
  final_flush(d);
  rot_blocks(c.b, 1, 3, 300);
  ASSERT_EQ(c.a.vol->request_resync(true), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::sync_source); }));
  uint64_t during = 0;
  for (uint64_t k = 0; c.a.vol->connection_state() == conn_state::sync_source; ++k) {
    if (k % 5 == 0 && d.in_flight() < 16 && d.submit_random()) ++during;
    d.step();
  }
  EXPECT_GT(during, 100u);
  workload(c, d, 200, 16);
  final_flush(d);
  ASSERT_TRUE(c.both_connected()) << c.a.all_logs() << c.b.all_logs();
  const auto s = c.a.vol->status();
  EXPECT_GT(s.counters.resync_bytes_same, 0u);
  EXPECT_GT(s.counters.resync_bytes_sent, 0u);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
}

// A checksum resync that loses its peer halfway resumes from the bitmaps and converges.
TEST(mirror_volume, a_checksum_resync_survives_a_lost_peer) {
  cluster c;
  auto oa = c.default_opt(c.a);
  oa.resync_checksum = true;
  oa.resync_rate = 8u << 20;  // slow enough to cut it halfway
  setup_synced(c, oa);
  rot_blocks(c.b, 0, 2, 500);
  ASSERT_EQ(c.a.vol->request_resync(true), 0);
  ASSERT_TRUE(c.run_until([&] {
    return c.in_state(c.a, conn_state::sync_source) &&
           c.a.vol->status().resync_done_bytes > vol_size / 4;
  }));
  c.a.raw.cut = c.b.raw.cut = true;
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::connecting); }));
  c.a.raw.cut = c.b.raw.cut = false;
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); }, 60'000'000'000ULL))
      << c.a.all_logs() << c.b.all_logs();
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// ---- Online verify -------------------------------------------------------------------------

bool verify_running(node& n) {
  return n.vol->status().verify.running;
}

// Replicas that match, compared while the application writes: no block is reported, on
// either side, and nothing changes.
TEST(mirror_volume, verify_of_matching_replicas_under_writes_reports_nothing) {
  cluster c;
  auto oa = c.default_opt(c.a);
  oa.resync_rate = 16u << 20;  // long enough to overlap the writes
  setup_synced(c, oa);
  app_driver d(c, c.a, 111);
  workload(c, d, 200, 16);
  final_flush(d);
  ASSERT_EQ(c.a.vol->request_verify(false), 0) << c.a.vol->last_error();
  EXPECT_TRUE(verify_running(c.a));
  uint64_t during = 0;
  for (uint64_t k = 0; verify_running(c.a); ++k) {
    if (k % 5 == 0 && d.in_flight() < 16 && d.submit_random()) ++during;
    d.step();
  }
  EXPECT_GT(during, 50u);
  final_flush(d);
  const auto s = c.a.vol->status();
  EXPECT_FALSE(s.verify.interrupted);
  EXPECT_EQ(s.verify.done_bytes, vol_size);
  EXPECT_EQ(s.verify.total_bytes, vol_size);
  EXPECT_EQ(s.verify.differing_blocks, 0u);
  EXPECT_EQ(s.counters.verifies_completed, 1u);
  EXPECT_EQ(s.counters.verify_bytes, vol_size);
  EXPECT_EQ(c.b.vol->status().counters.verify_bytes, vol_size);
  EXPECT_EQ(c.b.vol->status().counters.verify_differing_blocks, 0u);
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_TRUE(c.both_connected());
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// Corruption injected on the secondary is found and named; nothing is changed without repair;
// a verify with repair rewrites exactly those blocks from the primary.
TEST(mirror_volume, verify_finds_corruption_on_the_secondary_and_repairs_it_on_request) {
  cluster c;
  setup_synced(c);
  app_driver d(c, c.a, 112);
  workload(c, d, 200, 16);
  final_flush(d);
  rot_blocks(c.b, 10, 31, 20);  // 20 single blocks
  rot_blocks(c.b, 900, 1, 3);   // and a run of 3
  ASSERT_EQ(c.a.vol->request_verify(false), 0);
  ASSERT_TRUE(c.run_until([&] { return !verify_running(c.a); }));
  auto s = c.a.vol->status();
  EXPECT_EQ(s.verify.differing_blocks, 23u);
  EXPECT_EQ(c.b.vol->status().counters.verify_differing_blocks, 23u);
  ASSERT_EQ(s.verify.ranges, 8u);  // the first eight are kept
  EXPECT_EQ(s.verify.range_offset[0], 10u * blk);
  EXPECT_EQ(s.verify.range_length[0], blk);
  EXPECT_EQ(s.verify.range_offset[1], 41u * blk);
  EXPECT_TRUE(c.a.logged("verify: the peer's data differs at offset 40960, 4096 bytes"))
      << c.a.all_logs();
  EXPECT_EQ(s.dirty_bits, 0u);  // reported only
  EXPECT_FALSE(cluster::identical(c.a, c.b));

  const uint64_t sent0 = s.counters.resync_bytes_sent;
  ASSERT_EQ(c.a.vol->request_verify(true), 0);
  ASSERT_TRUE(c.run_until([&] { return !verify_running(c.a); }));
  EXPECT_EQ(c.a.vol->status().verify.differing_blocks, 23u);
  ASSERT_TRUE(c.run_until([&] {
    return c.both_connected() && c.a.vol->status().counters.resync_bytes_sent > sent0;
  })) << c.a.all_logs();
  s = c.a.vol->status();
  EXPECT_EQ(s.counters.resync_bytes_sent - sent0, 23u * blk);  // only the differing blocks
  EXPECT_EQ(s.dirty_bits, 0u);
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_TRUE(d.matches_last(c.b.data->data()));
  // A second verify finds nothing.
  ASSERT_EQ(c.a.vol->request_verify(false), 0);
  ASSERT_TRUE(c.run_until([&] { return !verify_running(c.a); }));
  EXPECT_EQ(c.a.vol->status().verify.differing_blocks, 0u);
}

TEST(mirror_volume, verify_refusals) {
  cluster c;
  setup_synced(c);
  EXPECT_EQ(c.b.vol->request_verify(false), -EROFS);
  EXPECT_NE(c.b.vol->last_error().find("verify runs on the primary"), std::string::npos);
  EXPECT_EQ(c.a.vol->request_verify(false, 4097), -EINVAL);
  EXPECT_EQ(c.a.vol->request_verify(false, vol_size), -EINVAL);
  EXPECT_EQ(c.a.vol->stop_verify(), -ENOENT);
  ASSERT_EQ(c.a.vol->request_verify(false, vol_size - 8 * blk), 0);
  EXPECT_EQ(c.a.vol->request_verify(false), -EBUSY);
  ASSERT_TRUE(c.run_until([&] { return !verify_running(c.a); }));
  EXPECT_EQ(c.a.vol->status().verify.done_bytes, 8u * blk);
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.a, conn_state::standalone); }));
  EXPECT_EQ(c.a.vol->request_verify(false), -ENOTCONN);
  EXPECT_NE(c.a.vol->last_error().find("standalone"), std::string::npos) << c.a.vol->last_error();
}

// Rate-limited like a resync, paused and resumed with it, stopped by the operator; a stopped
// verify gives back what it held, so replication carries on.
TEST(mirror_volume, verify_pauses_resumes_stops_and_is_rate_limited) {
  cluster c;
  auto oa = c.default_opt(c.a);
  oa.resync_rate = 2u << 20;  // 2 MiB/s: the 4 MiB volume takes about 2 s
  setup_synced(c, oa);
  ASSERT_EQ(c.a.vol->request_verify(false), 0);
  c.run_for(500'000'000);
  const uint64_t half_s = c.a.vol->status().verify.done_bytes;
  EXPECT_GT(half_s, 512u << 10);
  EXPECT_LT(half_s, 2u << 20);  // not faster than the limit (plus one chunk)
  c.a.vol->pause_resync();
  c.run_for(100'000'000);  // what was in flight comes back
  const uint64_t paused_at = c.a.vol->status().verify.done_bytes;
  c.run_for(500'000'000);
  EXPECT_EQ(c.a.vol->status().verify.done_bytes, paused_at);
  EXPECT_TRUE(verify_running(c.a));
  c.a.vol->resume_resync();
  c.run_for(300'000'000);
  EXPECT_GT(c.a.vol->status().verify.done_bytes, paused_at);
  ASSERT_EQ(c.a.vol->stop_verify(), 0);
  EXPECT_TRUE(c.a.vol->status().verify.interrupted);
  EXPECT_TRUE(c.a.logged("verify stopped by the operator")) << c.a.all_logs();
  // Replication goes on with its full credit after the stop.
  app_driver d(c, c.a, 113);
  workload(c, d, 300, 32);
  final_flush(d);
  EXPECT_TRUE(c.both_connected());
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_EQ(c.a.vol->status().peer_in_flight, 0u);
}

// ---- Split-brain policies --------------------------------------------------------------------

// A split brain: A primary, the link goes, B is promoted (later than A) and both write: A
// `a_chunks` chunks from block 0, B `b_chunks` chunks from block 512. B steps down again (or A,
// with `demote_a`) and A reconnects. Returns the images of A and B before the reconnect.
struct split_result {
  std::vector<uint8_t> a_image, b_image;
};
split_result make_split_brain(cluster& c, dp::mirror::split_brain_policy p, uint64_t a_chunks,
                              uint64_t b_chunks, bool demote_a = false) {
  auto oa = c.default_opt(c.a);
  auto ob = c.default_opt(c.b);
  oa.split_brain = ob.split_brain = p;
  setup_synced(c, oa, ob);
  EXPECT_EQ(c.a.vol->disconnect(), 0);
  EXPECT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::connecting); }));
  EXPECT_EQ(c.b.vol->promote(), 0);
  app_driver da(c, c.a, 121), dbb(c, c.b, 122);
  const uint64_t chunk_blocks = chunk_bytes / blk;
  for (uint64_t k = 0; k < a_chunks; ++k)
    EXPECT_TRUE(da.submit(dm::io_op::write, k * chunk_blocks, 2));
  for (uint64_t k = 0; k < b_chunks; ++k)
    EXPECT_TRUE(dbb.submit(dm::io_op::write, 512 + k * chunk_blocks, 2));
  EXPECT_TRUE(da.drain());
  EXPECT_TRUE(dbb.drain());
  EXPECT_EQ(demote_a ? c.a.vol->demote() : c.b.vol->demote(), 0);
  split_result r{{c.a.data->data().begin(), c.a.data->data().end()},
                 {c.b.data->data().begin(), c.b.data->data().end()}};
  EXPECT_EQ(c.a.vol->connect(), 0);
  return r;
}

bool image_is(const node& n, const std::vector<uint8_t>& image) {
  return std::memcmp(n.data->data().data(), image.data(), vol_size) == 0;
}

TEST(mirror_volume, split_brain_policy_discard_younger_primary_keeps_the_older) {
  cluster c;
  const auto before =
      make_split_brain(c, dp::mirror::split_brain_policy::discard_younger_primary, 3, 5);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs() << c.b.all_logs();
  EXPECT_TRUE(image_is(c.a, before.a_image));  // A (primary first) keeps its data
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  const auto sb = c.b.vol->status();
  EXPECT_NE(sb.split_brain.find("resolved: policy discard-younger-primary: this node became "
                                "primary last"),
            std::string::npos)
      << sb.split_brain;
  EXPECT_EQ(sb.counters.split_brains, 1u);
  EXPECT_TRUE(c.b.logged("resolved: policy discard-younger-primary")) << c.b.all_logs();
  EXPECT_EQ(c.b.vol->disk(), dv::disk_state::up_to_date);
}

TEST(mirror_volume, split_brain_policy_discard_least_changes_waits_for_a_primary_to_step_down) {
  cluster c;
  // A (primary) changed less than B: A's changes go, but A is primary.
  const auto before =
      make_split_brain(c, dp::mirror::split_brain_policy::discard_least_changes, 2, 6);
  ASSERT_TRUE(c.run_until([&] {
    return c.in_state(c.a, conn_state::split_brain) && c.in_state(c.b, conn_state::split_brain);
  })) << c.a.all_logs();
  EXPECT_NE(c.a.vol->status().split_brain.find("demote it first"), std::string::npos)
      << c.a.vol->status().split_brain;
  EXPECT_TRUE(image_is(c.a, before.a_image));
  EXPECT_TRUE(image_is(c.b, before.b_image));
  // Once A steps down the policy applies: B's data wins, A's two chunks are overwritten.
  ASSERT_EQ(c.a.vol->demote(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs() << c.b.all_logs();
  EXPECT_TRUE(image_is(c.b, before.b_image));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_NE(c.a.vol->status().split_brain.find("policy discard-least-changes"), std::string::npos);
}

TEST(mirror_volume, split_brain_under_disconnect_waits_for_the_operator_to_name_the_loser) {
  cluster c;
  const auto before = make_split_brain(c, dp::mirror::split_brain_policy::disconnect, 3, 5);
  ASSERT_TRUE(c.run_until([&] { return c.in_state(c.b, conn_state::split_brain); }));
  c.run_for(100'000'000);
  EXPECT_TRUE(c.in_state(c.a, conn_state::split_brain));
  EXPECT_TRUE(image_is(c.a, before.a_image));  // nothing discarded
  EXPECT_TRUE(image_is(c.b, before.b_image));
  EXPECT_NE(c.b.vol->status().split_brain.find("policy disconnect: nothing is discarded"),
            std::string::npos)
      << c.b.vol->status().split_brain;
  EXPECT_EQ(c.a.vol->discard_my_changes(), -EBUSY);  // the primary's changes cannot go
  ASSERT_EQ(c.b.vol->discard_my_changes(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs() << c.b.all_logs();
  EXPECT_TRUE(image_is(c.a, before.a_image));
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  EXPECT_NE(c.b.vol->status().split_brain.find("the operator discards this node's changes"),
            std::string::npos)
      << c.b.vol->status().split_brain;
}

// A verify whose session ends under a read in flight gives nothing back to the dead session
// (the counters stay balanced and the engine idles); one against a peer that offers only one
// write's 64 receive pages sizes its chunks to fit and finishes.
TEST(mirror_volume, verify_survives_a_disconnect_and_a_peer_with_minimal_credit) {
  cluster c;
  setup_synced(c);
  ASSERT_EQ(c.a.vol->request_verify(false), 0);
  c.step();
  ASSERT_EQ(c.a.vol->disconnect(), 0);
  c.run_for(10'000'000);
  EXPECT_FALSE(verify_running(c.a));
  EXPECT_TRUE(c.a.vol->status().verify.interrupted);
  EXPECT_EQ(c.a.vol->status().peer_in_flight, 0u);
  EXPECT_FALSE(c.a.vol->busy());

  cluster m;
  auto oa = m.default_opt(m.a);
  oa.resync_chunk = 1u << 20;
  auto ob = m.default_opt(m.b);
  ob.recv_pages = 64;
  setup_synced(m, oa, ob);
  ASSERT_EQ(m.a.vol->request_verify(false), 0);
  ASSERT_TRUE(m.run_until([&] { return !verify_running(m.a); }));
  EXPECT_EQ(m.a.vol->status().verify.done_bytes, vol_size);
  EXPECT_FALSE(m.a.vol->status().verify.interrupted);
}

// ---- Compressed resync -----------------------------------------------------------------------

// The first half of the node's disk compressible (text-like repeats), the rest random.
void fill_half_compressible(node& n) {
  auto* img = const_cast<uint8_t*>(n.data->data().data());
  const char* text = "tandem mirrors block volumes between nodes. ";
  const size_t tl = std::strlen(text);
  for (size_t k = 0; k < vol_size / 2; ++k)
    img[k] = static_cast<uint8_t>(text[k % tl] + (k / 4096) % 3);
  uint64_t x = 1;
  for (size_t k = vol_size / 2; k < vol_size; k += 8) {
    x = mix(x);
    std::memcpy(img + k, &x, 8);
  }
}

// A, half compressible, promoted with compression on; B fresh: both connect, and the full
// resync runs until they are connected (`link`: a fault profile on what A sends).
void compressed_full_sync(cluster& c, std::optional<dp::fault_profile> link = std::nullopt) {
  c.create(c.a);
  fill_half_compressible(c.a);
  if (link) c.with_faults(c.a, *link, 5);
  auto oa = c.default_opt(c.a);
  oa.compression = dp::compression::igzip;
  c.start(c.a, oa);
  ASSERT_EQ(c.a.vol->promote(true), 0);
  c.create(c.b);
  c.start(c.b);
  ASSERT_EQ(c.a.vol->connect(), 0);
  ASSERT_EQ(c.b.vol->connect(), 0);
  ASSERT_TRUE(c.run_until([&] { return c.both_connected(); })) << c.a.all_logs() << c.b.all_logs();
}

// A full resync with compression on the source: compressible chunks travel compressed and
// arrive intact, incompressible ones travel as they are.
TEST(mirror_volume, compressed_resync_of_compressible_and_random_data) {
  cluster c;
  ASSERT_NO_FATAL_FAILURE(compressed_full_sync(c));
  const auto s = c.a.vol->status();
  EXPECT_EQ(s.counters.resync_bytes_sent, vol_size);
  EXPECT_EQ(s.counters.resync_compressed_bytes, vol_size / 2);  // the random half went raw
  EXPECT_EQ(s.counters.resync_compression_input_bytes, vol_size);
  EXPECT_LT(s.counters.resync_compressed_wire_bytes, vol_size / 20);
  EXPECT_LT(s.transport.sent_bytes, vol_size / 2 + vol_size / 10);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
  // Replication afterwards is unaffected (the driver's model assumes zeroed disks, so only
  // the replicas are compared).
  app_driver d(c, c.a, 131);
  workload(c, d, 200, 16);
  final_flush(d);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

// Over a slow link the send buffer holds each chunk back for many polls: it is compressed once,
// not at every poll (which, before, was a thousand times the volume's bytes through igzip).
TEST(mirror_volume, a_compressed_resync_on_a_slow_link_compresses_each_chunk_once) {
  cluster c;
  dp::fault_profile link;
  link.rate_bps = 20'000'000;
  link.delay_ns = 50'000'000;
  ASSERT_NO_FATAL_FAILURE(compressed_full_sync(c, link));
  const auto s = c.a.vol->status();
  EXPECT_EQ(s.counters.resync_bytes_sent, vol_size);
  EXPECT_EQ(s.counters.resync_compressed_bytes, vol_size / 2);
  EXPECT_EQ(s.counters.resync_compression_input_bytes, vol_size);
  EXPECT_TRUE(cluster::identical(c.a, c.b)) << cluster::first_difference(c.a, c.b);
}

}  // namespace
}  // namespace tandem::test::mirror
