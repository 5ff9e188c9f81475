// SPDX-License-Identifier: Apache-2.0
// The mirror engine: construction, the application path on a primary, the activity log, the
// engine's own flushes, operator commands and status. volume_peer.cc has the peer's side.
#include "dataplane/mirror/volume.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <new>
#include <stdexcept>

#include "dataplane/mirror/volume_impl.h"

namespace tandem::dp::mirror {

// Not zeroed: every byte is written before it is read, and untouched pages stay unallocated.
aligned_buf alloc_aligned(size_t bytes, size_t align) {
  const size_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded == 0 ? align : rounded);
  if (p == nullptr) throw std::bad_alloc();
  return aligned_buf(static_cast<uint8_t*>(p));
}

void* map_zeroed(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

void unmap_zeroed(void* p, size_t bytes) noexcept {
  if (p != nullptr) ::munmap(p, bytes);
}

const char* to_string(conn_state s) noexcept {
  switch (s) {
    case conn_state::standalone:
      return "standalone";
    case conn_state::connecting:
      return "connecting";
    case conn_state::handshake:
      return "handshake";
    case conn_state::connected:
      return "connected";
    case conn_state::sync_pending:
      return "sync_pending";
    case conn_state::sync_source:
      return "sync_source";
    case conn_state::sync_target:
      return "sync_target";
    case conn_state::split_brain:
      return "split_brain";
    case conn_state::refused:
      return "refused";
  }
  return "unknown";
}

const char* to_string(replication_mode m) noexcept {
  return m == replication_mode::async ? "async" : "sync";
}

std::optional<replication_mode> parse_replication_mode(std::string_view s) noexcept {
  if (s == "sync") return replication_mode::sync;
  if (s == "async") return replication_mode::async;
  return std::nullopt;
}

// ---- Construction -------------------------------------------------------------------------

volume::impl::impl(backend::backend& data, vm::metadata_store& meta, const volume_options& opt)
    : data_(data), meta_(meta), opt_(opt) {
  name_ = "mirror node " + std::to_string(opt.node_id);
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument(name_ + " (" + meta.name() + "): " + why);
  };
  if (opt.node_id == 0) bad("node_id must be non-zero");
  if (opt.max_in_flight == 0 || opt.max_in_flight > 65536) bad("max_in_flight must be 1..65536");
  if (opt.recv_slots == 0 || opt.recv_slots > 65536) bad("recv_slots must be 1..65536");
  if (opt.recv_pages < max_io_bytes / recv_page_size || opt.recv_pages > (1u << 20)) {
    bad("recv_pages must be 64..1048576 (16 KiB pages; one write may take 64)");
  }
  if (opt.resync_window == 0 || opt.resync_window > 256) bad("resync_window must be 1..256");
  if (opt.mode == replication_mode::async) {
    // The queue's slot rides in the sequence number below the counter (internal_flush_index
    // is reserved), and the ring must hold the largest write.
    if (opt.async_queue_entries == 0 || opt.async_queue_entries > max_async_queue_entries) {
      bad("async_queue_entries must be 1.." + std::to_string(max_async_queue_entries));
    }
    if (opt.async_queue_bytes < 2 * max_io_bytes || opt.async_queue_bytes > (uint64_t{1} << 40)) {
      bad("async_queue_bytes must be 2 MiB..1 TiB");
    }
    if (const be::backend* h = opt.async_history) {
      const be::geometry& hg = h->geom();
      if (4096 % hg.block_size != 0 || hg.mem_align > 4096) {
        bad("async_history (" + h->name() + ") cannot hold 4 KiB blocks");
      }
      if (hg.size < 2 * max_io_bytes) {
        bad("async_history (" + h->name() + ") has " + std::to_string(hg.size) +
            " bytes, at least 2 MiB are needed");
      }
    }
  } else if (opt.async_history != nullptr) {
    bad("async_history is for async mode");
  }
  const vm::volume_identity& id = meta.identity();
  size_ = id.volume_size;
  block_ = id.params.block_size;
  gran_ = id.params.bitmap_granularity;
  al_slots_ = id.params.al_slots;
  extent_shift_ = static_cast<uint32_t>(std::countr_zero(id.params.al_extent_size));
  const be::geometry& g = data.geom();
  if (g.size < size_) {
    bad("the data backend (" + data.name() + ") has " + std::to_string(g.size) +
        " bytes, the volume " + std::to_string(size_));
  }
  if (g.block_size > block_ || block_ % g.block_size != 0) {
    bad("the data backend's block size " + std::to_string(g.block_size) +
        " does not divide the volume's " + std::to_string(block_));
  }
  if (g.mem_align > recv_page_size) bad("the data backend wants buffers aligned beyond 16 KiB");
  mem_align_ = std::max<uint32_t>(g.mem_align, block_);
  if (opt.resync_chunk < gran_ || opt.resync_chunk > max_io_bytes) {
    bad("resync_chunk must be from the bitmap granularity (" + std::to_string(gran_) +
        ") to 1 MiB");
  }
  opt_.resync_chunk = opt.resync_chunk / gran_ * gran_;
  max_zero_ = std::min<uint64_t>(max_zero_bytes,
                                 uint64_t{std::max<uint32_t>(al_slots_, 2) - 1} << extent_shift_);
  max_zero_ = std::max<uint64_t>(max_zero_ / block_ * block_, block_);
  if (opt.meta_io != nullptr) {
    const be::geometry& mg = opt.meta_io->geom();
    if (vm::meta_block_size % mg.block_size != 0 || mg.mem_align > vm::meta_block_size) {
      bad("meta_io (" + opt.meta_io->name() + ") cannot write 4 KiB activity-log records");
    }
    if (mg.size < meta.layout().total_size) bad("meta_io is smaller than the metadata layout");
  }

  // A node that crashed as primary replays its activity log into the bitmap now.
  if (meta.needs_replay()) {
    const vm::replay_result r = meta.replay();
    log("crashed while primary: activity log transaction " + std::to_string(r.al_seq) +
        " replayed, " +
        (r.whole_volume ? "the whole volume" : std::to_string(r.extents) + " extents") +
        " marked for resync" + (r.problem.empty() ? "" : " (" + r.problem + ")"));
  }
  if (meta.state().role == vm::role::primary) {
    // Every node starts as secondary; the cluster decides who is promoted.
    meta.state().role = vm::role::secondary;
    meta.state().flags &= ~vm::flag_primary_active;
    if (meta.commit() < 0) throw std::runtime_error(name_ + ": cannot commit " + meta.name());
  }

  app_.resize(opt.max_in_flight);
  app_free_.reserve(opt.max_in_flight);
  for (uint32_t i = opt.max_in_flight; i-- > 0;)
    app_free_.push_back(i);
  done_ring_.resize(opt.max_in_flight);

  rx_.resize(opt.recv_slots);
  rx_free_.reserve(opt.recv_slots);
  for (uint32_t i = opt.recv_slots; i-- > 0;)
    rx_free_.push_back(i);
  acks_.resize(opt.recv_slots + 1);
  pages_mem_ = alloc_aligned(size_t{opt.recv_pages} * recv_page_size, recv_page_size);
  page_free_.reserve(opt.recv_pages);
  for (uint32_t i = opt.recv_pages; i-- > 0;)
    page_free_.push_back(i);

  rs_.resize(opt.resync_window);
  rs_mem_ = alloc_aligned(size_t{opt.resync_window} * opt_.resync_chunk, recv_page_size);
  for (size_t i = 0; i < rs_.size(); ++i)
    rs_[i].buf = rs_mem_.get() + i * opt_.resync_chunk;
  if (opt_.compression == compression::igzip) {
    zcomp_ = std::make_unique<block_compressor>(opt_.compression_level);
    rs_zcap_ = block_compressor::compress_bound(opt_.resync_chunk);
    rs_zmem_ = alloc_aligned(rs_.size() * rs_zcap_, 64);
    for (size_t i = 0; i < rs_.size(); ++i)
      rs_[i].zbuf = rs_zmem_.get() + i * rs_zcap_;
  }
  zscratch_ = alloc_aligned(max_io_bytes, 64);
  if (async()) {
    aq_ = lazy_array<aq_entry>(opt.async_queue_entries);
    aq_cap_ = opt.async_queue_bytes / 4096 * 4096;
    aq_mem_ = alloc_aligned(aq_cap_, 4096);
    if (opt.async_history != nullptr) {
      hist_ = opt.async_history;
      hist_cap_ = hist_->geom().size / 4096 * 4096;
      hb_cap_ = 4 * max_io_bytes;
      hb_mem_ = alloc_aligned(hb_cap_, 4096);
    }
  }

  ext_epoch_.assign(meta.layout().al_extents, 0);
  al_record_ = alloc_aligned(vm::al_record_size, std::max<size_t>(vm::al_record_size, 4096));
  msg_buf_ = alloc_aligned(bitmap_header_len + vm::bitmap_page_size, 64);
  digest_msg_.resize(digest_header_len + size_t{max_chunk_blocks} * digest_len);
  digest_tmp_.resize(size_t{max_chunk_blocks} * digest_len);
}

