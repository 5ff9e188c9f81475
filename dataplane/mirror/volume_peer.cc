// SPDX-License-Identifier: Apache-2.0
// The mirror engine's peer side: sessions and the handshake, replication messages, the secondary's
// apply path (stream order, overlap waits, acks), the bitmap exchange and the resync.
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dataplane/mirror/volume.h"
#include "dataplane/mirror/volume_impl.h"

namespace tandem::dp::mirror {

// ---- Connection and session ------------------------------------------------------------------

void volume::impl::make_connection() {
  conn_ = std::make_unique<transport::connection>(
      *port_, tcfg_, [this](std::span<const uint8_t> m) { on_message(m); },
      [this](bool up) { on_session(up); });
  conn_->set_release([this](uint64_t c, bool acked) { on_release(c, acked); });
  state_ = conn_state::connecting;
  reason_.clear();
}

void volume::impl::drop_connection() {
  session_lost("disconnected by the operator");
  conn_.reset();  // sends a close; releases what the transport still referenced
  state_ = conn_state::standalone;
}

void volume::impl::restart_session() {
  if (!conn_) return;
  session_lost("the mirror session restarts");
  conn_.reset();
  make_connection();
}

bool volume::impl::session_up() const {
  return conn_ && state_ != conn_state::standalone && state_ != conn_state::connecting;
}

bool volume::impl::replicating() const {
  return conn_ && meta_.state().role == vm::role::primary &&
         (state_ == conn_state::connected || state_ == conn_state::sync_source);
}

bool volume::impl::room_for(uint64_t bytes) const {
  return conn_ && conn_->unacked_bytes() + bytes <= conn_->config().send_buffer;
}

bool volume::impl::send_control(std::span<const uint8_t> m) {
  return conn_ && conn_->send(m) == 0;
}

hello_msg volume::impl::make_hello() const {
  const vm::volume_state& s = meta_.state();
  hello_msg h;
  h.node_id = opt_.node_id;
  h.uuid = meta_.identity().uuid;
  h.volume_size = size_;
  h.block_size = block_;
  h.bitmap_granularity = gran_;
  h.role = s.role;
  h.disk = s.disk;
  h.flags = state_flags() | (want_resync_ ? hf_want_resync : 0) |
            (want_full_ ? hf_want_full_source : 0) | (want_checksum_ ? hf_checksum_resync : 0) |
            (want_discard_ ? hf_discard_my_data : 0);
  h.primary_since = s.primary_since;
  h.policy = opt_.split_brain;
  h.gen = s.gen;
  h.dirty_bytes = const_cast<vm::metadata_store&>(meta_).bitmap().dirty_bytes();
  h.recv_slots = opt_.recv_slots;
  h.recv_pages = opt_.recv_pages;
  h.page_size = recv_page_size;
  h.max_io = max_io_bytes;
  return h;
}

void volume::impl::announce() {
  announce_pending_ = true;
}

void volume::impl::on_session(bool up) {
  if (!up) {
    session_lost("the transport session ended");
    return;
  }
  if (session_up()) session_lost("a new transport session started");
  ++session_;
  pause_sent_ = false;  // a new session: the peer knows nothing of a pause yet
  state_ = conn_state::handshake;
  reason_.clear();
  handshake_deadline_ = now_ + opt_.handshake_timeout_ns;
  sent_hello_ = make_hello();
  uint8_t b[hello_len];
  const int len = encode_hello(b, sent_hello_);
  if (!send_control({b, static_cast<size_t>(len)})) {
    go_refused("cannot send the hello");
  }
}

// What the peer had not answered is out of sync now: writes it did not ack, and extents it acked
// writes in but did not flush since (its power may have failed). Resync chunks in flight are
// dropped (their bits are still set).
void volume::impl::abandon_peer_io() {
  vm::dirty_bitmap& bm = meta_.bitmap();
  const uint64_t before = bm.count_dirty();
  bool marked = false;
  for (uint32_t i = 0; i < app_.size(); ++i) {
    app_req& r = app_[i];
    if (!r.used || !r.remote_pending) continue;
    if (is_write_kind(r.io.op)) {
      (void)bm.set_range(r.io.offset, r.io.length);
      marked = true;
    }
    r.remote_pending = false;
    r.pages = 0;
  }
  if (async() && aq_abandon()) marked = true;
  internal_flush_pending_ = false;
  for (size_t e = 0; e < ext_epoch_.size(); ++e) {
    if (ext_epoch_[e] != 0 && ext_epoch_[e] > peer_durable_epoch_) {
      (void)bm.set_range(uint64_t{e} << extent_shift_, uint64_t{1} << extent_shift_);
      marked = true;
    }
    ext_epoch_[e] = 0;
  }
  wrote_since_peer_flush_ = false;
  if (marked) {
    ++ctr_.marked_dirty;
    // Extents marked for unflushed writes may have left the activity log: their bits must be
    // on disk before anything else can lose them.
    if (bm.flush() < 0) {
      ++ctr_.local_errors;
    } else {
      ++ctr_.bitmap_flushes;
    }
    if (is_primary()) ensure_new_current();
    const uint64_t added = bm.count_dirty() - before;
    if (added > 0) {
      log("the peer may lack " + std::to_string(added) + " chunks (unacknowledged or unflushed " +
          "writes): marked for resync");
    }
  }
  // Only now, with their bits on disk, may the queued writes' extents leave the activity log.
  if (async()) aq_release_al();
  for (uint32_t c = 0; c < rs_.size(); ++c) {
    const rs_chunk::stage s = rs_[c].st;
    if (s == rs_chunk::stage::read || s == rs_chunk::stage::digest_sent ||
        s == rs_chunk::stage::reread_wait) {
      free_chunk(c);
    } else if (s == rs_chunk::stage::parts) {
      rs_[c].failed = true;
      (void)settle_parts(c);  // now, or when the transport gives the last part back
    }
  }
  peer_slots_ = 0;
  peer_pages_ = 0;
  peer_in_flight_ = 0;
  for (uint32_t i = 0; i < app_.size(); ++i)
    try_complete(i);
}

void volume::impl::session_lost(const char* why) {
  const bool was_up = session_up();
  if (!was_up) return;
  ++ctr_.session_losses;
  abandon_peer_io();
  if (expect_data_ != npos) {
    // The data of this request will never come.
    rx_req& r = rx_[expect_data_];
    release_rx_pages(r);
    release_rx(expect_data_);
    expect_data_ = npos;
  }
  acks_head_ = acks_count_ = 0;
  if (vf_.running) end_verify("interrupted: the session ended", false, false);
  rs_finishing_ = false;
  rs_done_sent_ = false;
  peer_paused_ = false;
  state_ = conn_ ? conn_state::connecting : conn_state::standalone;
  log(std::string("lost the peer: ") + why);
}

void volume::impl::go_refused(const std::string& why) {
  abandon_peer_io();
  state_ = conn_state::refused;
  reason_ = why;
  set_error(why);
  const std::string peer = peer_known_ ? "node " + std::to_string(peer_hello_.node_id) + " at "
                                       : std::string("the peer at ");
  log("refused " + peer + tcfg_.peer.to_string() + ": " + why);
}

void volume::impl::protocol_error(const std::string& what) {
  ++ctr_.protocol_errors;
  go_refused("protocol error: " + what);
}

// ---- Messages --------------------------------------------------------------------------------

void volume::impl::on_message(std::span<const uint8_t> bytes) {
  if (state_ == conn_state::refused) return;  // idle until the operator acts
  if (expect_data_ != npos) {
    handle_data(bytes);
    return;
  }
  message m;
  const decode_status ds = decode(bytes, m);
  if (ds == decode_status::bad_version && m.type == msg_type::hello) {
    go_refused("the peer speaks mirror protocol version " + std::to_string(m.hello.version) +
               ", this node " + std::to_string(protocol_version));
    return;
  }
  if (ds != decode_status::ok) {
    protocol_error(std::string("undecodable message (") + to_string(ds) + ")");
    return;
  }
  if (state_ == conn_state::handshake) {
    if (m.type != msg_type::hello) {
      protocol_error(std::string("expected hello, got ") + to_string(m.type));
      return;
    }
    handle_hello(m);
    return;
  }
  switch (m.type) {
    case msg_type::hello:
      protocol_error("a second hello in one session");
      return;
    case msg_type::write:
    case msg_type::discard:
    case msg_type::write_zeroes:
    case msg_type::flush:
    case msg_type::resync_data:
      handle_io(m);
      return;
    case msg_type::ack:
      handle_ack(m.ack);
      return;
    case msg_type::bitmap:
      handle_bitmap(m.bitmap);
      return;
    case msg_type::bitmap_done:
      handle_bitmap_done();
      return;
    case msg_type::resync_ack:
      handle_resync_ack(m.ack);
      return;
    case msg_type::state:
      peer_state_ = m.state;
      if ((m.state.flags & hf_leaving) != 0 && is_primary()) {
        // Everything the peer acknowledged is durable there: only writes it did not
        // acknowledge are marked when the session ends.
        peer_durable_epoch_ = std::max(peer_durable_epoch_, send_epoch_);
        ++send_epoch_;  // what is sent from now on is not covered by that
        log("the peer is leaving; every write it acknowledged is durable");
      }
      if (is_primary() && m.state.role == vm::role::primary && state_ != conn_state::split_brain &&
          state_ != conn_state::refused) {
        go_refused("both nodes are primary");
      }
      return;
    case msg_type::resync_done:
      handle_resync_done(m.gen);
      return;
    case msg_type::resync_finished:
      handle_resync_finished(m.gen);
      return;
    case msg_type::resync_digest:
      handle_digest(m.digest);
      return;
    case msg_type::resync_digest_ack:
      handle_digest_ack(m.digest_ack);
      return;
    case msg_type::resync_pause:
      peer_paused_ = m.paused;
      log(std::string("the peer ") + (m.paused ? "paused" : "resumed") + " the resync");
      return;
  }
}

void volume::impl::handle_hello(const message& m) {
  const hello_msg& h = m.hello;
  peer_hello_ = h;
  peer_known_ = true;
  peer_state_ = {h.role, h.disk, h.flags, h.gen};
  ++ctr_.sessions;
  if (h.page_size != recv_page_size || h.max_io < max_io_bytes || h.recv_slots == 0 ||
      h.recv_pages < max_io_bytes / recv_page_size) {
    go_refused("node " + std::to_string(h.node_id) + " offers incompatible receive limits");
    return;
  }
  // An operator command changed this node during the handshake: decide again on fresh facts.
  hello_msg now = make_hello();
  now.dirty_bytes = sent_hello_.dirty_bytes;
  constexpr uint32_t wants =
      hf_want_resync | hf_want_full_source | hf_checksum_resync | hf_discard_my_data;
  now.flags = (now.flags & ~wants) | (sent_hello_.flags & wants);
  if (!(now == sent_hello_)) {
    restart_pending_ = true;
    return;
  }
  const handshake_result r = decide(sent_hello_, h);
  last_result_ = r;
  want_resync_ = false;
  want_full_ = false;
  want_discard_ = false;
  if (r.split_brain) {
    // Every split-brain decision is an event: the log line, and status().split_brain.
    split_brain_ = r.reason;
    ++ctr_.split_brains;
    if (r.action != sync_action::split_brain) log(r.reason);
  }
  want_checksum_ = false;
  if (st().peer_node_id != h.node_id) {
    st().peer_node_id = h.node_id;
    (void)commit_meta("peer node id");
  }
  peer_slots_ = h.recv_slots;
  peer_pages_ = h.recv_pages;
  peer_in_flight_ = 0;
  const std::string peer = "node " + std::to_string(h.node_id);
  switch (r.action) {
    case sync_action::none: {
      vm::dirty_bitmap& bm = meta_.bitmap();
      if (bm.count_dirty() > 0) {
        // Same data on both sides: what the bitmap says is stale (e.g. a resync whose end this
        // node did not see).
        log("in sync with " + peer + ": " + std::to_string(bm.count_dirty()) +
            " stale bitmap bits cleared");
        bm.clear_all();
      }
      if (st().gen.bitmap != 0 && st().gen.current == h.gen.current) {
        vm::finish_resync_as_source(st().gen);
        (void)commit_meta("stale bitmap id");
      }
      gen_rotated_ = false;
      state_ = conn_state::connected;
      log("connected to " + peer + ": in sync (" + describe_gens(st().gen) + ")");
      return;
    }
    case sync_action::source:
    case sync_action::target:
    case sync_action::full_source:
    case sync_action::full_target:
      if (r.start_now) {
        begin_resync(r.action);
        return;
      }
      state_ = conn_state::sync_pending;
      if (!is_source(r.action) && st().disk == vm::disk_state::up_to_date) {
        st().disk = vm::disk_state::outdated;
        (void)commit_meta("outdated");
        announce();
      }
      log(std::string("connected to ") + peer + ": a resync is needed (" + to_string(r.action) +
          "), waiting for request_resync (automatic resync is off)");
      return;
    case sync_action::split_brain:
      abandon_peer_io();
      state_ = conn_state::split_brain;
      reason_ = r.reason;
      set_error(r.reason);
      log(r.reason + "; nothing is resynced until the operator acts (tandemctl mirror " +
          "discard-changes on the node whose changes go)");
      return;
    case sync_action::refuse:
      go_refused(r.reason);
      return;
  }
}

void volume::impl::begin_resync(sync_action a) {
  rs_full_ = is_full(a);
  rs_source_ = is_source(a);
  rs_bitmap_sent_ = false;
  rs_bitmap_page_ = 0;
  rs_peer_bitmap_done_ = false;
  rs_done_sent_ = false;
  rs_finishing_ = false;
  rs_cursor_ = 0;
  rs_done_bytes_ = 0;
  rate_window_bytes_ = 0;
  rs_total_ = 0;
  rs_tokens_ = 0;
  rs_refill_ns_ = now_;
  rs_checksum_ = ((sent_hello_.flags | peer_hello_.flags) & hf_checksum_resync) != 0;
  if (rs_checksum_ && rs_source_ && peer_hello_.recv_pages < recv_pages(opt_.resync_chunk) + 1) {
    rs_checksum_ = false;  // a digest request needs one page more than the chunk
    log("checksum resync off: the peer's receive pages do not hold a chunk and its digests");
  }
  if (rs_full_) meta_.bitmap().set_all();
  if (!rs_source_) {
    st().disk = vm::disk_state::inconsistent;
    st().flags |= vm::flag_resync_in_progress;
    (void)commit_meta("resync start");
    announce();
  }
  state_ = rs_source_ ? conn_state::sync_source : conn_state::sync_target;
  log(std::string(rs_full_ ? "full" : "bitmap") + (rs_checksum_ ? " checksum" : "") +
      " resync started, this node is the " + (rs_source_ ? "source" : "target") + " (peer node " +
      std::to_string(peer_hello_.node_id) + ")");
}

// ---- Planned disconnect ------------------------------------------------------------------------

// A planned disconnect must not cost a resync of every extent written since the peer's last
// flush. A primary sends one more flush and leaves once the peer acknowledged it; a secondary
// flushes its data device until no request completed meanwhile, tells the primary it leaves
// (state with hf_leaving) and leaves once the transport delivered that. Either gives up after
// a second and leaves as before, with the extents marked.
bool volume::impl::start_leave() {
  if (!session_up() || state_ == conn_state::refused || state_ == conn_state::split_brain) {
    return false;
  }
  if (is_primary()) {
    if (!replicating()) return false;
    bool unflushed = wrote_since_peer_flush_ || internal_flush_pending_ || aq_pending_ > 0;
    for (size_t e = 0; e < ext_epoch_.size() && !unflushed; ++e)
      unflushed = ext_epoch_[e] != 0 && ext_epoch_[e] > peer_durable_epoch_;
    if (!unflushed) return false;
  }
  leaving_ = true;
  leave_deadline_ns_ = now_ + 1'000'000'000;
  leave_epoch_ = 0;
  leave_flushed_ = false;
  leave_sent_ = false;
  leave_failed_ = false;
  return true;
}

void volume::impl::finish_leave(const char* how) {
  leaving_ = false;
  drop_connection();
  log(std::string("disconnected (") + how + ")");
}

int volume::impl::pump_leave() {
  if (!leaving_) return 0;
  if (!session_up()) {
    finish_leave("the session ended first");
    return 1;
  }
  if (leave_failed_) {
    finish_leave(
        "the data device failed a flush: the peer marks what it sent since its last flush");
    return 1;
  }
  if (now_ > leave_deadline_ns_) {
    finish_leave("the peer did not confirm within 1 s: unflushed extents are marked");
    return 1;
  }
  if (is_primary()) {
    if (leave_epoch_ == 0 && !internal_flush_pending_) {
      // Async: the flush goes after every queued write, so that it covers them all.
      if (async() && aq_send_ != aq_tail_) return 0;
      if (!send_internal_flush()) return 0;
      leave_epoch_ = internal_flush_epoch_;
      return 1;
    }
    if (leave_epoch_ != 0 && peer_durable_epoch_ >= leave_epoch_) {
      finish_leave("the peer flushed what it acknowledged");
      return 1;
    }
    return 0;
  }
  // Secondary.
  if (leave_sent_) {
    if (conn_->unacked_bytes() == 0) {
      finish_leave("what this node acknowledged is durable");
      return 1;
    }
    return 0;
  }
  const auto k = static_cast<size_t>(flush_purpose::leave);
  if (flush_in_flight_[k]) return 0;
  if (!leave_flushed_ || leave_completions_ != rx_completions_) {
    // (Again when a request completed after the last flush was submitted.)
    leave_flushed_ = false;
    leave_completions_ = rx_completions_;
    return submit_flush(flush_purpose::leave) > 0 ? 1 : 0;
  }
  if (!room_for(state_len)) return 0;
  const state_msg m = make_state(hf_leaving);
  uint8_t b[state_len];
  if (!send_control({b, static_cast<size_t>(encode_state(b, m))})) return 0;
  leave_sent_ = true;
  return 1;
}

uint32_t volume::impl::state_flags() const {
  const vm::volume_state& s = meta_.state();
  return ((s.flags & vm::flag_crashed_primary) ? hf_crashed_primary : 0) |
         ((s.flags & vm::flag_resync_in_progress) ? hf_resync_in_progress : 0) |
         (opt_.auto_resync ? hf_auto_resync : 0) | (opt_.resync_checksum ? hf_checksum_resync : 0);
}

state_msg volume::impl::make_state(uint32_t extra_flags) const {
  const vm::volume_state& s = meta_.state();
  state_msg m;
  m.role = s.role;
  m.disk = s.disk;
  m.flags = state_flags() | extra_flags;
  m.gen = s.gen;
  return m;
}

int volume::impl::pump_control() {
  if (!session_up() || state_ == conn_state::handshake) return 0;
  int work = 0;
  if (announce_pending_ && room_for(state_len)) {
    const state_msg m = make_state(0);
    uint8_t b[state_len];
    if (send_control({b, static_cast<size_t>(encode_state(b, m))})) {
      announce_pending_ = false;
      ++work;
    }
  }
  if (pause_sent_ != paused_ && room_for(pause_len)) {
    uint8_t b[pause_len];
    if (send_control({b, static_cast<size_t>(encode_pause(b, paused_))})) {
      pause_sent_ = paused_;
      ++work;
    }
  }
  return work;
}

// ---- Primary: sending ----------------------------------------------------------------------

int volume::impl::send_write(uint32_t i) {
  app_req& r = app_[i];
  const io_request& io = r.io;
  const msg_type type = msg_type_of(io.op);
  const uint64_t seq = (++seq_counter_ << seq_index_bits) | i;
  const int rc =
      send_io(type, seq, io.offset, io.length, (io.flags & io_fua) != 0,
              static_cast<const uint8_t*>(io.buf), io.length, make_cookie(ck::app, i), r.pages);
  if (rc == -EAGAIN) return rc;
  if (type == msg_type::write && rc == 0) r.ref_held = true;
  r.seq = seq;
  r.session = session_;
  r.remote_pending = rc == 0;
  return rc;
}

int volume::impl::send_io(msg_type type, uint64_t seq, uint64_t offset, uint64_t length, bool fua,
                          const uint8_t* data, uint64_t wire, uint64_t cookie, uint32_t pages) {
  io_msg m;
  m.seq = seq;
  m.offset = offset;
  m.length = length;
  m.fua = fua;
  m.compressed = type == msg_type::write && wire != length;
  uint8_t hdr[io_len];
  int rc = conn_->send({hdr, static_cast<size_t>(encode_io(hdr, type, m))});
  if (rc < 0) return -EAGAIN;  // nothing queued
  if (type == msg_type::write) {
    rc = conn_->send_ref({data, wire}, cookie);
    if (rc < 0) {
      // A header without its data: the stream is unusable; start a new session.
      log("cannot queue a write's data after its header: the session restarts");
      restart_pending_ = true;
      return -EPIPE;
    }
  }
  --peer_slots_;
  peer_pages_ -= pages;
  ++peer_in_flight_;
  ++ctr_.replicated;
  ctr_.replicated_bytes += length;
  if (!fua) {
    const uint64_t first = offset >> extent_shift_;
    const uint64_t last = (offset + length - 1) >> extent_shift_;
    for (uint64_t e = first; e <= last; ++e)
      ext_epoch_[e] = send_epoch_;
    wrote_since_peer_flush_ = true;
  }
  return 0;
}

int volume::impl::send_flush(uint64_t& seq_out, uint64_t& epoch_out, uint32_t index) {
  if (peer_slots_ == 0 || !room_for(flush_len)) return -EAGAIN;
  const uint64_t seq = (++seq_counter_ << seq_index_bits) | index;
  uint8_t b[flush_len];
  const int rc = conn_->send({b, static_cast<size_t>(encode_flush(b, seq))});
  if (rc < 0) return rc;
  seq_out = seq;
  epoch_out = send_epoch_++;
  wrote_since_peer_flush_ = false;
  last_peer_flush_ns_ = now_;
  --peer_slots_;
  ++peer_in_flight_;
  ++ctr_.peer_flushes;
  return 0;
}

bool volume::impl::send_internal_flush() {
  uint64_t seq = 0, epoch = 0;
  if (send_flush(seq, epoch, internal_flush_index) < 0) return false;
  internal_flush_pending_ = true;
  internal_flush_seq_ = seq;
  internal_flush_epoch_ = epoch;
  return true;
}

void volume::impl::maybe_peer_flush() {
  if (!replicating() || !wrote_since_peer_flush_ || internal_flush_pending_) return;
  if (now_ - last_peer_flush_ns_ < opt_.peer_flush_interval_ns) return;
  (void)send_internal_flush();
}

// ---- Primary: the async queue ---------------------------------------------------------------

bool volume::impl::aq_turn(uint32_t i) const {
  const uint64_t sub = app_[i].sub;
  for (uint32_t j = writes_.head; j != npos; j = writes_.next(app_, j)) {
    const app_req& e = app_[j];
    if (e.sub >= sub) return true;  // writes_ is in submission order
    if (!e.remote_sent) return false;
  }
  return true;
}

namespace {

constexpr uint64_t no_room = UINT64_MAX;

// Reserves `len` contiguous bytes of a byte ring of `cap` bytes whose read and write positions
// (absolute) are `rd` and `wr`, starting on a multiple of `align`; a reservation that would wrap
// starts at the ring's beginning instead. The absolute start, or no_room.
uint64_t ring_reserve(uint64_t rd, uint64_t wr, uint64_t cap, uint64_t len, uint64_t align = 1) {
  uint64_t start = (wr + align - 1) / align * align;
  if (len > 0 && start % cap + len > cap) start += cap - start % cap;
  return start + len - rd > cap ? no_room : start;
}

constexpr uint64_t hist_block = 4096;

uint64_t hist_round(uint64_t n) {
  return (n + hist_block - 1) / hist_block * hist_block;
}

}  // namespace

int volume::impl::aq_full(const char* why) {
  // During a resync the peer is Inconsistent anyway: the write is marked (the caller does)
  // and the resync's next pass sends it; restarting would only throw the resync's chunks in
  // flight away. Otherwise the session restarts into a resync.
  if (state_ != conn_state::sync_source) aq_overflow(why);
  return 0;
}

void volume::impl::hist_fail(const std::string& why) {
  if (!hist_failed_) {
    // A history that failed once is not trusted again (a full or dying disk would fail every
    // spill and restart every session): full memory falls back to the bitmap, as without one,
    // until the volume is attached again.
    hist_failed_ = true;
    log("async history: " + why + "; not used until the volume is attached again");
  }
  ++ctr_.local_errors;
}

int volume::impl::aq_push(uint32_t i) {
  const io_request& io = app_[i].io;
  const uint64_t len = io.op == io_op::write ? io.length : 0;
  if (aq_overflowed_) return aq_full("async queue full");
  if (aq_tail_ - aq_head_ >= aq_.size()) return aq_full("async queue entries full");
  // The byte ring while nothing waits in the history (the queue stays in order there), else
  // the history file through the bounce buffer.
  uint64_t start = aq_load_ == aq_tail_ ? ring_reserve(aq_rd_, aq_wr_, aq_cap_, len) : no_room;
  const bool spill = start == no_room;
  uint64_t hstart = 0;
  if (spill) {
    if (hist_ == nullptr || hist_failed_) return aq_full("async queue full");
    if (len > 0) {
      hstart = ring_reserve(hist_rd_, hist_wr_, hist_cap_, hist_round(len));
      if (hstart == no_room) return aq_full("async queue and history full");
      start = ring_reserve(hb_rd_, hb_wr_, hb_cap_, hist_round(len));
      if (start == no_room || hist_->in_flight() >= hist_->queue_depth()) {
        // The history's writes are behind: the application waits for them, but not for a
        // history that stopped answering.
        if (aq_hist_wait_ns_ == 0) {
          aq_hist_wait_ns_ = now_ == 0 ? 1 : now_;
        } else if (now_ - aq_hist_wait_ns_ > async_history_stall_ns) {
          aq_hist_wait_ns_ = 0;
          hist_fail("no history write completed for " +
                    std::to_string(async_history_stall_ns / 1'000'000) + " ms");
          return aq_full("the async history stalled");
        }
        return -EAGAIN;
      }
    }
  }
  aq_hist_wait_ns_ = 0;
  const uint32_t slot = static_cast<uint32_t>(aq_tail_ % aq_.size());
  aq_entry& e = aq_[slot];
  e = aq_entry{};
  e.kind = msg_type_of(io.op);
  e.fua = (io.flags & io_fua) != 0;
  e.offset = io.offset;
  e.length = io.length;
  e.queued_ns = now_;
  e.wire = len;
  uint8_t* dst = nullptr;
  if (len > 0) {
    // Compressed straight into its place when it shrinks (reserved at full size; what
    // compression saves is given back at once).
    dst = spill ? hb_mem_.get() + start % hb_cap_ : aq_mem_.get() + start % aq_cap_;
    const auto* src = static_cast<const uint8_t*>(io.buf);
    const size_t z = zcomp_ ? zcomp_->compress({src, len}, {dst, len}) : 0;
    if (z != 0) {
      e.wire = z;
    } else {
      std::memcpy(dst, src, len);
    }
  }
  if (!spill) {
    e.data = start % aq_cap_;
    e.end = start + e.wire;
    aq_wr_ = e.end;
    aq_load_ = aq_tail_ + 1;
  } else {
    e.in_ring = false;
    if (len > 0) {
      e.loaded = false;
      e.hlen = static_cast<uint32_t>(hist_round(e.wire));
      e.hdata = hstart % hist_cap_;
      e.hend = hstart + e.hlen;
      e.bend = start + e.hlen;
      const be::request q = be::request::write(e.hdata, dst, e.hlen, make_cookie(ck::hist, slot));
      if (hist_->submit({&q, 1}) != 1) return -EAGAIN;  // nothing taken: the write retries
      hist_wr_ = e.hend;
      hb_wr_ = e.bend;
      e.bounce = true;
      e.hist_io = true;
      hist_bytes_ += e.hlen;
      ++ctr_.async_spilled;
      ctr_.async_spilled_bytes += e.hlen;
    }
  }
  if (e.wire < len) {  // counted once it is queued (a retried write compresses again)
    ++ctr_.async_compressed;
    ctr_.async_compressed_bytes += len;
    ctr_.async_compressed_wire_bytes += e.wire;
  }
  if (e.kind != msg_type::flush) {
    // The extents stay in the activity log until the peer has the write: a crash here before
    // that replays them, and the resync covers what the peer never got. They are hot now (the
    // request holds them), so this only counts references.
    e.al_held = meta_.al().note_write(io.offset, io.length) >= 0;
  }
  ++aq_tail_;
  ++aq_pending_;
  aq_bytes_ += e.wire;
  aq_unsent_bytes_ += e.wire;
  ++ctr_.async_queued;
  ctr_.async_queued_bytes += len;
  return 1;
}

int volume::impl::aq_load() {
  int work = 0;
  while (aq_load_ < aq_tail_ && !aq_overflowed_) {
    const auto slot = static_cast<uint32_t>(aq_load_ % aq_.size());
    aq_entry& e = aq_[slot];
    if (e.hlen > 0) {
      if (!e.written || hist_->in_flight() >= hist_->queue_depth()) break;
      const uint64_t start = ring_reserve(aq_rd_, aq_wr_, aq_cap_, e.hlen, hist_block);
      if (start == no_room) break;
      const be::request q = be::request::read(e.hdata, aq_mem_.get() + start % aq_cap_, e.hlen,
                                              make_cookie(ck::hist, slot));
      if (hist_->submit({&q, 1}) != 1) break;
      e.data = start % aq_cap_;
      e.end = start + e.hlen;
      aq_wr_ = e.end;
      e.in_ring = true;
      e.hist_io = true;
      hist_bytes_ -= e.hlen;
      ++work;
    }
    ++aq_load_;
  }
  return work;
}

void volume::impl::on_hist_completion(uint32_t slot, int64_t result) {
  if (slot >= aq_.size() || !aq_[slot].hist_io) return;
  aq_entry& e = aq_[slot];
  e.hist_io = false;
  const bool write = e.bounce;
  if (write) {
    e.bounce = false;
    aq_free_bounce();
  }
  if (result < 0) {
    hist_fail(std::string("history ") + (write ? "write" : "read") + " failed (" +
              std::strerror(static_cast<int>(-result)) + ")");
    // Its data is in neither the history nor memory: the bitmap takes it, with the others.
    if (!e.done) aq_overflow("the async history failed");
  } else if (write) {
    e.written = true;
  } else {
    e.loaded = true;
  }
  aq_reclaim();
}

void volume::impl::aq_free_bounce() {
  while (aq_hbfree_ < aq_tail_) {
    const aq_entry& e = aq_[aq_hbfree_ % aq_.size()];
    if (e.bounce) break;
    if (e.hlen > 0) hb_rd_ = e.bend;
    ++aq_hbfree_;
  }
}

void volume::impl::aq_overflow(const char* why) {
  if (aq_overflowed_) return;
  // The peer cannot keep up: falling back to the bitmap costs a resync but does not hold the
  // application back. Until the session restarts nothing more is queued or sent, so the peer
  // keeps a prefix of this node's writes until the resync begins.
  aq_overflowed_ = true;
  restart_pending_ = true;
  ++ctr_.async_fallbacks;
  log(std::string(why) + " (" + std::to_string(aq_pending_) + " writes, " +
      std::to_string(aq_bytes_) + " bytes not acknowledged by the peer): falling back to the " +
      "bitmap; the peer is resynced and Inconsistent until that ends");
}

void volume::impl::aq_al_stalled() {
  if (aq_al_wait_ns_ == 0) {
    aq_al_wait_ns_ = now_ == 0 ? 1 : now_;
  } else if (now_ - aq_al_wait_ns_ > async_al_stall_ns) {
    aq_al_wait_ns_ = 0;
    aq_overflow("the activity log is full of queued writes' extents");
  }
}

int volume::impl::pump_async() {
  int work = 0;
  while (aq_send_ < aq_load_ && replicating() && !aq_overflowed_ && !restart_pending_) {
    const auto slot = static_cast<uint32_t>(aq_send_ % aq_.size());
    aq_entry& e = aq_[slot];
    if (!e.loaded) break;  // still being read back from the history
    if (e.kind == msg_type::flush) {
      if (send_flush(e.seq, e.epoch, slot) < 0) break;
    } else {
      const bool data = e.kind == msg_type::write;
      const uint32_t pages = data ? recv_pages(e.length) : 0;
      if (peer_slots_ == 0 || peer_pages_ < pages || !room_for(io_len + e.wire)) break;
      const uint64_t seq = (++seq_counter_ << seq_index_bits) | slot;
      const int rc = send_io(e.kind, seq, e.offset, e.length, e.fua, aq_mem_.get() + e.data, e.wire,
                             make_cookie(ck::aq, slot), pages);
      if (rc == -EAGAIN) break;
      if (rc < 0) break;  // the session restarts; the entry is marked with the others
      e.seq = seq;
      e.pages = pages;
      e.ref_held = data;
      aq_unsent_bytes_ -= e.wire;
    }
    e.sent = true;
    ++aq_send_;
    ++work;
  }
  return work;
}

void volume::impl::aq_acked(uint32_t slot, const ack_msg& a) {
  if (slot >= aq_.size() || !aq_[slot].sent || aq_[slot].done || aq_[slot].seq != a.seq) {
    protocol_error("an ack for a request never sent");
    return;
  }
  aq_entry& e = aq_[slot];
  e.done = true;
  --aq_pending_;
  aq_bytes_ -= e.wire;
  return_credit(e.pages);
  e.pages = 0;
  peer_answered(e.kind == msg_type::flush, e.offset, e.length, e.epoch, a.status,
                e.kind == msg_type::flush ? "queued flush" : "queued write");
  if (e.al_held) {
    meta_.al().complete_write(e.offset, e.length);
    e.al_held = false;
  }
  aq_reclaim();
}

uint64_t volume::impl::aq_first_pending() const {
  uint64_t k = aq_head_;
  while (k < aq_tail_ && aq_[k % aq_.size()].done)
    ++k;
  return k;
}

void volume::impl::aq_reclaim() {
  // Bounce space first: the entries it walks must not be reused before it has seen them.
  if (hist_ != nullptr) aq_free_bounce();
  while (aq_head_ < aq_tail_) {
    const aq_entry& e = aq_[aq_head_ % aq_.size()];
    if (!e.done || e.ref_held || e.hist_io) break;
    if (e.in_ring) aq_rd_ = e.end;
    if (e.hlen > 0) hist_rd_ = e.hend;
    ++aq_head_;
  }
}

bool volume::impl::aq_abandon() {
  bool marked = false;
  vm::dirty_bitmap& bm = meta_.bitmap();
  for (uint64_t k = aq_head_; k < aq_tail_; ++k) {
    aq_entry& e = aq_[k % aq_.size()];
    if (e.done) continue;
    if (e.kind != msg_type::flush) {
      (void)bm.set_range(e.offset, e.length);
      marked = true;
    }
    aq_bytes_ -= e.wire;
    if (!e.sent) aq_unsent_bytes_ -= e.wire;
    e.done = true;
    e.pages = 0;
    --aq_pending_;
  }
  aq_send_ = aq_tail_;
  for (; aq_load_ < aq_tail_; ++aq_load_)  // nothing more is read back
    hist_bytes_ -= aq_[aq_load_ % aq_.size()].hlen;
  aq_overflowed_ = false;
  return marked;
}

void volume::impl::aq_release_al() {
  for (uint64_t k = aq_head_; k < aq_tail_; ++k) {
    aq_entry& e = aq_[k % aq_.size()];
    if (e.done && e.al_held) {
      meta_.al().complete_write(e.offset, e.length);
      e.al_held = false;
    }
  }
  aq_reclaim();
}

void volume::impl::handle_ack(const ack_msg& a) {
  const auto idx = static_cast<uint32_t>(a.seq & seq_index_mask);
  if (idx == internal_flush_index) {
    if (!internal_flush_pending_ || a.seq != internal_flush_seq_) {
      protocol_error("an ack for a flush never sent");
      return;
    }
    internal_flush_pending_ = false;
    ++peer_slots_;
    --peer_in_flight_;
    ++ctr_.acks;
    if (a.status == 0) {
      peer_durable_epoch_ = std::max(peer_durable_epoch_, internal_flush_epoch_);
    } else {
      ++ctr_.peer_errors;
      log("the peer failed a flush: " + std::string(std::strerror(-a.status)));
      restart_pending_ = true;
    }
    return;
  }
  if (async()) {
    aq_acked(idx, a);
    return;
  }
  if (idx >= app_.size() || !app_[idx].used || !app_[idx].remote_pending ||
      app_[idx].seq != a.seq) {
    protocol_error("an ack for a request never sent");
    return;
  }
  app_req& r = app_[idx];
  r.remote_pending = false;
  return_credit(r.pages);
  r.pages = 0;
  const bool flush = r.io.op == io_op::flush;
  peer_answered(flush, r.io.offset, r.io.length, r.flush_epoch, a.status,
                flush ? "flush" : "write");
  try_complete(idx);
}

void volume::impl::peer_answered(bool flush, uint64_t offset, uint64_t length, uint64_t epoch,
                                 int status, const char* what) {
  ++ctr_.acks;
  if (status < 0) {
    ++ctr_.peer_errors;
    log(std::string("the peer failed a ") + what + ": " + std::strerror(-status) +
        "; the range is marked for resync and the session restarts");
    if (!flush) mark_out_of_sync(offset, length);
    restart_pending_ = true;
  } else if (flush) {
    peer_durable_epoch_ = std::max(peer_durable_epoch_, epoch);
  }
}

void volume::impl::on_release(uint64_t cookie, bool acked) {
  const uint32_t idx = cookie_index(cookie);
  switch (cookie_kind(cookie)) {
    case ck::app:
      if (idx < app_.size() && app_[idx].used && app_[idx].ref_held) {
        app_[idx].ref_held = false;
        try_complete(idx);
      }
      break;
    case ck::aq:
      if (idx < aq_.size() && aq_[idx].ref_held) {
        aq_[idx].ref_held = false;
        aq_reclaim();
      }
      break;
    case ck::rs:
      if (idx < rs_.size() && rs_[idx].st == rs_chunk::stage::parts && rs_[idx].refs > 0) {
        --rs_[idx].refs;
        if (!acked) rs_[idx].failed = true;
        (void)settle_parts(idx);
      } else if (idx < rs_.size() && rs_[idx].st == rs_chunk::stage::sent) {
        rs_chunk& c = rs_[idx];
        c.released = true;
        if (c.acked || !acked || c.session != session_ || state_ != conn_state::sync_source) {
          free_chunk(idx);
        }
      }
      break;
    default:
      break;
  }
}

// ---- Secondary: applying -------------------------------------------------------------------

void volume::impl::handle_io(const message& m) {
  const bool resync = m.type == msg_type::resync_data;
  if (is_primary()) {
    protocol_error(std::string("the peer sent ") + to_string(m.type) + " to a primary");
    return;
  }
  if (resync ? state_ != conn_state::sync_target
             : state_ != conn_state::connected && state_ != conn_state::sync_target) {
    protocol_error(std::string(to_string(m.type)) + " in state " + to_string(state_));
    return;
  }
  const bool flush = m.type == msg_type::flush;
  const bool data = m.type == msg_type::write || resync;
  if (!flush) {
    const io_msg& io = m.io;
    if (io.offset % block_ != 0 || io.length % block_ != 0 || io.offset > size_ ||
        io.length > size_ - io.offset || (data && io.length > max_io_bytes)) {
      protocol_error(std::string(to_string(m.type)) + " outside the volume or misaligned");
      return;
    }
  }
  if (rx_free_.empty()) {
    protocol_error("the peer exceeded its request credit");
    return;
  }
  const uint32_t pages = data ? recv_pages(m.io.length) : 0;
  if (page_free_.size() < pages) {
    protocol_error("the peer exceeded its data credit");
    return;
  }
  const uint32_t i = rx_free_.back();
  rx_free_.pop_back();
  rx_req& r = rx_[i];
  r.kind = m.type;
  r.seq = flush ? m.seq : m.io.seq;
  r.offset = flush ? 0 : m.io.offset;
  r.length = flush ? 0 : m.io.length;
  r.fua = !flush && m.io.fua;
  r.compressed = data && m.io.compressed;
  r.session = session_;
  r.used = true;
  r.npages = static_cast<uint16_t>(pages);
  for (uint32_t k = 0; k < pages; ++k) {
    r.pages[k] = page_free_.back();
    page_free_.pop_back();
  }
  r.st = data ? rx_req::stage::wait_data : rx_req::stage::ready;
  rx_order_.push_back(rx_, i);
  if (data) expect_data_ = i;
  rx_dirty_ = true;
}

void volume::impl::handle_data(std::span<const uint8_t> bytes) {
  const uint32_t i = expect_data_;
  expect_data_ = npos;
  rx_req& r = rx_[i];
  if (r.compressed) {
    // Into one chunk of scratch, then into the pages like uncompressed data.
    const long n = zdecomp_.decompress_exact(bytes, {zscratch_.get(), r.length});
    if (n != static_cast<long>(r.length)) {
      release_rx_pages(r);
      release_rx(i);
      protocol_error("compressed " + std::string(to_string(r.kind)) + " data of " +
                     std::to_string(bytes.size()) + " bytes does not decompress to the " +
                     std::to_string(r.length) + " bytes announced");
      return;
    }
    bytes = {zscratch_.get(), r.length};
  }
  if (bytes.size() != r.length) {
    // Free it: it never reaches the backend.
    release_rx_pages(r);
    release_rx(i);
    protocol_error("data of " + std::to_string(bytes.size()) + " bytes for a " +
                   std::to_string(r.length) + "-byte " + to_string(r.kind));
    return;
  }
  size_t off = 0;
  for (uint16_t k = 0; k < r.npages; ++k) {
    const size_t n = std::min<size_t>(recv_page_size, bytes.size() - off);
    std::memcpy(pages_mem_.get() + size_t{r.pages[k]} * recv_page_size, bytes.data() + off, n);
    off += n;
  }
  r.st = rx_req::stage::ready;
  rx_dirty_ = true;
}

// A checksum resync's digest request: read the range (in stream order, like a write, so that it
// sees every write the source sent before it) and answer which blocks differ. Its digests wait
// in one page past the ones the read fills.
void volume::impl::handle_digest(const digest_msg& m) {
  // A verify's request comes from the primary while in sync; a resync's during the resync.
  if (is_primary() || state_ != (m.verify ? conn_state::connected : conn_state::sync_target)) {
    protocol_error(std::string("resync_digest in state ") + to_string(state_));
    return;
  }
  if (m.offset % block_ != 0 || m.length % block_ != 0 || m.offset > size_ ||
      m.length > size_ - m.offset || m.length > max_io_bytes) {
    protocol_error("resync_digest outside the volume or misaligned");
    return;
  }
  if (rx_free_.empty()) {
    protocol_error("the peer exceeded its request credit");
    return;
  }
  const auto pages = recv_pages(m.length) + 1;
  if (page_free_.size() < pages) {
    protocol_error("the peer exceeded its data credit");
    return;
  }
  const uint32_t i = rx_free_.back();
  rx_free_.pop_back();
  rx_req& r = rx_[i];
  r.kind = msg_type::resync_digest;
  r.seq = m.seq;
  r.offset = m.offset;
  r.length = m.length;
  r.fua = false;
  r.verify = m.verify;
  r.session = session_;
  r.used = true;
  r.npages = static_cast<uint16_t>(pages);
  for (uint32_t k = 0; k < pages; ++k) {
    r.pages[k] = page_free_.back();
    page_free_.pop_back();
  }
  std::memcpy(pages_mem_.get() + size_t{r.pages[pages - 1]} * recv_page_size, m.digests.data(),
              m.digests.size());
  r.st = rx_req::stage::ready;
  rx_order_.push_back(rx_, i);
  rx_dirty_ = true;
  if (!m.verify) ++ctr_.resync_digest_chunks;
}

uint32_t volume::impl::compare_digests(const rx_req& r, uint64_t* mask) {
  const uint32_t blocks = digest_blocks(r.length);
  std::fill(mask, mask + max_chunk_blocks / 64, 0);
  // The read filled pages 0 .. npages - 2 (16 KiB each, so whole 4 KiB blocks but the last).
  uint32_t b = 0;
  uint64_t left = r.length;
  for (uint16_t k = 0; k + 1 < r.npages; ++k) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(recv_page_size, left));
    const size_t got = digest_.digest_blocks(
        {pages_mem_.get() + size_t{r.pages[k]} * recv_page_size, n}, digest_block,
        {digest_tmp_.data() + size_t{b} * digest_len, digest_tmp_.size() - size_t{b} * digest_len});
    if (got != (n + digest_block - 1) / digest_block) break;  // the rest counts as different
    b += static_cast<uint32_t>(got);
    left -= n;
  }
  const uint8_t* theirs = pages_mem_.get() + size_t{r.pages[r.npages - 1]} * recv_page_size;
  for (uint32_t i = 0; i < blocks; ++i) {
    // A block the digest could not be computed for (b short) counts as different.
    if (i >= b || std::memcmp(digest_tmp_.data() + size_t{i} * digest_len,
                              theirs + size_t{i} * digest_len, digest_len) != 0) {
      mask[i / 64] |= 1ULL << (i % 64);
    }
  }
  return blocks;
}

