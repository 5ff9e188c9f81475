// SPDX-License-Identifier: Apache-2.0
// The mirror engine: one replicated volume on one node (sync mode), its peer, resync and status.
//
// A `volume` owns nothing it is given: the data backend and the metadata store belong to the
// caller and outlive it. It owns its transport connection to the peer (created by connect(),
// destroyed by disconnect()) and every buffer it needs, all allocated at construction: the hot
// path (submit, poll, reap) allocates nothing, takes no lock and throws nothing.
//
// Threads: one thread (the volume's lcore) calls everything, poll() in a loop. The replicator's
// control thread hands operator commands to that thread (a ring of messages); status() returns
// a copy that the lcore publishes.
//
// Blocking exceptions on the polling thread (each rare, each a metadata write + fdatasync):
// superblock commits (promotion, demotion, the first write without the peer, resync start and
// end, a lost peer), bitmap flushes (every bitmap_flush_interval when bits changed, and before an
// activity-log transaction that drops extents), and activity-log transactions when no `meta_io`
// backend is given. With `meta_io` the activity log is written through that backend (a FUA
// write) and the lcore never waits for it. docs/mirror.md describes the protocol and semantics.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dataplane/backend/backend.h"
#include "dataplane/compress/compressor.h"
#include "dataplane/mirror/handshake.h"
#include "dataplane/port/port.h"
#include "dataplane/transport/connection.h"
#include "dataplane/volume/metadata.h"