volume::impl::~impl() {
  // The connection first (it releases referenced buffers into this object), then wait for the
  // backends: their requests point into the engine's buffers.
  conn_.reset();
  be::completion c[64];
  for (be::backend* b : {&data_, opt_.meta_io, opt_.async_history}) {
    if (b == nullptr) continue;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (b->in_flight() > 0 && std::chrono::steady_clock::now() < end) {
      (void)b->wait(1, std::chrono::milliseconds(100));
      (void)b->poll(c);
    }
  }
}

void volume::impl::log(const std::string& line) {
  const std::string l = name_ + ": " + line;
  if (opt_.log) {
    opt_.log(l);
  } else {
    std::fprintf(stderr, "%s\n", l.c_str());
  }
}

void volume::impl::set_error(std::string e) {
  last_error_ = std::move(e);
}

int volume::impl::commit_meta(const char* why) {
  const int rc = meta_.commit();
  if (rc < 0) {
    ++ctr_.local_errors;
    log(std::string("metadata commit (") + why + ") failed: " + std::strerror(-rc));
    return rc;
  }
  ++ctr_.superblock_commits;
  return 0;
}

// ---- Application path -----------------------------------------------------------------------

int volume::impl::validate(const io_request& io) const {
  switch (io.op) {
    case io_op::flush:
      return io.length == 0 && io.flags == 0 ? 0 : -EINVAL;
    case io_op::read:
    case io_op::write:
      if (io.buf == nullptr || io.length > max_io_bytes) return -EINVAL;
      if (reinterpret_cast<uintptr_t>(io.buf) % mem_align_ != 0) return -EINVAL;
      if ((io.flags & ~(io.op == io_op::write ? io_fua : 0)) != 0) return -EINVAL;
      break;
    case io_op::discard:
    case io_op::write_zeroes:
      if (io.flags != 0 || io.length > max_zero_) return -EINVAL;
      break;
    default:
      return -EINVAL;
  }
  if (io.length == 0 || io.offset % block_ != 0 || io.length % block_ != 0) return -EINVAL;
  if (io.offset > size_ || io.length > size_ - io.offset) return -EINVAL;
  if (is_write_kind(io.op)) {
    const uint64_t extents =
        ((io.offset + io.length - 1) >> extent_shift_) - (io.offset >> extent_shift_) + 1;
    if (extents > al_slots_) return -EINVAL;
  }
  return 0;
}