// Stream order: a request waits for every earlier one it overlaps; a flush for every earlier one.
bool volume::impl::rx_blocked(uint32_t i) {
  const rx_req& r = rx_[i];
  const bool flush = r.kind == msg_type::flush;
  for (uint32_t j = rx_order_.head; j != npos && j != i; j = rx_order_.next(rx_, j)) {
    const rx_req& e = rx_[j];
    if (flush) return true;
    if (e.kind != msg_type::flush && overlaps(e.offset, e.length, r.offset, r.length)) return true;
  }
  return false;
}

int volume::impl::pump_rx() {
  if (!rx_dirty_) return 0;
  rx_dirty_ = false;
  int work = 0;
  for (uint32_t i = rx_order_.head; i != npos; i = rx_order_.next(rx_, i)) {
    rx_req& r = rx_[i];
    if (r.st != rx_req::stage::ready || rx_blocked(i)) continue;
    const uint64_t cookie = make_cookie(ck::rx, i);
    be::request q;
    iovec iov[max_io_bytes / recv_page_size];
    switch (r.kind) {
      case msg_type::write:
      case msg_type::resync_data: {
        uint64_t left = r.length;
        for (uint16_t k = 0; k < r.npages; ++k) {
          iov[k].iov_base = pages_mem_.get() + size_t{r.pages[k]} * recv_page_size;
          iov[k].iov_len = static_cast<size_t>(std::min<uint64_t>(recv_page_size, left));
          left -= iov[k].iov_len;
        }
        q = be::request::writev(r.offset, iov, r.npages, r.length, cookie, r.fua ? be::req_fua : 0);
        break;
      }
      case msg_type::resync_digest: {
        uint64_t left = r.length;
        const auto n = static_cast<uint16_t>(r.npages - 1);
        for (uint16_t k = 0; k < n; ++k) {
          iov[k].iov_base = pages_mem_.get() + size_t{r.pages[k]} * recv_page_size;
          iov[k].iov_len = static_cast<size_t>(std::min<uint64_t>(recv_page_size, left));
          left -= iov[k].iov_len;
        }
        q = be::request::readv(r.offset, iov, n, r.length, cookie);
        break;
      }
      case msg_type::discard:
        q = be::request::discard(r.offset, r.length, cookie);
        break;
      case msg_type::write_zeroes:
        q = be::request::write_zeroes(r.offset, r.length, cookie);
        break;
      default:
        q = be::request::flush(cookie);
        break;
    }
    if (data_.submit({&q, 1}) != 1) {
      rx_dirty_ = true;  // the backend is full: again next poll
      break;
    }
    r.st = rx_req::stage::issued;
    ++work;
  }
  return work;
}