namespace tandem::dp::mirror {

// ---- Application I/O ------------------------------------------------------------------------

enum class io_op : uint8_t { read, write, flush, discard, write_zeroes };
inline constexpr uint8_t io_fua = 1u << 0;  // write: durable on both nodes when it completes

// One application request. offset / length are bytes, multiples of the volume's block size;
// `buf` (read / write) is aligned to the backend's mem_align and stays untouched (write) or
// unread (read) until the completion: a write's buffer is sent to the peer without a copy.
struct io_request {
  io_op op = io_op::read;
  uint8_t flags = 0;  // io_fua on writes
  uint64_t offset = 0;
  uint64_t length = 0;  // 0 for flush
  void* buf = nullptr;
  uint64_t cookie = 0;  // handed back in the completion
};

struct io_completion {
  uint64_t cookie = 0;
  int result = 0;  // 0, or a negative errno
};

// Largest read / write (the peer's receive pages are 16 KiB and a write takes at most 64).
inline constexpr uint64_t max_io_bytes = 1u << 20;
// Most entries an async queue may have (async_queue_entries).
inline constexpr unsigned max_async_queue_entries = (1u << 20) - 2;
inline constexpr uint32_t recv_page_size = 16u << 10;
// Largest discard / write_zeroes: this, and at most (al_slots - 1) activity-log extents (a
// request may not touch more extents than the log has slots); the frontend splits larger ones.
inline constexpr uint64_t max_zero_bytes = 64u << 20;

// ---- States -------------------------------------------------------------------------------

enum class conn_state : uint8_t {
  standalone,    // no connection (never connected, or disconnect())
  connecting,    // the transport handshake is in progress or the peer is unreachable
  handshake,     // transport session up, waiting for the peer's hello
  connected,     // in sync: writes are replicated
  sync_pending,  // out of sync, resync not started (automatic resync off): request_resync()
  sync_source,   // resyncing, this node sends (writes are replicated meanwhile)
  sync_target,   // resyncing, this node receives
  split_brain,   // both changed the data independently; idle until the operator acts
  refused,       // identity mismatch, unrelated data, role conflict, protocol or I/O error
};
[[nodiscard]] const char* to_string(conn_state s) noexcept;

// When a primary's write completes (the primary's option; the secondary applies either alike).
enum class replication_mode : uint8_t {
  sync,   // durable locally and acknowledged by the peer
  async,  // durable locally; the peer receives it later, in this node's write order
};
[[nodiscard]] const char* to_string(replication_mode m) noexcept;
// "sync" / "async"; nullopt for anything else.
[[nodiscard]] std::optional<replication_mode> parse_replication_mode(std::string_view s) noexcept;

struct volume_options {
  uint32_t node_id = 0;          // this node's id (non-zero; the peer's must differ)
  unsigned max_in_flight = 128;  // application requests accepted and not completed
  // Async mode (a DR site over a WAN): a write completes once it is durable here; its data is
  // copied into a queue of async_queue_bytes (at most async_queue_entries writes and flushes)
  // and sent to the peer in the order the application submitted it, so the peer always holds
  // a prefix of this node's writes. When the queue is full the engine falls back to the bitmap:
  // the queued writes are marked out of sync, the session restarts and a resync follows (the
  // peer is Inconsistent until it ends). Both are allocated at construction, in async mode only.
  replication_mode mode = replication_mode::sync;
  uint64_t async_queue_bytes = 32u << 20;
  unsigned async_queue_entries = 16384;
  // Async mode: a history file between the queue's memory and the bitmap (a DR link slower than
  // the application for minutes). A write whose data finds the memory full goes to this backend
  // instead (copied, or compressed, into a 4 MiB bounce buffer and written from there), and so
  // does every later one until the history is read back: in order, into the memory as it frees.
  // Only when the history is full too does the engine fall back to the bitmap. Its whole size
  // is used (at least 2 MiB, 4 KiB blocks). It is scratch space, not a journal: after a crash
  // the activity log covers the queued writes, as for those in memory. Queued writes need
  // entries too: size async_queue_entries for the history (about one per 8 KiB of it).
  // nullptr: no history.
  backend::backend* async_history = nullptr;
  // Resync: chunks of up to resync_chunk bytes (a multiple of the bitmap granularity, at most
  // max_io_bytes), resync_window of them in flight.
  uint32_t resync_chunk = 256u << 10;
  unsigned resync_window = 8;
  // Checksum-driven resync: the source sends the SHA-256 digests (16 bytes) of each 4 KiB block
  // of a chunk, the target compares them with its own data, and only the blocks that differ
  // travel. It costs a read on both sides and a round trip per chunk, and saves the bandwidth
  // when the target already holds most of the data (a full resync of a disk that was copied, a
  // primary crash that marked whole activity-log extents). Used when either node asks for it.
  bool resync_checksum = false;
  // Resync data and (async mode) queued writes are compressed with ISA-L igzip (raw DEFLATE,
  // level compression_level) when they shrink: for slow links (a DR site over a WAN). Costs CPU
  // on both sides (about 350 MB/s per core to compress here); the receiver always understands
  // it (writes only when its hello says so). An async write is compressed as it enters the
  // queue, so the queue holds more of them too.
  dp::compression compression = dp::compression::none;
  int compression_level = 1;
  // Rate controller (bytes per second, 0: unlimited): resync_rate while the application is idle,
  // resync_min_rate while it wrote within the last app_active_ns ("yields to application
  // writes"; 0 pauses the resync meanwhile).
  uint64_t resync_rate = 0;
  uint64_t resync_min_rate = 4u << 20;
  uint64_t app_active_ns = 100'000'000;
  // Changed bitmap pages are written at most this often (the activity log covers what is not).
  uint64_t bitmap_flush_interval_ns = 1'000'000'000;
  // A primary asks the peer to flush at least this often while it writes, which bounds the
  // extents marked dirty when the peer is lost (writes it acked but may not have made durable).
  uint64_t peer_flush_interval_ns = 500'000'000;
  // The peer's hello must arrive within this much of the transport session starting.
  uint64_t handshake_timeout_ns = 5'000'000'000;
  bool auto_resync = true;  // start a resync without an operator when both sides allow it
  // What a detected split brain does; both nodes must be configured alike (else: disconnect).
  split_brain_policy split_brain = split_brain_policy::disconnect;
  // This node's receive capacity as a secondary: requests in flight and 16 KiB data pages.
  unsigned recv_slots = 256;
  unsigned recv_pages = 1024;
  // A backend over the metadata device (e.g. an io_uring backend on the same file) through
  // which activity-log records are written asynchronously. nullptr: blocking commits.
  backend::backend* meta_io = nullptr;
  // One line per event (state changes, refusals naming the peer, errors); default: stderr.
  std::function<void(std::string_view)> log;
};

struct volume_counters {
  // Application requests completed, by kind, and their bytes.
  uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0;
  uint64_t read_bytes = 0, write_bytes = 0;
  uint64_t fua_writes = 0;
  uint64_t app_errors = 0;        // application requests completed with an error
  uint64_t rejected = 0;          // submit() refusals (-EAGAIN, -EROFS, -EINVAL)
  uint64_t replicated = 0;        // writes / discards / zeroes sent to the peer
  uint64_t replicated_bytes = 0;  // their lengths
  uint64_t peer_flushes = 0;      // flushes sent to the peer
  uint64_t acks = 0;              // acks received
  uint64_t peer_errors = 0;       // acks with an error status
  uint64_t local_errors = 0;      // local backend errors
  uint64_t marked_dirty = 0;      // writes (and lost peers) recorded in the bitmap instead
  uint64_t applied = 0;           // requests applied as a secondary
  uint64_t applied_bytes = 0;
  uint64_t resync_bytes_sent = 0;  // acked resync data, as source
  uint64_t resync_chunks_sent = 0;
  uint64_t resync_bytes_received = 0;  // written resync data, as target
  uint64_t resyncs_completed = 0;
  // Checksum resync. Source: chunks compared by digest, and the bytes found identical (not
  // sent). Target: digest requests answered, and the bytes it found identical.
  uint64_t resync_digest_chunks = 0;
  uint64_t resync_bytes_same = 0;
  // Resync data sent compressed (source): the volume bytes, and what they took on the wire; and
  // the bytes given to the compressor (each chunk once, whether it shrank or not).
  uint64_t resync_compressed_bytes = 0;
  uint64_t resync_compressed_wire_bytes = 0;
  uint64_t resync_compression_input_bytes = 0;
  // Online verify (both sides): bytes compared, 4 KiB blocks found different, verifies that ran
  // to the end.
  uint64_t verify_bytes = 0;
  uint64_t verify_differing_blocks = 0;
  uint64_t verifies_completed = 0;
  uint64_t split_brains = 0;  // split brains detected (resolved or not)
  // Async mode (primary): writes and flushes that entered the queue, their bytes, and the times
  // a full queue made the engine fall back to the bitmap.
  uint64_t async_queued = 0;
  uint64_t async_queued_bytes = 0;
  uint64_t async_fallbacks = 0;
  // Queued writes compressed (compression: igzip), their volume bytes and what they hold on the
  // wire (and in the queue).
  uint64_t async_compressed = 0;
  uint64_t async_compressed_bytes = 0;
  uint64_t async_compressed_wire_bytes = 0;
  // Queued writes that went through the history file, and the bytes written there.
  uint64_t async_spilled = 0;
  uint64_t async_spilled_bytes = 0;
  uint64_t al_commits = 0;  // activity-log transactions written
  uint64_t al_waits = 0;    // writes that waited for one
  uint64_t bitmap_flushes = 0;
  uint64_t superblock_commits = 0;
  uint64_t sessions = 0;  // mirror sessions (hello exchanged)
  uint64_t session_losses = 0;
  uint64_t protocol_errors = 0;
};

struct volume_status {
  dp::volume::role role = dp::volume::role::secondary;
  dp::volume::disk_state disk = dp::volume::disk_state::inconsistent;
  conn_state conn = conn_state::standalone;
  std::string reason;  // why refused / split brain, the last error
  uint32_t node_id = 0;
  dp::volume::generation_ids gen;
  uint32_t flags = 0;  // superblock flags
  // The peer, as its last hello / state message said (peer_known false before any).
  bool peer_known = false;
  uint32_t peer_node_id = 0;
  dp::volume::role peer_role = dp::volume::role::secondary;
  dp::volume::disk_state peer_disk = dp::volume::disk_state::inconsistent;
  dp::volume::generation_ids peer_gen;
  sync_action last_action = sync_action::refuse;
  dp::volume::resync_decision last_generations = dp::volume::resync_decision::unrelated;
  // Bitmap and resync.
  uint64_t dirty_bytes = 0;
  uint64_t dirty_bits = 0;
  bool resync_full = false;
  bool resync_checksum = false;  // this resync compares digests (source and target)
  bool resync_paused = false;    // by this node
  bool resync_paused_by_peer = false;
  uint64_t resync_total_bytes = 0;  // dirty at resync start (union of both bitmaps)
  uint64_t resync_done_bytes = 0;   // acked (source) / written (target) since then
  uint64_t resync_rate = 0;         // measured, bytes per second (last full second)
  uint64_t resync_limit = 0;        // the controller's current limit (0: unlimited)
  // The last split brain: what was detected and decided (empty: none since the engine started).
  std::string split_brain;
  // Online verify (request_verify), on the node that runs it. The figures stay after it ends.
  struct verify_status {
    bool running = false;
    bool repair = false;
    bool interrupted = false;  // the session ended or it was stopped before the end
    uint64_t start = 0;        // first byte compared
    uint64_t done_bytes = 0;   // compared so far
    uint64_t total_bytes = 0;  // from start to the end of the volume
    uint64_t differing_blocks = 0;
    // The first differing ranges (offset, length), at most 8.
    uint32_t ranges = 0;
    uint64_t range_offset[8] = {};
    uint64_t range_length[8] = {};
  } verify;
  // Async mode (primary): what the peer has not acknowledged yet.
  struct async_status {
    bool enabled = false;         // this node's mode is async
    uint32_t queued = 0;          // writes and flushes in the queue (sent or not, not acked)
    uint64_t queued_bytes = 0;    // their data, as held (compressed or not)
    uint64_t unsent_bytes = 0;    // of which not yet sent
    uint64_t memory_bytes = 0;    // of the queue's memory in use (the rest is in the history)
    uint64_t capacity_bytes = 0;  // the queue's memory: async_queue_bytes
    uint64_t lag_ns = 0;          // age of the oldest write the peer has not acknowledged
    uint64_t history_bytes = 0;   // queued writes' data in the history file, not read back
    uint64_t history_capacity_bytes = 0;  // the history file's size; 0: no history
  } async;
  // Queues.
  unsigned app_in_flight = 0;   // accepted, not completed
  unsigned peer_in_flight = 0;  // replicated, not acked
  unsigned applying = 0;        // as secondary: received, not acked
  volume_counters counters;
  transport::conn_stats transport;  // zero while standalone
};

// ---- The engine ------------------------------------------------------------------------------

class volume {
 public:
  // Setup: throws std::invalid_argument for bad options or a backend that does not fit the
  // metadata (too small, larger blocks, alignment beyond 16 KiB), std::runtime_error /
  // std::system_error from the store (replay after a crash happens here). The volume starts as
  // secondary, standalone.
  volume(backend::backend& data, dp::volume::metadata_store& meta, const volume_options& opt);
  // Without a clean shutdown (that is shutdown()): the metadata stays as committed, so this is
  // how tests simulate a crash. Waits for the backend's requests in flight (their buffers are
  // the engine's) and closes the connection.
  ~volume();
  volume(const volume&) = delete;
  volume& operator=(const volume&) = delete;