int volume::impl::submit(const io_request& io) {
  if (closed_ || !is_primary()) {
    ++ctr_.rejected;
    return -EROFS;
  }
  if (st().disk != vm::disk_state::up_to_date) {
    ++ctr_.rejected;
    return -EROFS;
  }
  if (const int rc = validate(io); rc < 0) {
    ++ctr_.rejected;
    return rc;
  }
  if (app_free_.empty()) {
    ++ctr_.rejected;
    return -EAGAIN;
  }
  const uint32_t i = app_free_.back();
  app_free_.pop_back();
  app_req& r = app_[i];
  r = app_req{};
  r.io = io;
  r.used = true;
  r.queued = true;
  r.sub = next_sub_++;
  waitq_.push_back(app_, i);
  if (is_write_kind(io.op)) {
    writes_.push_back(app_, i);
    last_app_write_ns_ = now_;
    have_app_write_ = true;
  }
  ++app_in_flight_;
  return 0;
}

// True while an earlier write overlaps request i, or a resync chunk over its range is being
// read and not yet queued to the transport.
bool volume::impl::write_blocked(uint32_t i) {
  const app_req& r = app_[i];
  for (uint32_t j = writes_.head; j != npos && j != i; j = writes_.next(app_, j)) {
    const app_req& e = app_[j];
    if (e.sub < r.sub && overlaps(e.io.offset, e.io.length, r.io.offset, r.io.length)) {
      return true;
    }
  }
  // A chunk read for the peer whose data (or digests) is not queued yet: a write over it now
  // would reach the peer first and then be undone by the older data. Checksum parts count until
  // the last one is queued.
  for (const rs_chunk& c : rs_) {
    const bool unqueued = c.st == rs_chunk::stage::reading || c.st == rs_chunk::stage::read ||
                          c.st == rs_chunk::stage::rereading ||
                          (c.st == rs_chunk::stage::parts && c.next_block < c.blocks && !c.failed);
    if (unqueued && overlaps(c.offset, c.length, r.io.offset, r.io.length)) return true;
  }
  return false;
}

// Marks a range the peer does not have; the first time since the peer was in sync, a primary
// also starts a new current generation id (a blocking superblock commit).
void volume::impl::mark_out_of_sync(uint64_t offset, uint64_t length) {
  (void)meta_.bitmap().set_range(offset, length);
  // A resync chunk read before this mark must not clear it when it finishes: what it sends
  // may predate the reason for the mark (a write the peer failed, a local error).
  for (rs_chunk& k : rs_)
    if (k.st != rs_chunk::stage::free && overlaps(k.offset, k.length, offset, length))
      k.remarked = true;
  if (is_primary()) ensure_new_current();
}

void volume::impl::ensure_new_current() {
  if (gen_rotated_) return;
  uint64_t fresh = 0;
  try {
    fresh = vm::new_generation_id();
  } catch (const std::exception& e) {
    log(std::string("cannot draw a generation id: ") + e.what());
    return;
  }
  vm::start_new_current(st().gen, fresh);
  if (commit_meta("new current generation") == 0) {
    gen_rotated_ = true;
    log("writing without the peer: new current generation " + describe_gens(st().gen));
    announce();
  }
}

