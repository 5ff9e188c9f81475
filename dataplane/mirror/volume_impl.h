// SPDX-License-Identifier: Apache-2.0
// The mirror engine's private state, shared by volume.cc (application path, activity log,
// operator commands) and volume_peer.cc (session, messages, secondary path, resync).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dataplane/backend/backend.h"
#include "dataplane/crypto/block_digest.h"
#include "dataplane/mirror/handshake.h"
#include "dataplane/mirror/protocol.h"
#include "dataplane/mirror/volume.h"
#include "dataplane/transport/connection.h"
#include "dataplane/volume/metadata.h"

namespace tandem::dp::mirror {

namespace vm = tandem::dp::volume;
namespace be = tandem::dp::backend;

inline constexpr uint32_t npos = UINT32_MAX;

// Backend and transport cookies: kind in the top byte, an index below.
enum class ck : uint8_t { app = 1, rx = 2, rs = 3, flush = 4, meta = 5, aq = 6, hist = 7 };
constexpr uint64_t make_cookie(ck k, uint64_t idx) noexcept {
  return (static_cast<uint64_t>(k) << 56) | idx;
}
constexpr ck cookie_kind(uint64_t c) noexcept {
  return static_cast<ck>(c >> 56);
}
constexpr uint32_t cookie_index(uint64_t c) noexcept {
  return static_cast<uint32_t>(c);
}

// Purposes of the engine's own flushes of the data backend (one of each in flight at most).
enum class flush_purpose : uint32_t {
  al_drop = 0,  // before an activity-log transaction that drops extents
  bitmap = 1,   // before writing bitmap pages (cleared bits must not outrun the data)
  finish = 2,   // the sync target, before it commits UpToDate
  leave = 3,    // a secondary's planned disconnect: what it acknowledged becomes durable
  count = 4,
};

// Replication sequence numbers: a counter above the slot index, so an ack names its slot.
inline constexpr unsigned seq_index_bits = 20;
inline constexpr uint64_t seq_index_mask = (1ULL << seq_index_bits) - 1;
inline constexpr uint32_t internal_flush_index = static_cast<uint32_t>(seq_index_mask);
static_assert(max_async_queue_entries < internal_flush_index);
// Async: how long the next write may wait for activity-log slots that queued writes hold (the
// peer is slow) before the engine falls back to the bitmap instead.
inline constexpr uint64_t async_al_stall_ns = 100'000'000;
// How long a write may wait for the history's writes before the history counts as failed.
inline constexpr uint64_t async_history_stall_ns = 1'000'000'000;

struct link {
  uint32_t prev = npos;
  uint32_t next = npos;
};

// An intrusive list of slots of a vector (no allocation).
template <class T, link T::*L>
struct index_list {
  uint32_t head = npos;
  uint32_t tail = npos;
  uint32_t size = 0;