void volume::impl::release_rx_pages(rx_req& r) {
  for (uint16_t k = 0; k < r.npages; ++k)
    page_free_.push_back(r.pages[k]);
  r.npages = 0;
}

void volume::impl::release_rx(uint32_t i) {
  rx_order_.erase(rx_, i);
  rx_[i].used = false;
  rx_free_.push_back(i);
}

void volume::impl::on_rx_completion(uint32_t i, int64_t result) {
  rx_req& r = rx_[i];
  if (!r.used || r.st != rx_req::stage::issued) return;
  ++rx_completions_;
  const bool current = r.session == session_ && session_up();
  const int status = result < 0 ? static_cast<int>(result) : 0;
  if (r.kind == msg_type::resync_digest) {
    uint64_t mask[max_chunk_blocks / 64] = {};
    uint32_t blocks = 0;
    if (result >= 0) {
      blocks = compare_digests(r, mask);
      bool any = false;
      uint32_t differing = 0;
      for (const uint64_t w : mask) {
        any = any || w != 0;
        differing += static_cast<uint32_t>(__builtin_popcountll(w));
      }
      if (r.verify) {
        ctr_.verify_bytes += r.length;
        ctr_.verify_differing_blocks += differing;
      } else if (current && state_ == conn_state::sync_target) {
        const uint64_t diff_bytes =
            std::min<uint64_t>(uint64_t{differing} * digest_block, r.length);
        ctr_.resync_bytes_same += r.length - diff_bytes;
        rs_done_bytes_ += r.length - diff_bytes;  // the rest counts as it is written
        // Nothing to receive for this chunk: it is in sync here.
        if (!any) (void)meta_.bitmap().clear_range(r.offset, r.length);
      }
    } else {
      ++ctr_.local_errors;
    }
    release_rx_pages(r);
    if (current && state_ != conn_state::refused) queue_digest_ack(r.seq, status, blocks, mask);
    release_rx(i);
    rx_dirty_ = true;
    return;
  }
  release_rx_pages(r);
  if (result < 0) {
    ++ctr_.local_errors;
  } else {
    ++ctr_.applied;
    ctr_.applied_bytes += r.length;
    if (r.kind == msg_type::resync_data && current && state_ == conn_state::sync_target) {
      (void)meta_.bitmap().clear_range(r.offset, r.length);
      ctr_.resync_bytes_received += r.length;
      rs_done_bytes_ += r.length;
    }
  }
  if (current && state_ != conn_state::refused) {
    queue_ack(r.kind == msg_type::resync_data ? msg_type::resync_ack : msg_type::ack, r.seq,
              status);
  }
  release_rx(i);
  rx_dirty_ = true;
}