// Takes request i (at the head of its gates) as far as it can go. Returns 1 when it started,
// 0 when it must wait.
int volume::impl::start_request(uint32_t i) {
  app_req& r = app_[i];
  const io_request& io = r.io;
  if (io.op == io_op::read) {
    const be::request q = be::request::read(io.offset, io.buf, io.length, make_cookie(ck::app, i));
    if (data_.submit({&q, 1}) != 1) return 0;
    r.local_issued = true;
    return 1;
  }
  if (io.op == io_op::flush) {
    if (!r.local_issued) {
      const be::request q = be::request::flush(make_cookie(ck::app, i));
      if (data_.submit({&q, 1}) != 1) return 0;
      r.local_issued = true;
    }
    if (!r.remote_sent) {
      if (state_ == conn_state::handshake) return 0;
      if (async() && replicating()) {
        // A barrier in the queue after every earlier write: the peer makes them durable in
        // order. The application's flush does not wait for it.
        if (!aq_turn(i)) return 0;
        (void)aq_push(i);
      } else if (replicating()) {
        uint64_t seq = 0, epoch = 0;
        if (send_flush(seq, epoch, i) < 0) return 0;
        r.seq = seq;
        r.flush_epoch = epoch;
        r.session = session_;
        r.remote_pending = true;
      }
      r.remote_sent = true;
    }
    return 1;
  }
  // write, discard, write_zeroes. First the gates, then the peer's part (sent, or recorded in
  // the bitmap), then the local write: once the peer has it, a full local queue only delays the
  // local part, and the request can never complete without its replication.
  if (!r.remote_sent) {
    // Async: in submission order from here on, so that only the next write to queue takes
    // activity-log slots (a later one holding them while it waits for its turn would deadlock).
    if (async() && !aq_turn(i)) return 0;
    if (write_blocked(i)) return 0;
    vm::activity_log& al = meta_.al();
    if (!r.al_noted) {
      const int rc = al.note_write(io.offset, io.length);
      if (rc == -EBUSY) {
        // Every slot busy: completions free some. Async: the queue's writes hold them until
        // the peer has them; a slow link must not stall the application for long.
        if (async() && aq_pending_ > 0) aq_al_stalled();
        return 0;
      }
      aq_al_wait_ns_ = 0;
      if (rc < 0) {
        r.local_done = true;
        r.local_result = rc == -E2BIG ? -EINVAL : rc;
        r.local_issued = true;
        r.remote_sent = true;
        return 1;
      }
      r.al_noted = true;
      if (rc > 0) ++ctr_.al_waits;
    }
    if (!al.ready(io.offset, io.length)) return 0;
    if (state_ == conn_state::handshake) return 0;  // the peer decides in one round trip
    if (async() && replicating()) {
      // Into the queue (its turn came above); the peer receives it later (pump_async).
      const int rc = aq_push(i);
      if (rc == -EAGAIN) return 0;  // the history's writes first
      if (rc == 0) {
        mark_out_of_sync(io.offset, io.length);
        ++ctr_.marked_dirty;
      }
    } else if (replicating()) {
      const uint32_t pages = io.op == io_op::write ? recv_pages(io.length) : 0;
      const uint64_t bytes = io_len + (io.op == io_op::write ? io.length : 0);
      if (peer_slots_ == 0 || peer_pages_ < pages || !room_for(bytes)) return 0;
      r.pages = pages;
      const int rc = send_write(i);
      if (rc == -EAGAIN) return 0;  // nothing was queued
      if (rc < 0) {
        // The header went out without its data: the session restarts; the bitmap covers it.
        mark_out_of_sync(io.offset, io.length);
        ++ctr_.marked_dirty;
      }
    } else {
      // Without the peer: recorded in the bitmap (under a new current id) before it is issued.
      mark_out_of_sync(io.offset, io.length);
      ++ctr_.marked_dirty;
    }
    r.remote_sent = true;
  }
  be::request q;
  const uint64_t cookie = make_cookie(ck::app, i);
  switch (io.op) {
    case io_op::write:
      q = be::request::write(io.offset, io.buf, io.length, cookie,
                             (io.flags & io_fua) ? be::req_fua : 0);
      break;
    case io_op::discard:
      q = be::request::discard(io.offset, io.length, cookie);
      break;
    default:
      q = be::request::write_zeroes(io.offset, io.length, cookie);
      break;
  }
  if (data_.submit({&q, 1}) != 1) return 0;
  r.local_issued = true;
  return 1;
}

int volume::impl::pump_app() {
  int work = 0;
  for (uint32_t i = waitq_.head; i != npos;) {
    const uint32_t next = waitq_.next(app_, i);
    if (start_request(i) == 1) {
      waitq_.erase(app_, i);
      app_[i].queued = false;
      ++work;
      try_complete(i);
    }
    i = next;
  }
  return work;
}

void volume::impl::on_app_completion(uint32_t i, int64_t result) {
  app_req& r = app_[i];
  if (!r.used || r.local_done) return;
  r.local_done = true;
  r.local_result = result < 0 ? static_cast<int>(result) : 0;
  if (result < 0) {
    ++ctr_.local_errors;
    if (is_write_kind(r.io.op)) {
      // The peer may hold the new data and this node not: keep the range for the next resync.
      mark_out_of_sync(r.io.offset, r.io.length);
      if (session_up()) restart_pending_ = true;
    }
  }
  try_complete(i);
}

void volume::impl::try_complete(uint32_t i) {
  app_req& r = app_[i];
  if (!r.used || r.finished || r.queued) return;
  if (!r.local_done || r.remote_pending || r.ref_held) return;
  if (r.io.op == io_op::flush && !r.remote_sent) return;
  finish_app(i);
}

void volume::impl::finish_app(uint32_t i) {
  app_req& r = app_[i];
  const io_request& io = r.io;
  if (is_write_kind(io.op)) {
    writes_.erase(app_, i);
    if (r.al_noted) meta_.al().complete_write(io.offset, io.length);
  }
  const bool ok = r.local_result == 0;
  if (!ok) ++ctr_.app_errors;
  if (ok) {
    switch (io.op) {
      case io_op::read:
        ++ctr_.reads;
        ctr_.read_bytes += io.length;
        break;
      case io_op::write:
        ++ctr_.writes;
        ctr_.write_bytes += io.length;
        if (io.flags & io_fua) ++ctr_.fua_writes;
        break;
      case io_op::flush:
        ++ctr_.flushes;
        break;
      case io_op::discard:
        ++ctr_.discards;
        break;
      case io_op::write_zeroes:
        ++ctr_.write_zeroes;
        break;
    }
  }
  r.finished = true;
  done_ring_[(done_head_ + done_count_) % done_ring_.size()] = i;
  ++done_count_;
  --app_in_flight_;
}