  // The peer: the port to reach it and the transport configuration (cfg.peer, key, buffers;
  // max_message must be at least max_io_bytes). With own_port the engine receives from the port
  // itself in poll(); otherwise the caller feeds the peer's datagrams to input(). Throws
  // std::invalid_argument for a bad configuration. Setup time, while standalone.
  void attach_peer(port& p, const transport::connection_config& cfg, bool own_port = true);
  // Datagrams from the peer's address (when the port is not the engine's own).
  void input(dgram** bufs, unsigned n, uint64_t now_ns) noexcept;

  // Application I/O. 0: accepted, a completion follows; -EAGAIN: max_in_flight requests are in
  // flight; -EROFS: not primary, or primary on data that is not UpToDate; -EINVAL: misaligned,
  // out of range, too long, a null buffer.
  [[nodiscard]] int submit(const io_request& io) noexcept;
  // Completions, in the order they finished. Returns how many were written to `out`.
  unsigned reap(std::span<io_completion> out) noexcept;

  // Drives everything: backend completions, the transport, the activity log, replication,
  // resync, bitmap flushes. Returns how much work it did (0: idle).
  int poll(uint64_t now_ns) noexcept;

  // ---- Operator commands (the replicator's control thread relays them) --------------------
  // 0, or a negative errno with last_error() saying why:
  //  promote: -EROFS data not UpToDate (force overrides, and makes it the reference copy),
  //           -EBUSY the peer is primary.
  //  demote:  -EBUSY application requests in flight, or (async) queued writes the connected
  //           peer has not acknowledged yet (a planned switchover must not lose them: retry).
  //  connect: -ENOTCONN no peer attached.   request_resync: -ENOTCONN no connection,
  //           -EROFS full resync from a node that is not UpToDate.
  int promote(bool force = false);
  int demote();
  int connect();
  // A planned disconnect. With a live session it first makes durable what the peer
  // acknowledged, so the primary marks no extents for writes the peer did acknowledge: a primary
  // sends one more flush and leaves once the peer acknowledged it; a secondary flushes its data
  // device and tells the primary it leaves (state with hf_leaving). The connection ends in a
  // later poll, after at most a second (then as a lost peer, marking as before). Otherwise, and
  // when nothing is unflushed, it ends at once; a promote() meanwhile (a failover from a dead
  // primary) ends it at once too.
  int disconnect();
  void pause_resync();
  void resume_resync();
  // full: become the source of a whole-volume resync; else start a pending resync now. Both
  // restart the mirror session so that the peers decide again. checksum: the resync compares
  // block digests and sends only the blocks that differ (as with resync_checksum, for this one).
  int request_resync(bool full, bool checksum = false);
  // Split brain resolved by the operator: this node's changes since the split are discarded; it
  // becomes the target of a resync from the peer (over both nodes' bitmaps) at the next
  // handshake, which this starts. -EBUSY primary (demote it first), -ENOTCONN no peer attached.
  int discard_my_changes();
  // Online verify: compares every 4 KiB block from `start` to the end with the peer's by digest
  // (as a checksum resync does), rate-limited like a resync and paused with it. It reports the
  // differing blocks (status().verify, the log); with `repair`, once it ends, they are marked
  // out of sync and a checksum resync from this node rewrites them. -ENOTCONN not connected,
  // -EROFS not primary (the primary's data is the reference), -EBUSY a verify runs, -EINVAL
  // `start` not block-aligned or past the end.
  int request_verify(bool repair, uint64_t start = 0);
  // Ends a running verify where it is (-ENOENT when none runs).
  int stop_verify();
  // Clean shutdown: disconnects, demotes if primary (needs no requests in flight: -EBUSY), and
  // marks the metadata clean. The volume is unusable afterwards except for destruction.
  int shutdown();

  [[nodiscard]] volume_status status() const;
  [[nodiscard]] const std::string& last_error() const noexcept;
  // Something is outstanding that a poll soon will move on: application requests in flight,
  // writes the peer has not acked, the peer's writes being applied, or a resync running. The
  // replicator's lcore does not nap while any volume is busy.
  [[nodiscard]] bool busy() const noexcept;
  [[nodiscard]] conn_state connection_state() const noexcept;
  [[nodiscard]] dp::volume::role role() const noexcept;
  [[nodiscard]] dp::volume::disk_state disk() const noexcept;
  // The transport connection (nullptr while standalone), for its stats and tests.
  [[nodiscard]] const transport::connection* transport() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> d_;
};

}  // namespace tandem::dp::mirror