namespace {

// An ack or a digest ack into `b` (at least digest_ack_header_len + max_chunk_blocks / 8 bytes).
size_t encode_pending(uint8_t* b, size_t cap, msg_type type, const ack_msg& a, uint32_t count,
                      const uint64_t* mask) {
  if (type != msg_type::resync_digest_ack) {
    return static_cast<size_t>(encode_ack({b, cap}, type, a));
  }
  uint8_t words[max_chunk_blocks / 8];
  const size_t n = a.status < 0 ? 0 : (size_t{count} + 63) / 64;
  for (size_t w = 0; w < n; ++w)
    for (size_t k = 0; k < 8; ++k)
      words[w * 8 + k] = static_cast<uint8_t>(mask[w] >> (8 * k));
  return static_cast<size_t>(
      encode_digest_ack({b, cap}, a.seq, a.status, a.status < 0 ? 0 : count, {words, n * 8}));
}

constexpr size_t pending_max = digest_ack_header_len + max_chunk_blocks / 8;

}  // namespace

void volume::impl::queue_ack(msg_type type, uint64_t seq, int status) {
  const ack_msg a{seq, status};
  if (acks_count_ == 0) {
    uint8_t b[ack_len];
    if (send_control({b, static_cast<size_t>(encode_ack(b, type, a))})) return;
  }
  if (acks_count_ == acks_.size()) return;  // cannot happen: one ack per receive slot
  pending_ack& p = acks_[(acks_head_ + acks_count_) % acks_.size()];
  p.type = type;
  p.ack = a;
  p.count = 0;
  ++acks_count_;
}