unsigned volume::reap(std::span<io_completion> out) noexcept {
  impl& d = *d_;
  unsigned n = 0;
  while (n < out.size() && d.done_count_ > 0) {
    const uint32_t i = d.done_ring_[d.done_head_];
    d.done_head_ = (d.done_head_ + 1) % static_cast<uint32_t>(d.done_ring_.size());
    --d.done_count_;
    app_req& r = d.app_[i];
    out[n++] = {r.io.cookie, r.local_result};
    r.used = false;
    d.app_free_.push_back(i);
  }
  return n;
}

// ---- Activity log ---------------------------------------------------------------------------

int volume::impl::pump_al() {
  vm::activity_log& al = meta_.al();
  if (al_txn_in_flight_ || !al.needs_commit()) return 0;
  if (al.drops_pending() > 0) {
    // A dropped extent is no longer replayed after a crash, so every completed write in it
    // must be durable first: a flush of the data device submitted after the extents went idle.
    if (!al_drop_flushed_ || al.evictions() != al_evictions_at_flush_) {
      al_drop_flushed_ = false;
      if (!flush_in_flight_[static_cast<size_t>(flush_purpose::al_drop)]) {
        al_evictions_at_flush_ = al.evictions();
        (void)submit_flush(flush_purpose::al_drop);
      }
      return 0;
    }
    // ... and the bitmap pages covering them (bits set while the peer was away).
    const int rc = meta_.bitmap().flush();
    if (rc < 0) {
      ++ctr_.local_errors;
      return 0;
    }
    ++ctr_.bitmap_flushes;
  }
  al_drop_flushed_ = false;
  if (opt_.meta_io != nullptr) {
    uint64_t off = 0;
    const int rc = al.prepare_commit(
        std::span<uint8_t, vm::al_record_size>(al_record_.get(), vm::al_record_size), off);
    if (rc <= 0) return 0;
    const be::request q = be::request::write(off, al_record_.get(), vm::al_record_size,
                                             make_cookie(ck::meta, 0), be::req_fua);
    if (opt_.meta_io->submit({&q, 1}) != 1) {
      al.commit_done(false);
      return 0;
    }
    al_txn_in_flight_ = true;
    return 1;
  }
  const int rc = meta_.commit_activity_log();
  if (rc < 0) {
    ++ctr_.local_errors;
    return 0;
  }
  if (rc > 0) ++ctr_.al_commits;
  return 1;
}

void volume::impl::on_meta_completion(int64_t result) {
  if (!al_txn_in_flight_) return;
  al_txn_in_flight_ = false;
  meta_.al().commit_done(result >= 0);
  if (result >= 0) {
    ++ctr_.al_commits;
  } else {
    ++ctr_.local_errors;
  }
}

int volume::impl::submit_flush(flush_purpose p) {
  const auto k = static_cast<size_t>(p);
  if (flush_in_flight_[k]) return 0;
  const be::request q = be::request::flush(make_cookie(ck::flush, k));
  if (data_.submit({&q, 1}) != 1) return -EAGAIN;
  flush_in_flight_[k] = true;
  flush_session_[k] = session_;
  return 1;
}

void volume::impl::on_flush_completion(flush_purpose p, int64_t result) {
  const auto k = static_cast<size_t>(p);
  flush_in_flight_[k] = false;
  if (result < 0) ++ctr_.local_errors;
  switch (p) {
    case flush_purpose::al_drop:
      al_drop_flushed_ = result >= 0;
      break;
    case flush_purpose::bitmap:
      if (result >= 0 && meta_.bitmap().dirty_pages() > 0) {
        if (meta_.bitmap().flush() < 0) {
          ++ctr_.local_errors;
        } else {
          ++ctr_.bitmap_flushes;
        }
      }
      break;
    case flush_purpose::leave:
      if (result < 0) {
        leave_failed_ = true;  // cannot promise durability: leave without the promise
      } else {
        leave_flushed_ = true;
      }
      break;
    case flush_purpose::finish:
      if (flush_session_[k] != session_ || state_ != conn_state::sync_target || !rs_finishing_) {
        break;
      }
      if (result < 0) {
        abort_resync("the sync target cannot flush its data device");
        break;
      }
      finish_target();
      break;
    case flush_purpose::count:
      break;
  }
}