  void push_back(std::vector<T>& v, uint32_t i) noexcept {
    link& l = v[i].*L;
    l.prev = tail;
    l.next = npos;
    if (tail != npos) {
      (v[tail].*L).next = i;
    } else {
      head = i;
    }
    tail = i;
    ++size;
  }
  void erase(std::vector<T>& v, uint32_t i) noexcept {
    link& l = v[i].*L;
    if (l.prev != npos) {
      (v[l.prev].*L).next = l.next;
    } else {
      head = l.next;
    }
    if (l.next != npos) {
      (v[l.next].*L).prev = l.prev;
    } else {
      tail = l.prev;
    }
    l.prev = l.next = npos;
    --size;
  }
  static uint32_t next(const std::vector<T>& v, uint32_t i) noexcept { return (v[i].*L).next; }
};

struct aligned_free {
  void operator()(uint8_t* p) const noexcept { std::free(p); }
};
using aligned_buf = std::unique_ptr<uint8_t[], aligned_free>;
aligned_buf alloc_aligned(size_t bytes, size_t align);

// A fixed array over anonymous memory: zero-filled and not allocated until touched, so a large one
// that is barely used costs only the pages in use. The async queue's entries are sized for the
// whole history (a quarter of a million for 1 GiB): a std::vector would construct, and so
// allocate, every one of them, even on a secondary that never queues a write. All-zero bytes
// must be a valid T, and T's lifetime starts with the mapping (an implicit-lifetime type).
void* map_zeroed(size_t bytes);
void unmap_zeroed(void* p, size_t bytes) noexcept;
template <typename T>
class lazy_array {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  lazy_array() = default;
  explicit lazy_array(size_t n) : p_(static_cast<T*>(map_zeroed(n * sizeof(T)))), n_(n) {}
  lazy_array(const lazy_array&) = delete;
  lazy_array& operator=(const lazy_array&) = delete;
  lazy_array(lazy_array&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  lazy_array& operator=(lazy_array&& o) noexcept {
    if (this != &o) {
      unmap_zeroed(p_, n_ * sizeof(T));
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~lazy_array() { unmap_zeroed(p_, n_ * sizeof(T)); }
  [[nodiscard]] size_t size() const noexcept { return n_; }
  T& operator[](size_t i) noexcept { return p_[i]; }
  const T& operator[](size_t i) const noexcept { return p_[i]; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

inline bool overlaps(uint64_t a_off, uint64_t a_len, uint64_t b_off, uint64_t b_len) noexcept {
  return a_off < b_off + b_len && b_off < a_off + a_len;
}

inline bool is_write_kind(io_op op) noexcept {
  return op == io_op::write || op == io_op::discard || op == io_op::write_zeroes;
}

// The message that carries an application request to the peer.
inline msg_type msg_type_of(io_op op) noexcept {
  switch (op) {
    case io_op::write:
      return msg_type::write;
    case io_op::discard:
      return msg_type::discard;
    case io_op::write_zeroes:
      return msg_type::write_zeroes;
    default:
      return msg_type::flush;
  }
}

// The peer's 16 KiB receive pages `bytes` of data take.
inline uint32_t recv_pages(uint64_t bytes) noexcept {
  return static_cast<uint32_t>((bytes + recv_page_size - 1) / recv_page_size);
}

// An application request (primary).
struct app_req {
  io_request io;
  link q;                // waiting list (not started)
  link w;                // write-kind requests not yet complete, in submission order
  uint64_t sub = 0;      // submission number
  uint64_t seq = 0;      // replication sequence, while the peer's answer is pending
  uint64_t session = 0;  // the session it was sent in
  uint64_t flush_epoch = 0;
  uint32_t pages = 0;  // peer pages it holds
  int local_result = 0;
  bool used = false;
  bool queued = false;  // waiting to start
  bool al_noted = false;
  bool local_issued = false;  // flush: the local part
  bool local_done = false;
  bool remote_pending = false;  // sent, the peer has not answered
  bool ref_held = false;        // the transport still references the buffer
  bool remote_sent = false;     // the peer's part was dealt with (sent, or marked in the bitmap)
  bool finished = false;        // completed, waiting for reap()
};

// A request received from the peer (secondary).
struct rx_req {
  link order;  // arrival order, until acked
  msg_type kind = msg_type::write;
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t session = 0;
  bool fua = false;
  bool verify = false;      // resync_digest of an online verify
  bool compressed = false;  // resync_data whose data arrives compressed
  bool used = false;
  enum class stage : uint8_t { wait_data, ready, issued } st = stage::ready;
  uint16_t npages = 0;
  uint32_t pages[max_io_bytes / recv_page_size + 1];  // + 1: a digest request's digests
};

// An entry of the async queue (primary, async mode): a write, discard, write_zeroes or flush that
// completed here (or is completing) and that the peer has not acknowledged. A write's data is a
// copy in the queue's byte ring, referenced by the transport while it is sent (ref_held).
struct aq_entry {
  msg_type kind = msg_type::write;
  bool fua = false;
  bool sent = false;
  bool done = false;      // acked by the peer, or abandoned with its session (then marked)
  bool ref_held = false;  // the transport still references the data
  bool al_held = false;   // holds activity-log references on its range until done
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t data = 0;  // write: offset of its data in the byte ring
  uint64_t wire = 0;  // write: its bytes there (compressed when less than length), else 0
  uint64_t end = 0;   // the ring's write position after it (what freeing it releases)
  uint64_t seq = 0;
  uint64_t epoch = 0;  // flush: the epoch it closes
  uint64_t queued_ns = 0;
  uint32_t pages = 0;  // peer pages it holds while sent
  // History (async_history). A write that went to the history file (hlen > 0: its bytes there,
  // whole 4 KiB blocks) is in the byte ring only once read back (in_ring, then loaded).
  bool in_ring = true;   // holds byte-ring space up to `end`
  bool loaded = true;    // its data is in the byte ring: it can be sent
  bool hist_io = false;  // a history write or read of its data is in flight
  bool bounce = false;   // holds bounce space until its history write completes
  bool written = false;  // the history file holds its data
  uint32_t hlen = 0;
  uint64_t hdata = 0;  // its offset in the history file
  uint64_t hend = 0;   // the history's write position after it
  uint64_t bend = 0;   // the bounce ring's write position after it
};

// Checksum resync: a chunk is at most max_io_bytes, so at most this many digest blocks, and at
// most half as many runs of differing blocks (parts) to send.
inline constexpr uint32_t max_chunk_blocks = static_cast<uint32_t>(max_io_bytes / digest_block);
inline constexpr uint32_t max_chunk_parts = max_chunk_blocks / 2;

// A resync chunk (source). Plain: reading -> read -> sent (the whole chunk as one resync_data).
// Checksum: reading -> read -> digest_sent (its digests) -> free when the target has it all, or
// reread_wait -> rereading -> parts (the differing blocks read again, so that no write landed
// meanwhile is undone, and sent as one resync_data per run of blocks).
struct rs_chunk {
  enum class stage : uint8_t {
    free,
    reading,
    read,
    sent,
    digest_sent,
    reread_wait,
    rereading,
    parts
  } st = stage::free;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t seq = 0;
  uint64_t session = 0;
  uint32_t pages = 0;
  uint8_t* buf = nullptr;
  uint8_t* zbuf = nullptr;  // its compressed image (compression)
  uint32_t zlen = 0;        // of zbuf; 0: the chunk does not shrink
  bool zready = false;      // zbuf/zlen hold buf's current data
  bool acked = false;
  bool released = true;
  // Checksum resync, and online verify (checksum set too: digests only, never data).
  bool checksum = false;
  bool verify = false;
  uint64_t vgen = 0;      // verify: the run it belongs to (vf_gen_)
  uint64_t aq_mark = 0;   // verify, async: the queue's tail when it was read
  bool remarked = false;  // marked out of sync after it was read: finishing it clears nothing
  uint64_t diff[max_chunk_blocks / 64] = {};  // blocks that differ on the target
  uint32_t blocks = 0;
  uint32_t next_block = 0;  // parts: the next block to look at
  uint32_t parts_sent = 0;
  uint32_t parts_acked = 0;
  uint32_t refs = 0;    // parts whose data the transport still holds (send_ref)
  bool failed = false;  // the transport dropped a part: the chunk ends with the session
  uint64_t part_seq[max_chunk_parts] = {};
  uint32_t part_len[max_chunk_parts] = {};
  [[nodiscard]] bool differs(uint32_t b) const noexcept { return (diff[b / 64] >> (b % 64)) & 1; }
};

struct volume::impl {
  impl(backend::backend& data, vm::metadata_store& meta, const volume_options& opt);
  ~impl();

  // ---- Fixed at construction ---------------------------------------------------------------
  be::backend& data_;
  vm::metadata_store& meta_;
  volume_options opt_;
  uint64_t size_ = 0;
  uint32_t block_ = 0;
  uint32_t gran_ = 0;
  uint32_t mem_align_ = 0;
  uint32_t extent_shift_ = 0;
  uint32_t al_slots_ = 0;
  uint64_t max_zero_ = 0;
  std::string name_;  // "mirror node N" for logs

  // ---- Peer attachment --------------------------------------------------------------------
  port* port_ = nullptr;
  bool own_port_ = true;
  transport::connection_config tcfg_;
  std::unique_ptr<transport::connection> conn_;

  // ---- Clock, state -----------------------------------------------------------------------
  uint64_t now_ = 0;
  conn_state state_ = conn_state::standalone;
  std::string reason_;
  std::string last_error_;
  volume_counters ctr_;
  bool closed_ = false;
  bool restart_pending_ = false;
  bool want_resync_ = false;
  bool want_full_ = false;
  bool gen_rotated_ = false;       // a new current id since the peer was last in sync
  bool announce_pending_ = false;  // a state message is owed to the peer
  bool pause_sent_ = false;        // the pause state the peer was told

  // ---- Application path (primary) -----------------------------------------------------------
  std::vector<app_req> app_;
  std::vector<uint32_t> app_free_;
  index_list<app_req, &app_req::q> waitq_;
  index_list<app_req, &app_req::w> writes_;
  std::vector<uint32_t> done_ring_;
  uint32_t done_head_ = 0;
  uint32_t done_count_ = 0;
  uint64_t next_sub_ = 1;
  uint64_t last_app_write_ns_ = 0;
  bool have_app_write_ = false;
  unsigned app_in_flight_ = 0;

  // ---- Replication bookkeeping --------------------------------------------------------------
  uint64_t session_ = 0;  // transport sessions seen
  uint64_t seq_counter_ = 0;
  uint32_t peer_slots_ = 0;  // the peer's free receive slots / pages (credits)
  uint32_t peer_pages_ = 0;
  unsigned peer_in_flight_ = 0;
  // Flush epochs: every write sent carries the current epoch into its extents; a flush acked by
  // the peer makes every epoch up to its own durable there.
  // A planned disconnect that first makes durable what the peer acknowledged (see
  // volume::disconnect): the deadline, the primary's flush (its epoch; 0 until sent), the
  // secondary's flush and its completions count when submitted, and the leave message sent.
  bool leaving_ = false;
  uint64_t leave_deadline_ns_ = 0;
  uint64_t leave_epoch_ = 0;
  bool leave_flushed_ = false;
  uint64_t leave_completions_ = 0;
  bool leave_sent_ = false;
  bool leave_failed_ = false;    // the secondary's flush failed: it cannot promise durability
  uint64_t rx_completions_ = 0;  // the peer's requests this node completed (ok or failed)
  uint64_t send_epoch_ = 1;
  uint64_t peer_durable_epoch_ = 0;
  std::vector<uint64_t> ext_epoch_;
  bool wrote_since_peer_flush_ = false;
  bool internal_flush_pending_ = false;
  uint64_t internal_flush_seq_ = 0;
  uint64_t internal_flush_epoch_ = 0;
  uint64_t last_peer_flush_ns_ = 0;

  // ---- Handshake ------------------------------------------------------------------------
  hello_msg sent_hello_;
  hello_msg peer_hello_;
  bool peer_known_ = false;
  state_msg peer_state_;
  uint64_t handshake_deadline_ = 0;
  handshake_result last_result_;

  // ---- Async queue (primary, async mode) -----------------------------------------------------
  // Entries are a ring indexed by absolute counters: [aq_head_, aq_tail_) in the queue,
  // [aq_send_, aq_tail_) not yet sent. Write data: a byte ring of aq_cap_ bytes, [aq_rd_, aq_wr_)
  // in use (absolute; an entry that would wrap starts at the ring's beginning instead).
  lazy_array<aq_entry> aq_;
  uint64_t aq_head_ = 0;
  uint64_t aq_send_ = 0;
  uint64_t aq_tail_ = 0;
  aligned_buf aq_mem_;
  uint64_t aq_cap_ = 0;
  uint64_t aq_rd_ = 0;
  uint64_t aq_wr_ = 0;
  uint64_t aq_bytes_ = 0;         // data of the entries in the queue (as held: compressed)
  uint64_t aq_unsent_bytes_ = 0;  // of which not sent
  uint32_t aq_pending_ = 0;       // entries not done
  bool aq_overflowed_ = false;    // fell back to the bitmap; the session restarts
  uint64_t aq_al_wait_ns_ = 0;    // since when the next write waits for activity-log slots
  uint64_t rs_aq_mark_ = 0;       // the queue's tail when the last resync chunk was read
  // History (async_history): byte rings over the history file [hist_rd_, hist_wr_) and over the
  // bounce buffer its writes come from [hb_rd_, hb_wr_). Entries from aq_load_ on are not in
  // the byte ring yet; new writes join them there until the history is read back. Bounce space
  // is released in entry order from aq_hbfree_.
  backend::backend* hist_ = nullptr;
  uint64_t hist_cap_ = 0;
  uint64_t hist_rd_ = 0;
  uint64_t hist_wr_ = 0;
  aligned_buf hb_mem_;
  uint64_t hb_cap_ = 0;
  uint64_t hb_rd_ = 0;
  uint64_t hb_wr_ = 0;
  uint64_t aq_load_ = 0;
  uint64_t aq_hbfree_ = 0;
  uint64_t hist_bytes_ = 0;  // spilled data not yet read back (status: history_bytes)
  bool hist_failed_ = false;
  uint64_t aq_hist_wait_ns_ = 0;  // since when the next write waits for the history's writes

  // ---- Secondary path -------------------------------------------------------------------
  std::vector<rx_req> rx_;
  std::vector<uint32_t> rx_free_;
  index_list<rx_req, &rx_req::order> rx_order_;
  aligned_buf pages_mem_;
  std::vector<uint32_t> page_free_;
  uint32_t expect_data_ = npos;  // rx slot whose data is the next message
  bool rx_dirty_ = false;
  struct pending_ack {
    msg_type type;
    ack_msg ack;
    uint32_t count = 0;                         // resync_digest_ack: blocks
    uint64_t mask[max_chunk_blocks / 64] = {};  // and which differ
  };
  std::vector<pending_ack> acks_;  // ring
  uint32_t acks_head_ = 0;
  uint32_t acks_count_ = 0;

  // ---- Resync -----------------------------------------------------------------------------
  bool rs_full_ = false;
  bool rs_source_ = false;
  bool rs_bitmap_sent_ = false;  // mine, including bitmap_done
  size_t rs_bitmap_page_ = 0;    // next bitmap page to send
  bool rs_peer_bitmap_done_ = false;
  bool rs_done_sent_ = false;   // source: resync_done sent
  bool rs_finishing_ = false;   // target: flushing before it commits
  bool rs_checksum_ = false;    // this resync compares digests
  bool want_checksum_ = false;  // the operator asked for a checksum resync (hello flag)
  bool want_discard_ = false;   // the operator discards this node's split-brain changes
  std::string split_brain_;     // the last split-brain decision
  block_digest digest_;
  std::vector<uint8_t> digest_msg_;  // one resync_digest message (source)
  std::vector<uint8_t> digest_tmp_;  // the target's own digests of one chunk
  // Online verify (source).
  volume_status::verify_status vf_;
  uint64_t vf_cursor_ = 0;
  uint64_t vf_gen_ = 0;  // the current verify run; late answers of earlier runs are ignored
  vm::generation_ids rs_source_gen_;
  bool paused_ = false;
  bool peer_paused_ = false;
  uint64_t rs_cursor_ = 0;
  uint64_t rs_total_ = 0;
  uint64_t rs_done_bytes_ = 0;
  std::vector<rs_chunk> rs_;
  aligned_buf rs_mem_;
  // Compression of resync data: the sender's compressor and per-chunk images, the receiver's
  // decompressor and one chunk of scratch (made at construction; the receiver's always).
  std::unique_ptr<block_compressor> zcomp_;
  aligned_buf rs_zmem_;
  size_t rs_zcap_ = 0;
  block_decompressor zdecomp_;
  aligned_buf zscratch_;
  unsigned rs_in_flight_ = 0;
  // Rate controller (token bucket, bytes).
  int64_t rs_tokens_ = 0;
  uint64_t rs_refill_ns_ = 0;
  uint64_t rs_limit_ = 0;
  uint64_t rate_window_ns_ = 0;
  uint64_t rate_window_bytes_ = 0;
  uint64_t rs_rate_ = 0;

  // ---- Metadata ---------------------------------------------------------------------------
  bool al_txn_in_flight_ = false;
  aligned_buf al_record_;
  bool flush_in_flight_[static_cast<size_t>(flush_purpose::count)] = {};
  uint64_t flush_session_[static_cast<size_t>(flush_purpose::count)] = {};
  bool al_drop_flushed_ = false;
  uint64_t al_evictions_at_flush_ = 0;
  uint64_t last_bitmap_flush_ns_ = 0;
  aligned_buf msg_buf_;  // one bitmap message

  // ---- volume.cc --------------------------------------------------------------------------
  void log(const std::string& line);
  void set_error(std::string e);
  int commit_meta(const char* why);
  vm::volume_state& st() { return meta_.state(); }
  bool is_primary() { return meta_.state().role == vm::role::primary; }
  int validate(const io_request& io) const;
  int submit(const io_request& io);
  int pump_app();
  int start_request(uint32_t i);
  bool write_blocked(uint32_t i);
  void try_complete(uint32_t i);
  void finish_app(uint32_t i);
  void on_app_completion(uint32_t i, int64_t result);
  void mark_out_of_sync(uint64_t offset, uint64_t length);
  void ensure_new_current();
  int pump_al();
  void on_meta_completion(int64_t result);
  int submit_flush(flush_purpose p);
  void on_flush_completion(flush_purpose p, int64_t result);
  int reap_backends();
  void periodic();
  int poll(uint64_t now);

  // ---- volume_peer.cc ---------------------------------------------------------------------
  void make_connection();
  void drop_connection();
  void restart_session();
  void on_session(bool up);
  void on_message(std::span<const uint8_t> m);
  void on_release(uint64_t cookie, bool acked);
  void session_lost(const char* why);
  void abandon_peer_io();
  int pump_control();
  // The hf_* flags this node's metadata and options say (hello and state carry them).
  uint32_t state_flags() const;
  // This node's state message (role, disk, flags, ids), with `extra_flags` (hf_*) added.
  state_msg make_state(uint32_t extra_flags) const;
  // A planned disconnect (volume::disconnect): true when it waits for the peer or the disk.
  bool start_leave();
  int pump_leave();
  void finish_leave(const char* how);
  bool app_write_in_progress(uint64_t offset, uint64_t length) const;
  void protocol_error(const std::string& what);
  void go_refused(const std::string& why);
  bool session_up() const;
  bool replicating() const;
  hello_msg make_hello() const;
  void announce();
  bool send_control(std::span<const uint8_t> m);
  bool room_for(uint64_t bytes) const;
  void handle_hello(const message& m);
  void begin_resync(sync_action a);
  void handle_io(const message& m);
  void handle_data(std::span<const uint8_t> data);
  void handle_ack(const ack_msg& a);
  void handle_bitmap(const bitmap_msg& b);
  void handle_bitmap_done();
  void handle_resync_ack(const ack_msg& a);
  void handle_digest(const digest_msg& m);
  void handle_digest_ack(const digest_ack_msg& a);
  void queue_digest_ack(uint64_t seq, int status, uint32_t count, const uint64_t* mask);
  // The target's answer to a digest request whose read completed: which blocks differ.
  uint32_t compare_digests(const rx_req& r, uint64_t* mask);
  int send_digest(uint32_t c);  // 1 sent, 0 no room yet
  int send_parts(uint32_t c);
  void part_acked(uint32_t c, uint32_t part, const ack_msg& a);
  // Frees a checksum chunk that is finished (or dead with its session) once the transport gave
  // back every part; true when it was freed.
  bool settle_parts(uint32_t c);
  int pump_verify();
  void verify_answer(uint32_t c, const digest_ack_msg& a);
  // restart: with repair and differences, restart the session now so that they are resynced
  // (false when the session is ending anyway).
  void end_verify(const std::string& how, bool complete, bool restart = true);
  void drop_verify_chunk(uint32_t c);  // frees an unsent verify chunk and returns its credits
  // A request to the peer answered (or dropped in its session): one slot and `pages` back.
  void return_credit(uint32_t pages);
  // The peer answered a write-kind request or a flush (sync or queued): an error marks the range
  // (`what` names it in the log) and restarts the session; a flush makes `epoch` durable there.
  void peer_answered(bool flush, uint64_t offset, uint64_t length, uint64_t epoch, int status,
                     const char* what);
  void handle_resync_done(const vm::generation_ids& g);
  void handle_resync_finished(const vm::generation_ids& g);
  void finish_target();
  int pump_rx();
  bool rx_blocked(uint32_t i);
  void on_rx_completion(uint32_t i, int64_t result);
  // A received request's data pages back to the pool; the request's slot back to the free list.
  void release_rx_pages(rx_req& r);
  void release_rx(uint32_t i);
  // A free chunk starts reading [offset, offset + len) for the resync or a verify: it takes the
  // peer credit (a slot and `pages`) and the rate tokens. False when the backend is full.
  bool start_chunk_read(uint32_t c, uint64_t offset, uint64_t len, uint32_t pages, bool checksum);
  void queue_ack(msg_type type, uint64_t seq, int status);
  int flush_acks();
  int pump_bitmap_send();
  int pump_resync();
  int send_chunks();
  void on_rs_read(uint32_t c, int64_t result);
  void free_chunk(uint32_t c);
  void abort_resync(const std::string& why);
  void refill_tokens();
  bool app_active() const;
  int send_write(uint32_t i);  // 0; -EAGAIN nothing queued; -EPIPE header without data
  // A write-kind message (a write's data by reference, `cookie` on its release) with the peer's
  // credit and the flush-epoch bookkeeping: 0; -EAGAIN nothing queued; -EPIPE header only.
  // `wire` bytes of data (a write; compressed when less than `length`).
  int send_io(msg_type type, uint64_t seq, uint64_t offset, uint64_t length, bool fua,
              const uint8_t* data, uint64_t wire, uint64_t cookie, uint32_t pages);
  // ---- Async mode (volume_peer.cc) ----
  bool async() const noexcept { return opt_.mode == replication_mode::async; }
  // Request i is the oldest write-kind request (or a flush after all of them) not yet queued.
  bool aq_turn(uint32_t i) const;
  // Request i's peer part into the queue: 1 queued; 0 the queue (and history) is full, the
  // caller marks the write; -EAGAIN the history's bounce buffer or queue is full, the write
  // waits for the history's writes to complete.
  int aq_push(uint32_t i);
  // A full queue: falls back to the bitmap, saying `why` (not during a resync). Returns 0.
  int aq_full(const char* why);
  // The history failed (an I/O error, a stall): logged once, not used again.
  void hist_fail(const std::string& why);
  // Reads spilled writes back into the byte ring, in order, as it has room.
  int aq_load();
  void on_hist_completion(uint32_t slot, int64_t result);
  void aq_free_bounce();
  // Falls back to the bitmap (once per session): the session restarts and abandons the queue.
  void aq_overflow(const char* why);
  // The next write to queue found every activity-log slot busy while queued writes hold some:
  // after async_al_stall_ns of that, fall back to the bitmap.
  void aq_al_stalled();
  int pump_async();
  void aq_acked(uint32_t slot, const ack_msg& a);
  void aq_reclaim();
  // The oldest entry the peer has not acknowledged (aq_tail_ when none).
  uint64_t aq_first_pending() const;
  // Every queued entry the peer did not acknowledge is marked out of sync (with the bitmap flush
  // done by the caller, abandon_peer_io, before aq_release_al).
  bool aq_abandon();
  void aq_release_al();
  int send_flush(uint64_t& seq_out, uint64_t& epoch_out, uint32_t index);
  void maybe_peer_flush();
  // Sends the engine's own flush (internal_flush_index); false when the window is full.
  bool send_internal_flush();
};

}  // namespace tandem::dp::mirror