void volume::impl::queue_digest_ack(uint64_t seq, int status, uint32_t count,
                                    const uint64_t* mask) {
  const ack_msg a{seq, status};
  if (acks_count_ == 0) {
    uint8_t b[pending_max];
    if (send_control({b, encode_pending(b, sizeof b, msg_type::resync_digest_ack, a, count, mask)}))
      return;
  }
  if (acks_count_ == acks_.size()) return;  // cannot happen: one ack per receive slot
  pending_ack& p = acks_[(acks_head_ + acks_count_) % acks_.size()];
  p.type = msg_type::resync_digest_ack;
  p.ack = a;
  p.count = count;
  std::copy(mask, mask + max_chunk_blocks / 64, p.mask);
  ++acks_count_;
}

int volume::impl::flush_acks() {
  int work = 0;
  while (acks_count_ > 0 && session_up()) {
    const pending_ack& p = acks_[acks_head_];
    uint8_t b[pending_max];
    if (!send_control({b, encode_pending(b, sizeof b, p.type, p.ack, p.count, p.mask)})) break;
    acks_head_ = (acks_head_ + 1) % static_cast<uint32_t>(acks_.size());
    --acks_count_;
    ++work;
  }
  return work;
}

// ---- Bitmap exchange -----------------------------------------------------------------------