int volume::impl::reap_backends() {
  int work = 0;
  be::completion c[64];
  for (;;) {
    const int n = data_.poll(c);
    if (n <= 0) break;
    work += n;
    for (int k = 0; k < n; ++k) {
      const uint32_t idx = cookie_index(c[k].cookie);
      switch (cookie_kind(c[k].cookie)) {
        case ck::app:
          on_app_completion(idx, c[k].result);
          break;
        case ck::rx:
          on_rx_completion(idx, c[k].result);
          break;
        case ck::rs:
          on_rs_read(idx, c[k].result);
          break;
        case ck::flush:
          on_flush_completion(static_cast<flush_purpose>(idx), c[k].result);
          break;
        case ck::meta:
        case ck::aq:  // transport references only
        case ck::hist:
          break;
      }
    }
    if (n < 64) break;
  }
  if (opt_.meta_io != nullptr) {
    const int n = opt_.meta_io->poll(c);
    for (int k = 0; k < n; ++k)
      on_meta_completion(c[k].result);
    if (n > 0) work += n;
  }
  if (hist_ != nullptr) {
    for (;;) {
      const int n = hist_->poll(c);
      for (int k = 0; k < n; ++k)
        on_hist_completion(cookie_index(c[k].cookie), c[k].result);
      if (n > 0) work += n;
      if (n < 64) break;
    }
  }
  return work;
}

// Timers: the peer flush that bounds the unflushed extents, the bitmap write-back, the measured
// resync rate.
void volume::impl::periodic() {
  maybe_peer_flush();
  if (now_ - last_bitmap_flush_ns_ >= opt_.bitmap_flush_interval_ns) {
    last_bitmap_flush_ns_ = now_;
    // Cleared bits must not reach the disk before the data that cleared them is durable.
    if (meta_.bitmap().dirty_pages() > 0) (void)submit_flush(flush_purpose::bitmap);
  }
  if (now_ - rate_window_ns_ >= 1'000'000'000) {
    const uint64_t elapsed = now_ - rate_window_ns_;
    const uint64_t bytes = rs_done_bytes_ - rate_window_bytes_;
    rs_rate_ = rate_window_ns_ == 0 ? 0 : bytes * 1'000'000'000 / elapsed;
    rate_window_ns_ = now_;
    rate_window_bytes_ = rs_done_bytes_;
  }
}

int volume::impl::poll(uint64_t now) {
  now_ = now;
  if (closed_) return 0;
  if (restart_pending_) {
    restart_pending_ = false;
    restart_session();
  }
  int work = reap_backends();
  if (conn_ && own_port_ && port_ != nullptr) {
    dgram* bufs[64];
    for (int round = 0; round < 4; ++round) {
      const unsigned n = port_->recv(bufs, 64);
      if (n == 0) break;
      conn_->input(bufs, n, now);
      port_->free(bufs, n);
      work += static_cast<int>(n);
      if (n < 64) break;
    }
  }
  if (state_ == conn_state::handshake && now_ > handshake_deadline_) {
    go_refused("no hello from the peer within " +
               std::to_string(opt_.handshake_timeout_ns / 1'000'000) +
               " ms of the transport session (not a tandem mirror peer?)");
  }
  work += pump_al();
  work += pump_app();
  if (async()) {
    if (hist_ != nullptr) work += aq_load();
    work += pump_async();
  }
  work += pump_rx();
  work += flush_acks();
  work += pump_control();
  work += pump_bitmap_send();
  work += pump_resync();
  work += pump_verify();
  work += pump_leave();
  periodic();
  if (conn_) {
    conn_->poll(now);
    if (port_ != nullptr) port_->flush();
  }
  return work;
}

// ---- The public face ------------------------------------------------------------------------

volume::volume(backend::backend& data, dp::volume::metadata_store& meta, const volume_options& opt)
    : d_(std::make_unique<impl>(data, meta, opt)) {}

volume::~volume() = default;

void volume::attach_peer(port& p, const transport::connection_config& cfg, bool own_port) {
  impl& d = *d_;
  if (d.conn_) throw std::invalid_argument(d.name_ + ": attach_peer while connected");
  if (cfg.max_message < max_io_bytes) {
    throw std::invalid_argument(d.name_ + ": the transport's max_message must be at least 1 MiB");
  }
  if (cfg.send_buffer < 2 * max_io_bytes) {
    throw std::invalid_argument(d.name_ + ": the transport's send_buffer must be at least 2 MiB");
  }
  d.port_ = &p;
  d.tcfg_ = cfg;
  d.own_port_ = own_port;
}

void volume::input(dgram** bufs, unsigned n, uint64_t now_ns) noexcept {
  impl& d = *d_;
  d.now_ = std::max(d.now_, now_ns);
  if (d.conn_) d.conn_->input(bufs, n, now_ns);
}

int volume::submit(const io_request& io) noexcept {
  return d_->submit(io);
}

int volume::poll(uint64_t now_ns) noexcept {
  return d_->poll(now_ns);
}

int volume::promote(bool force) {
  impl& d = *d_;
  if (d.closed_) return -EBADF;
  vm::volume_state& s = d.st();
  if (s.role == vm::role::primary) return 0;
  // A failover disconnects from a dead primary and promotes at once: the disconnect the operator
  // asked for ends now rather than after the leave's wait for the peer.
  if (d.leaving_) d.finish_leave("promoted before the peer confirmed");
  const bool was_good = s.disk == vm::disk_state::up_to_date;
  if (!was_good && !force) {
    d.set_error(std::string("the local data is ") + vm::to_string(s.disk) +
                ", not UpToDate: promotion refused (force overrides)");
    return -EROFS;
  }
  if (d.peer_known_ && d.session_up() && d.state_ != conn_state::handshake &&
      d.peer_state_.role == vm::role::primary) {
    d.set_error("the peer is primary; demote it first");
    return -EBUSY;
  }
  const vm::volume_state before = s;
  s.role = vm::role::primary;
  s.flags |= vm::flag_primary_active;
  {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    s.primary_since =
        static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
  }
  if (!was_good) {
    // Forced: this copy becomes the reference, under a generation id of its own.
    s.disk = vm::disk_state::up_to_date;
    s.flags &= ~vm::flag_resync_in_progress;
    try {
      vm::start_new_current(s.gen, vm::new_generation_id());
    } catch (const std::exception& e) {
      s = before;
      d.set_error(e.what());
      return -EIO;
    }
  }
  if (const int rc = d.commit_meta("promote"); rc < 0) {
    s = before;
    d.set_error("cannot commit the metadata");
    return rc;
  }
  if (!was_good) {
    d.gen_rotated_ = true;
    d.log("promoted by force: the local data (" + std::string(vm::to_string(before.disk)) +
          ") is now the reference, " + describe_gens(s.gen));
    // The peer must decide again against the new reference.
    if (d.conn_) d.restart_pending_ = true;
  } else {
    d.log("promoted to primary");
  }
  d.announce();
  return 0;
}

int volume::demote() {
  impl& d = *d_;
  if (d.closed_) return -EBADF;
  vm::volume_state& s = d.st();
  if (s.role != vm::role::primary) return 0;
  if (d.app_in_flight_ > 0 || d.al_txn_in_flight_ ||
      d.flush_in_flight_[static_cast<size_t>(flush_purpose::al_drop)]) {
    d.set_error(std::to_string(d.app_in_flight_) + " application requests in flight");
    return -EBUSY;
  }
  if (d.aq_pending_ > 0) {
    d.set_error(std::to_string(d.aq_pending_) + " queued writes (" + std::to_string(d.aq_bytes_) +
                " bytes) not yet acknowledged by the peer: retry once the async queue is empty, "
                "or disconnect first (they are then marked for resync)");
    return -EBUSY;
  }
  try {
    d.meta_.mark_clean();
  } catch (const std::exception& e) {
    d.set_error(e.what());
    d.log(std::string("demote: ") + e.what());
    return -EIO;
  }
  s.role = vm::role::secondary;
  if (const int rc = d.commit_meta("demote"); rc < 0) {
    s.role = vm::role::primary;
    d.set_error("cannot commit the metadata");
    return rc;
  }
  d.log("demoted to secondary");
  d.announce();
  // A split brain between two primaries is decided again now that one stepped down.
  if (d.state_ == conn_state::split_brain) d.restart_pending_ = true;
  return 0;
}

int volume::connect() {
  impl& d = *d_;
  if (d.closed_) return -EBADF;
  if (d.port_ == nullptr) {
    d.set_error("no peer attached");
    return -ENOTCONN;
  }
  if (d.conn_) return 0;
  try {
    d.make_connection();
  } catch (const std::exception& e) {
    d.set_error(e.what());
    return -EINVAL;
  }
  return 0;
}

int volume::disconnect() {
  impl& d = *d_;
  if (!d.conn_ || d.leaving_) return 0;
  if (d.start_leave()) {
    d.log("disconnecting: making what the peer acknowledged durable first");
    return 0;
  }
  d.drop_connection();
  d.log("disconnected");
  return 0;
}

// The peer learns it from pump_control() (resync_pause), as soon as a session allows.
void volume::pause_resync() {
  if (!d_->paused_) d_->log("resync paused");
  d_->paused_ = true;
}

void volume::resume_resync() {
  if (d_->paused_) d_->log("resync resumed");
  d_->paused_ = false;
}

int volume::request_resync(bool full, bool checksum) {
  impl& d = *d_;
  if (d.closed_) return -EBADF;
  if (!d.conn_) {
    d.set_error("not connected");
    return -ENOTCONN;
  }
  if (full && d.st().disk != vm::disk_state::up_to_date) {
    d.set_error(std::string("a full resync needs UpToDate data here; the local data is ") +
                vm::to_string(d.st().disk));
    return -EROFS;
  }
  if (full) {
    d.want_full_ = true;
  } else {
    d.want_resync_ = true;
  }
  d.want_checksum_ = d.want_checksum_ || checksum;
  d.restart_pending_ = true;
  d.log(std::string(full ? "full " : "") + (checksum ? "checksum " : "") + "resync requested" +
        (full ? " (this node is the source)" : ""));
  return 0;
}

int volume::discard_my_changes() {
  impl& d = *d_;
  if (d.closed_) return -EBADF;
  if (!d.conn_) {
    d.set_error("not connected: connect first, then discard this node's changes");
    return -ENOTCONN;
  }
  if (d.is_primary()) {
    d.set_error("this node is primary: demote it before discarding its changes");
    return -EBUSY;
  }
  d.want_discard_ = true;
  d.restart_pending_ = true;
  d.log(
      "the operator discards this node's changes: it takes the peer's data at the next "
      "handshake");
  return 0;
}