int volume::impl::pump_bitmap_send() {
  if ((state_ != conn_state::sync_source && state_ != conn_state::sync_target) || rs_bitmap_sent_) {
    return 0;
  }
  int work = 0;
  vm::dirty_bitmap& bm = meta_.bitmap();
  if (!rs_full_) {
    while (rs_bitmap_page_ < bm.pages()) {
      const std::span<const uint8_t> page = bm.page_bytes(rs_bitmap_page_);
      bool empty = true;
      for (size_t k = 0; k < page.size() && empty; k += 8) {
        uint64_t w;
        std::memcpy(&w, page.data() + k, 8);
        empty = w == 0;
      }
      if (!empty) {
        const int len = encode_bitmap({msg_buf_.get(), bitmap_header_len + page.size()},
                                      uint64_t{rs_bitmap_page_} * (vm::bitmap_page_size / 8), page);
        if (!room_for(static_cast<uint64_t>(len)) ||
            !send_control({msg_buf_.get(), static_cast<size_t>(len)})) {
          return work;
        }
        ++work;
      }
      ++rs_bitmap_page_;
    }
  }
  uint8_t b[bitmap_done_len];
  if (!room_for(bitmap_done_len) ||
      !send_control({b, static_cast<size_t>(encode_bitmap_done(b, bm.count_dirty()))})) {
    return work;
  }
  rs_bitmap_sent_ = true;
  if (rs_peer_bitmap_done_) rs_total_ = bm.dirty_bytes();
  return work + 1;
}

void volume::impl::handle_bitmap(const bitmap_msg& b) {
  if ((state_ != conn_state::sync_source && state_ != conn_state::sync_target) ||
      rs_peer_bitmap_done_ || rs_full_) {
    protocol_error("an unexpected bitmap message");
    return;
  }
  vm::dirty_bitmap& bm = meta_.bitmap();
  const uint64_t bits = bm.bits();
  for (uint32_t k = 0; k < b.count; ++k) {
    uint64_t w = b.word(k);
    while (w != 0) {
      const unsigned lo = static_cast<unsigned>(__builtin_ctzll(w));
      // The run of set bits starting at `lo` within this word.
      const uint64_t shifted = w >> lo;
      const unsigned run =
          shifted == ~0ULL ? 64 - lo : static_cast<unsigned>(__builtin_ctzll(~shifted));
      const uint64_t bit = (b.first_word + k) * 64 + lo;
      if (bit + run > bits) {
        protocol_error("bitmap bits beyond the volume");
        return;
      }
      (void)bm.set_range(bit * gran_, uint64_t{run} * gran_);
      w = run + lo >= 64 ? 0 : w & ~(((1ULL << run) - 1) << lo);
    }
  }
}

void volume::impl::handle_bitmap_done() {
  if ((state_ != conn_state::sync_source && state_ != conn_state::sync_target) ||
      rs_peer_bitmap_done_) {
    protocol_error("an unexpected bitmap_done");
    return;
  }
  rs_peer_bitmap_done_ = true;
  vm::dirty_bitmap& bm = meta_.bitmap();
  if (state_ == conn_state::sync_target) {
    // The union survives a crash of the target: a restart resumes instead of starting over.
    if (bm.flush() < 0) {
      ++ctr_.local_errors;
    } else {
      ++ctr_.bitmap_flushes;
    }
  }
  if (rs_bitmap_sent_) rs_total_ = bm.dirty_bytes();
  log("bitmaps exchanged: " + std::to_string(bm.dirty_bytes()) + " bytes to resync");
}

// ---- Resync --------------------------------------------------------------------------------

bool volume::impl::app_active() const {
  return have_app_write_ && now_ - last_app_write_ns_ < opt_.app_active_ns;
}