int volume::request_verify(bool repair, uint64_t start) {
  impl& d = *d_;
  if (d.closed_) return -EBADF;
  if (d.state_ != conn_state::connected) {
    d.set_error(std::string("verify needs the peer connected and in sync; the connection is ") +
                to_string(d.state_));
    return -ENOTCONN;
  }
  if (!d.is_primary()) {
    d.set_error("verify runs on the primary (its data is the reference)");
    return -EROFS;
  }
  if (d.vf_.running) {
    d.set_error("a verify is running (" + std::to_string(d.vf_.done_bytes) + " of " +
                std::to_string(d.vf_.total_bytes) + " bytes compared)");
    return -EBUSY;
  }
  if (start % d.block_ != 0 || start >= d.size_) {
    d.set_error("verify start " + std::to_string(start) +
                " is not a block-aligned offset inside the volume");
    return -EINVAL;
  }
  d.vf_ = {};
  ++d.vf_gen_;
  d.vf_.running = true;
  d.vf_.repair = repair;
  d.vf_.start = start;
  d.vf_.total_bytes = d.size_ - start;
  d.vf_cursor_ = start;
  d.rs_refill_ns_ = d.now_;
  d.rs_tokens_ = 0;
  d.log("verify started at offset " + std::to_string(start) + (repair ? " (repair)" : ""));
  return 0;
}

int volume::stop_verify() {
  impl& d = *d_;
  if (!d.vf_.running) {
    d.set_error("no verify is running");
    return -ENOENT;
  }
  d.end_verify("stopped by the operator", false);
  return 0;
}

int volume::shutdown() {
  impl& d = *d_;
  if (d.closed_) return 0;
  if (d.app_in_flight_ > 0) {
    d.set_error("application requests in flight");
    return -EBUSY;
  }
  d.leaving_ = false;
  if (d.conn_) d.drop_connection();
  if (d.is_primary()) {
    if (const int rc = demote(); rc < 0) return rc;
  } else {
    try {
      d.meta_.mark_clean();
    } catch (const std::exception& e) {
      d.set_error(e.what());
      return -EIO;
    }
  }
  d.closed_ = true;
  d.log("shut down cleanly");
  return 0;
}

volume_status volume::status() const {
  const impl& d = *d_;
  volume_status s;
  const vm::volume_state& ms = d.meta_.state();
  s.role = ms.role;
  s.disk = ms.disk;
  s.conn = d.state_;
  s.reason = d.reason_;
  s.node_id = d.opt_.node_id;
  s.gen = ms.gen;
  s.flags = ms.flags;
  s.peer_known = d.peer_known_;
  s.peer_node_id = d.peer_hello_.node_id;
  s.peer_role = d.peer_state_.role;
  s.peer_disk = d.peer_state_.disk;
  s.peer_gen = d.peer_state_.gen;
  s.last_action = d.last_result_.action;
  s.last_generations = d.last_result_.generations;
  auto& bm = const_cast<vm::metadata_store&>(d.meta_).bitmap();
  s.dirty_bytes = bm.dirty_bytes();
  s.dirty_bits = bm.count_dirty();
  s.resync_full = d.rs_full_;
  s.resync_checksum = d.rs_checksum_ &&
                      (d.state_ == conn_state::sync_source || d.state_ == conn_state::sync_target);
  s.resync_paused = d.paused_;
  s.verify = d.vf_;
  s.split_brain = d.split_brain_;
  s.resync_paused_by_peer = d.peer_paused_;
  s.resync_total_bytes = d.rs_total_;
  s.resync_done_bytes = d.rs_done_bytes_;
  s.resync_rate = d.rs_rate_;
  s.resync_limit = d.rs_limit_;
  s.async.enabled = d.async();
  s.async.capacity_bytes = d.aq_cap_;
  s.async.memory_bytes = d.aq_wr_ - d.aq_rd_;
  s.async.queued_bytes = d.aq_bytes_;
  s.async.unsent_bytes = d.aq_unsent_bytes_;
  s.async.queued = d.aq_pending_;
  s.async.history_bytes = d.hist_bytes_;
  s.async.history_capacity_bytes = d.hist_cap_;
  if (const uint64_t k = d.aq_first_pending(); k < d.aq_tail_) {
    const aq_entry& e = d.aq_[k % d.aq_.size()];
    s.async.lag_ns = d.now_ > e.queued_ns ? d.now_ - e.queued_ns : 1;
  }
  s.app_in_flight = d.app_in_flight_;
  s.peer_in_flight = d.peer_in_flight_;
  s.applying = d.rx_order_.size;
  s.counters = d.ctr_;
  if (d.conn_) s.transport = d.conn_->stats();
  return s;
}

const std::string& volume::last_error() const noexcept {
  return d_->last_error_;
}
bool volume::busy() const noexcept {
  const impl& d = *d_;
  return d.leaving_ || d.app_in_flight_ != 0 || d.peer_in_flight_ != 0 || d.rx_order_.size != 0 ||
         d.aq_send_ != d.aq_tail_ ||
         ((d.state_ == conn_state::sync_source || d.state_ == conn_state::sync_target ||
           d.vf_.running) &&
          !d.paused_ && !d.peer_paused_);
}
conn_state volume::connection_state() const noexcept {
  return d_->state_;
}
dp::volume::role volume::role() const noexcept {
  return d_->meta_.state().role;
}
dp::volume::disk_state volume::disk() const noexcept {
  return d_->meta_.state().disk;
}
const transport::connection* volume::transport() const noexcept {
  return d_->conn_.get();
}

}  // namespace tandem::dp::mirror