void volume::impl::refill_tokens() {
  uint64_t limit = opt_.resync_rate;
  if (app_active()) {
    limit = limit == 0 ? opt_.resync_min_rate : std::min(limit, opt_.resync_min_rate);
  }
  if (limit != rs_limit_) {
    rs_limit_ = limit;
    rs_tokens_ = std::min<int64_t>(rs_tokens_, 0);
  }
  const uint64_t dt = now_ - rs_refill_ns_;
  rs_refill_ns_ = now_;
  if (limit == 0) {
    rs_tokens_ = 0;
    return;
  }
  const auto add =
      static_cast<int64_t>(static_cast<unsigned __int128>(dt) * limit / 1'000'000'000u);
  rs_tokens_ = std::min<int64_t>(rs_tokens_ + add, opt_.resync_chunk);
}

void volume::impl::free_chunk(uint32_t c) {
  rs_chunk& k = rs_[c];
  if (k.st == rs_chunk::stage::free) return;
  k.st = rs_chunk::stage::free;
  k.acked = false;
  k.released = true;
  k.checksum = false;
  k.verify = false;
  k.remarked = false;
  --rs_in_flight_;
}

void volume::impl::abort_resync(const std::string& why) {
  go_refused("resync aborted: " + why);
}

int volume::impl::send_chunks() {
  int work = 0;
  for (uint32_t c = 0; c < rs_.size(); ++c) {
    rs_chunk& k = rs_[c];
    if (k.st == rs_chunk::stage::parts) {
      work += send_parts(c);
      continue;
    }
    if (k.st == rs_chunk::stage::reread_wait) {
      // Read the differing chunk again once no write to it is under way, as pump_resync does
      // for a first read: what the target applies last is then never older than a write.
      if (app_write_in_progress(k.offset, k.length)) continue;
      const be::request q = be::request::read(k.offset, k.buf, k.length, make_cookie(ck::rs, c));
      if (data_.submit({&q, 1}) != 1) break;
      rs_aq_mark_ = aq_tail_;
      k.st = rs_chunk::stage::rereading;
      ++work;
      continue;
    }
    if (k.st != rs_chunk::stage::read) continue;
    // Async: a verify's digests follow the writes queued before its read, or the peer would
    // compare against data that is still on its way.
    if (k.verify && async() && aq_send_ < k.aq_mark) continue;
    if (k.checksum) {
      const int sent = send_digest(c);
      if (sent == 0) break;
      work += sent;
      continue;
    }
    // Compressed when the option is on and the chunk shrinks (0: it does not, send it as is),
    // once per read: a chunk held back by a full send buffer, as on a slow link, would otherwise
    // be compressed again at every poll.
    if (zcomp_ && !k.zready) {
      k.zlen = static_cast<uint32_t>(zcomp_->compress({k.buf, k.length}, {k.zbuf, rs_zcap_}));
      k.zready = true;
      ctr_.resync_compression_input_bytes += k.length;
    }
    const size_t z = zcomp_ ? k.zlen : 0;
    const uint64_t wire = z ? z : k.length;
    if (!room_for(io_len + wire)) break;
    io_msg m;
    m.seq = (++seq_counter_ << seq_index_bits) | c;
    m.offset = k.offset;
    m.length = k.length;
    m.compressed = z != 0;
    uint8_t hdr[io_len];
    if (conn_->send({hdr, static_cast<size_t>(encode_io(hdr, msg_type::resync_data, m))}) < 0) {
      break;
    }
    if (z != 0) {
      ctr_.resync_compressed_bytes += k.length;
      ctr_.resync_compressed_wire_bytes += z;
    }
    if (conn_->send_ref({z ? k.zbuf : k.buf, static_cast<size_t>(wire)}, make_cookie(ck::rs, c)) <
        0) {
      log("cannot queue resync data after its header: the session restarts");
      restart_pending_ = true;
      free_chunk(c);
      break;
    }
    k.seq = m.seq;
    k.st = rs_chunk::stage::sent;
    k.released = false;
    ++work;
  }
  return work;
}

// An application write past its gates (sent to the peer or marked) whose local write has not
// completed: a resync read of its range now could read the old data and send it after the new.
bool volume::impl::app_write_in_progress(uint64_t offset, uint64_t length) const {
  for (uint32_t j = writes_.head; j != npos; j = writes_.next(app_, j)) {
    const app_req& e = app_[j];
    if (e.remote_sent && !e.local_done && overlaps(e.io.offset, e.io.length, offset, length)) {
      return true;
    }
  }
  return false;
}

int volume::impl::pump_resync() {
  if (state_ == conn_state::sync_target) {
    if (rs_finishing_ && !flush_in_flight_[static_cast<size_t>(flush_purpose::finish)]) {
      (void)submit_flush(flush_purpose::finish);
    }
    return 0;
  }
  if (state_ != conn_state::sync_source || !rs_bitmap_sent_ || !rs_peer_bitmap_done_) return 0;
  int work = send_chunks();
  if (rs_done_sent_ || paused_ || peer_paused_) return work;
  refill_tokens();
  if (app_active() && opt_.resync_min_rate == 0) return work;  // yields entirely
  vm::dirty_bitmap& bm = meta_.bitmap();
  bool restarted = false;
  for (;;) {
    if (rs_limit_ != 0 && rs_tokens_ <= 0) break;
    uint32_t c = 0;
    while (c < rs_.size() && rs_[c].st != rs_chunk::stage::free)
      ++c;
    if (c == rs_.size()) break;
    vm::dirty_bitmap::run run;
    if (!bm.next_dirty_run(rs_cursor_, run, opt_.resync_chunk)) {
      if (rs_in_flight_ > 0) break;
      // A restart is coming (a write the peer failed was marked): the target must not commit
      // UpToDate before it.
      if (restart_pending_) break;
      // Async: chunks overtake the queue; the target holds a prefix of the writes only once
      // every write queued before the last chunk was read has reached it.
      if (async() && aq_first_pending() < rs_aq_mark_) break;
      if (bm.count_dirty() == 0) {
        uint8_t b[gens_len];
        if (room_for(gens_len) && send_control({b, static_cast<size_t>(encode_gens(
                                                       b, msg_type::resync_done, st().gen))})) {
          rs_done_sent_ = true;
          ++work;
        }
        break;
      }
      if (restarted) break;
      rs_cursor_ = 0;  // bits set behind the cursor: another pass
      restarted = true;
      continue;
    }
    if (app_write_in_progress(run.offset, run.length)) break;  // read it once the write landed
    // A digest request holds the chunk's pages on the target (its read) and one for the digests.
    const auto pages = recv_pages(run.length) + (rs_checksum_ ? 1 : 0);
    if (peer_slots_ == 0 || peer_pages_ < pages) break;
    if (!start_chunk_read(c, run.offset, run.length, pages, rs_checksum_)) break;
    rs_aq_mark_ = aq_tail_;
    rs_cursor_ = run.offset + run.length;
    ++work;
  }
  return work;
}

bool volume::impl::start_chunk_read(uint32_t c, uint64_t offset, uint64_t len, uint32_t pages,
                                    bool checksum) {
  rs_chunk& k = rs_[c];
  const be::request q = be::request::read(offset, k.buf, len, make_cookie(ck::rs, c));
  if (data_.submit({&q, 1}) != 1) return false;
  k.st = rs_chunk::stage::reading;
  k.offset = offset;
  k.length = len;
  k.session = session_;
  k.pages = pages;
  k.acked = false;
  k.released = true;
  k.checksum = checksum;
  ++rs_in_flight_;
  --peer_slots_;
  peer_pages_ -= pages;
  ++peer_in_flight_;
  if (rs_limit_ != 0) rs_tokens_ -= static_cast<int64_t>(len);
  return true;
}

void volume::impl::on_rs_read(uint32_t c, int64_t result) {
  rs_chunk& k = rs_[c];
  if (k.st != rs_chunk::stage::reading && k.st != rs_chunk::stage::rereading) return;
  const bool live = k.verify ? state_ == conn_state::connected && vf_.running && k.vgen == vf_gen_
                             : state_ == conn_state::sync_source;
  if (k.session != session_ || !live) {
    if (k.verify && k.session == session_) {
      drop_verify_chunk(c);  // a stopped verify: its credits go back to this session
    } else {
      free_chunk(c);
    }
    return;
  }
  if (k.verify && result < 0) {
    ++ctr_.local_errors;
    const uint64_t at = k.offset;
    drop_verify_chunk(c);
    end_verify("interrupted: cannot read offset " + std::to_string(at) + ": " +
                   std::strerror(static_cast<int>(-result)),
               false);
    return;
  }
  if (result < 0) {
    ++ctr_.local_errors;
    free_chunk(c);
    abort_resync("cannot read offset " + std::to_string(k.offset) + ": " +
                 std::strerror(static_cast<int>(-result)));
    return;
  }
  k.st = k.st == rs_chunk::stage::rereading ? rs_chunk::stage::parts : rs_chunk::stage::read;
  k.zready = false;  // new data: compressed again before it is sent
}

void volume::impl::handle_resync_ack(const ack_msg& a) {
  const auto idx = static_cast<uint32_t>(a.seq & seq_index_mask);
  if (state_ == conn_state::sync_source && idx < rs_.size() &&
      rs_[idx].st == rs_chunk::stage::parts) {
    const rs_chunk& k = rs_[idx];
    for (uint32_t p = 0; p < k.parts_sent; ++p) {
      if (k.part_seq[p] == a.seq) {
        part_acked(idx, p, a);
        return;
      }
    }
  }
  if (state_ != conn_state::sync_source || idx >= rs_.size() ||
      rs_[idx].st != rs_chunk::stage::sent || rs_[idx].seq != a.seq) {
    protocol_error("a resync_ack for a chunk never sent");
    return;
  }
  rs_chunk& k = rs_[idx];
  return_credit(k.pages);
  if (a.status < 0) {
    ++ctr_.peer_errors;
    abort_resync("the sync target failed to write offset " + std::to_string(k.offset) + ": " +
                 std::strerror(-a.status));
    return;
  }
  if (!k.remarked) (void)meta_.bitmap().clear_range(k.offset, k.length);
  rs_done_bytes_ += k.length;
  ctr_.resync_bytes_sent += k.length;
  ++ctr_.resync_chunks_sent;
  k.acked = true;
  if (k.released) free_chunk(idx);
}

// ---- Checksum resync (source) -------------------------------------------------------------------

int volume::impl::send_digest(uint32_t c) {
  rs_chunk& k = rs_[c];
  const uint32_t blocks = digest_blocks(k.length);
  const size_t dlen = size_t{blocks} * digest_len;
  if (!room_for(digest_header_len + dlen)) return 0;
  if (digest_.digest_blocks({k.buf, k.length}, digest_block, {digest_tmp_.data(), dlen}) !=
      blocks) {
    if (k.verify) {
      const uint64_t at = k.offset;
      drop_verify_chunk(c);
      end_verify("interrupted: cannot compute the digests of offset " + std::to_string(at), false);
      return 0;
    }
    free_chunk(c);
    abort_resync("cannot compute the digests of offset " + std::to_string(k.offset));
    return 0;
  }
  const uint64_t seq = (++seq_counter_ << seq_index_bits) | c;
  const int len =
      encode_digest(digest_msg_, seq, k.offset, k.length, {digest_tmp_.data(), dlen}, k.verify);
  if (!send_control({digest_msg_.data(), static_cast<size_t>(len)})) return 0;
  k.seq = seq;
  k.blocks = blocks;
  k.st = rs_chunk::stage::digest_sent;
  return 1;
}

void volume::impl::handle_digest_ack(const digest_ack_msg& a) {
  const auto idx = static_cast<uint32_t>(a.seq & seq_index_mask);
  if (idx < rs_.size() && rs_[idx].verify && rs_[idx].st == rs_chunk::stage::digest_sent &&
      rs_[idx].seq == a.seq && state_ == conn_state::connected) {
    verify_answer(idx, a);
    return;
  }
  if (state_ != conn_state::sync_source || idx >= rs_.size() ||
      rs_[idx].st != rs_chunk::stage::digest_sent || rs_[idx].seq != a.seq) {
    protocol_error("a resync_digest_ack for a chunk never sent");
    return;
  }
  rs_chunk& k = rs_[idx];
  return_credit(k.pages);
  if (a.status < 0) {
    ++ctr_.peer_errors;
    abort_resync("the sync target failed to read offset " + std::to_string(k.offset) + ": " +
                 std::strerror(-a.status));
    return;
  }
  if (a.count != k.blocks) {
    protocol_error("a resync_digest_ack for " + std::to_string(a.count) + " blocks, not " +
                   std::to_string(k.blocks));
    return;
  }
  ++ctr_.resync_digest_chunks;
  std::fill(std::begin(k.diff), std::end(k.diff), 0);
  uint32_t differing = 0;
  for (uint32_t b = 0; b < k.blocks; ++b) {
    if (a.differs(b)) {
      k.diff[b / 64] |= 1ULL << (b % 64);
      ++differing;
    }
  }
  const uint64_t same = k.length - std::min<uint64_t>(uint64_t{differing} * digest_block, k.length);
  ctr_.resync_bytes_same += same;
  rs_done_bytes_ += same;
  if (differing == 0) {
    if (!k.remarked) (void)meta_.bitmap().clear_range(k.offset, k.length);
    free_chunk(idx);
    return;
  }
  k.next_block = 0;
  k.parts_sent = 0;
  k.parts_acked = 0;
  k.refs = 0;
  k.failed = false;
  k.st = rs_chunk::stage::reread_wait;
}

// One resync_data per run of differing blocks, as far as the target's credit and the send buffer
// allow; the rest on a later poll.
int volume::impl::send_parts(uint32_t c) {
  rs_chunk& k = rs_[c];
  int work = 0;
  while (k.next_block < k.blocks && !k.failed) {
    uint32_t b = k.next_block;
    while (b < k.blocks && !k.differs(b))
      ++b;
    if (b == k.blocks) {
      k.next_block = b;
      break;
    }
    uint32_t e = b;
    while (e < k.blocks && k.differs(e))
      ++e;
    const uint64_t off = uint64_t{b} * digest_block;
    const uint64_t len = std::min<uint64_t>(uint64_t{e} * digest_block, k.length) - off;
    const auto pages = recv_pages(len);
    if (peer_slots_ == 0 || peer_pages_ < pages || !room_for(io_len + len) ||
        k.parts_sent == max_chunk_parts) {
      break;
    }
    io_msg m;
    m.seq = (++seq_counter_ << seq_index_bits) | c;
    m.offset = k.offset + off;
    m.length = len;
    uint8_t hdr[io_len];
    if (conn_->send({hdr, static_cast<size_t>(encode_io(hdr, msg_type::resync_data, m))}) < 0) {
      break;
    }
    if (conn_->send_ref({k.buf + off, static_cast<size_t>(len)}, make_cookie(ck::rs, c)) < 0) {
      log("cannot queue resync data after its header: the session restarts");
      restart_pending_ = true;
      k.failed = true;
      break;
    }
    k.part_seq[k.parts_sent] = m.seq;
    k.part_len[k.parts_sent] = static_cast<uint32_t>(len);
    ++k.parts_sent;
    ++k.refs;
    --peer_slots_;
    peer_pages_ -= pages;
    ++peer_in_flight_;
    k.next_block = e;
    ++work;
  }
  (void)settle_parts(c);
  return work;
}

void volume::impl::part_acked(uint32_t c, uint32_t part, const ack_msg& a) {
  rs_chunk& k = rs_[c];
  const uint32_t len = k.part_len[part];
  k.part_seq[part] = 0;  // acked: a second ack for it is a protocol error
  return_credit(recv_pages(len));
  if (a.status < 0) {
    ++ctr_.peer_errors;
    abort_resync("the sync target failed to write a part of offset " + std::to_string(k.offset) +
                 ": " + std::strerror(-a.status));
    return;
  }
  ++k.parts_acked;
  rs_done_bytes_ += len;
  ctr_.resync_bytes_sent += len;
  (void)settle_parts(c);
}

bool volume::impl::settle_parts(uint32_t c) {
  rs_chunk& k = rs_[c];
  if (k.st != rs_chunk::stage::parts || k.refs > 0) return false;
  const bool dead = k.failed || k.session != session_ || state_ != conn_state::sync_source;
  if (!dead && (k.next_block < k.blocks || k.parts_acked < k.parts_sent)) return false;
  if (!dead) {
    if (!k.remarked) (void)meta_.bitmap().clear_range(k.offset, k.length);
    ++ctr_.resync_chunks_sent;
  }
  free_chunk(c);
  return true;
}

// ---- Online verify (source: the primary, while connected) ---------------------------------------

int volume::impl::pump_verify() {
  if (!vf_.running) return 0;
  if (state_ != conn_state::connected || !is_primary()) {
    end_verify(std::string("interrupted: the node is ") +
                   (is_primary() ? "no longer connected" : "no longer primary"),
               false);
    return 1;
  }
  int work = send_chunks();
  if (paused_ || peer_paused_) return work;
  refill_tokens();
  while (rs_limit_ == 0 || rs_tokens_ > 0) {
    if (vf_cursor_ >= size_) {
      if (rs_in_flight_ == 0) {
        end_verify("done", true);
        ++work;
      }
      break;
    }
    uint32_t c = 0;
    while (c < rs_.size() && rs_[c].st != rs_chunk::stage::free)
      ++c;
    if (c == rs_.size()) break;
    // A verify request holds its chunk's pages and one more on the peer: never more than the
    // peer has (it may offer as few as one write's 64 pages).
    const uint64_t fit = uint64_t{peer_hello_.recv_pages - 1} * recv_page_size;
    const uint64_t len = std::min<uint64_t>({opt_.resync_chunk, fit, size_ - vf_cursor_});
    if (app_write_in_progress(vf_cursor_, len)) break;  // read it once the write landed
    const auto pages = recv_pages(len) + 1;
    if (peer_slots_ == 0 || peer_pages_ < pages) break;
    if (!start_chunk_read(c, vf_cursor_, len, pages, true)) break;
    rs_chunk& k = rs_[c];
    k.aq_mark = aq_tail_;
    k.verify = true;
    k.vgen = vf_gen_;
    vf_cursor_ += len;
    ++work;
  }
  return work;
}

void volume::impl::verify_answer(uint32_t c, const digest_ack_msg& a) {
  rs_chunk& k = rs_[c];
  return_credit(k.pages);
  if (!vf_.running || k.vgen != vf_gen_) {
    free_chunk(c);  // the answer of a verify that was stopped (or replaced): not counted
    return;
  }
  if (a.status < 0) {
    ++ctr_.peer_errors;
    const uint64_t at = k.offset;
    free_chunk(c);
    end_verify("interrupted: the peer could not read offset " + std::to_string(at) + ": " +
                   std::strerror(-a.status),
               false);
    return;
  }
  if (a.count != k.blocks) {
    protocol_error("a resync_digest_ack for " + std::to_string(a.count) + " blocks, not " +
                   std::to_string(k.blocks));
    return;
  }
  ctr_.verify_bytes += k.length;
  vf_.done_bytes += k.length;
  for (uint32_t b = 0; b < k.blocks;) {
    if (!a.differs(b)) {
      ++b;
      continue;
    }
    uint32_t e = b;
    while (e < k.blocks && a.differs(e))
      ++e;
    const uint64_t off = k.offset + uint64_t{b} * digest_block;
    const uint64_t len =
        std::min<uint64_t>(uint64_t{e} * digest_block, k.length) - uint64_t{b} * digest_block;
    vf_.differing_blocks += e - b;
    ctr_.verify_differing_blocks += e - b;
    if (vf_.ranges < std::size(vf_.range_offset)) {
      vf_.range_offset[vf_.ranges] = off;
      vf_.range_length[vf_.ranges] = len;
      ++vf_.ranges;
      log("verify: the peer's data differs at offset " + std::to_string(off) + ", " +
          std::to_string(len) + " bytes");
    }
    if (vf_.repair) mark_out_of_sync(off, len);
    b = e;
  }
  free_chunk(c);
}

void volume::impl::return_credit(uint32_t pages) {
  ++peer_slots_;
  peer_pages_ += pages;
  --peer_in_flight_;
}

void volume::impl::drop_verify_chunk(uint32_t c) {
  // Its credits go back only to the session that lent them (a lost session zeroed them).
  if (rs_[c].session == session_ && session_up() && state_ == conn_state::connected) {
    return_credit(rs_[c].pages);
  }
  free_chunk(c);
}

void volume::impl::end_verify(const std::string& how, bool complete, bool restart) {
  vf_.running = false;
  // Chunks read but not sent yet hold credits and block writes over them: let them go. Chunks
  // still reading go when their read completes, answered ones when the answer comes.
  for (uint32_t c = 0; c < rs_.size(); ++c)
    if (rs_[c].verify && rs_[c].st == rs_chunk::stage::read) drop_verify_chunk(c);
  vf_.interrupted = !complete;
  if (complete) ++ctr_.verifies_completed;
  log("verify " + how + ": " + std::to_string(vf_.done_bytes) + " of " +
      std::to_string(vf_.total_bytes) + " bytes compared, " + std::to_string(vf_.differing_blocks) +
      " blocks of 4 KiB differ");
  if (vf_.repair && vf_.differing_blocks > 0) {
    // The differing blocks are marked (a new current id on the first mark): a new session
    // resyncs them from this node, comparing digests so that only those blocks travel.
    if (meta_.bitmap().flush() < 0) {
      ++ctr_.local_errors;
    } else {
      ++ctr_.bitmap_flushes;
    }
    if (restart) {
      want_resync_ = true;
      want_checksum_ = true;
      restart_pending_ = true;
      log("verify: repairing the differing blocks from this node");
    }
  }
}

void volume::impl::handle_resync_done(const vm::generation_ids& g) {
  if (state_ != conn_state::sync_target || rs_finishing_ || !rs_peer_bitmap_done_) {
    protocol_error("an unexpected resync_done");
    return;
  }
  rs_source_gen_ = g;
  rs_finishing_ = true;  // pump_resync flushes the data device, then finish_target() commits
}

void volume::impl::finish_target() {
  vm::volume_state& s = st();
  vm::finish_resync_as_target(s.gen, rs_source_gen_);
  s.disk = vm::disk_state::up_to_date;
  s.flags &= ~(vm::flag_resync_in_progress | vm::flag_crashed_primary);
  vm::dirty_bitmap& bm = meta_.bitmap();
  bm.clear_all();
  if (bm.flush() < 0) {
    ++ctr_.local_errors;
  } else {
    ++ctr_.bitmap_flushes;
  }
  if (commit_meta("resync finished") < 0) {
    abort_resync("cannot commit the end of the resync");
    return;
  }
  rs_finishing_ = false;
  gen_rotated_ = false;
  state_ = conn_state::connected;
  ++ctr_.resyncs_completed;
  uint8_t b[gens_len];
  (void)send_control({b, static_cast<size_t>(encode_gens(b, msg_type::resync_finished, s.gen))});
  log("resync finished: " + std::to_string(rs_done_bytes_) + " bytes received, UpToDate (" +
      describe_gens(s.gen) + ")");
}

void volume::impl::handle_resync_finished(const vm::generation_ids& g) {
  if (state_ != conn_state::sync_source || !rs_done_sent_) {
    protocol_error("an unexpected resync_finished");
    return;
  }
  vm::volume_state& s = st();
  vm::finish_resync_as_source(s.gen);
  s.flags &= ~(vm::flag_resync_in_progress | vm::flag_crashed_primary);
  if (meta_.bitmap().flush() < 0) {
    ++ctr_.local_errors;
  } else {
    ++ctr_.bitmap_flushes;
  }
  (void)commit_meta("resync finished");
  rs_done_sent_ = false;
  gen_rotated_ = false;
  state_ = conn_state::connected;
  ++ctr_.resyncs_completed;
  peer_state_.gen = g;
  peer_state_.disk = vm::disk_state::up_to_date;
  if (!(g == s.gen)) {
    log("the target's generation ids after the resync differ from ours: theirs " +
        describe_gens(g) + ", ours " + describe_gens(s.gen));
  }
  log("resync finished: " + std::to_string(rs_done_bytes_) + " bytes sent, in sync (" +
      describe_gens(s.gen) + ")");
}

}  // namespace tandem::dp::mirror
