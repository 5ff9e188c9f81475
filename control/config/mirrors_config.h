// SPDX-License-Identifier: Apache-2.0
// The replicator's `mirrors:` section (transport, volumes, replicas), alone or in a cluster file.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/diagnostics.h"

namespace tandem::ctl::config {

enum class mirror_port { socket, dpdk };
// tandem-replicator's polling threads (mirrors.lcores) and the CPUs they may be pinned to.
inline constexpr uint32_t max_mirror_lcores = 64;
inline constexpr uint32_t max_mirror_cpu = 1023;  // glibc's cpu_set_t holds CPUs 0..1023
enum class mirror_mode { sync, async };
std::string_view to_string(mirror_port p) noexcept;
std::string_view to_string(mirror_mode m) noexcept;

// mirrors.transport: how replicators reach each other (dataplane/transport).
struct mirror_transport {
  mirror_port port = mirror_port::socket;
  std::vector<std::string> eal_args;  // DPDK EAL arguments (port: dpdk only)
  std::string key_file;               // AES-GCM key file; empty: integrity only (CRC32C)
  // The transport's defaults (dataplane/transport/connection.h): a sync volume's writes wait for
  // the dead-peer verdict when the peer dies, so it is kept short.
  std::chrono::milliseconds keepalive{200};
  std::chrono::milliseconds dead_peer{3000};
  uint64_t rate_limit = 0;  // bytes per second for all replication traffic; 0: unlimited
  // Each volume's transport send ring and receive ring (bytes each, 2MiB..1GiB): what may be in
  // flight per direction. Both are allocated and touched when the volume attaches, so they are
  // most of an attached volume's memory.
  uint64_t buffer = 32ull << 20;
  source_loc loc;
  field_locs locs;
};

// One node holding a copy of a volume, and where that node's replicator listens for it.
struct mirror_replica {
  std::string node;
  std::string address;  // IPv4 or IPv6 literal
  uint16_t port = 7790;
  std::string data;     // this node's data device when it differs from the volume's; else empty
  std::string meta;     // this node's metadata device or file when it differs; else empty
  std::string history;  // this node's async history file when it differs; else empty
  // port: dpdk only. The ethdev this replica's volume uses: a vdev spec ("net_memif0,role=server,
  // socket=/run/tandem/db.sock", "net_af_packet0,iface=eth1") or a PCI address with optional
  // arguments ("0000:03:00.0"). The replicator plugs it when the volume attaches and unplugs it
  // when it detaches, so each volume on a node needs its own device.
  std::string dpdk_device;
  uint32_t mtu = 1500;  // IP MTU of the DPDK device (576..9000); socket ports follow the interface
  source_loc loc;
  field_locs locs;
};

struct mirror_volume {
  std::string name;            // [a-z0-9_-]{1,32}
  std::string data;            // data device or file
  std::string meta;            // metadata device or file
  uint64_t size = 0;           // bytes; 0: the data device's size
  uint32_t block_size = 4096;  // 512 or 4096
  mirror_mode mode = mirror_mode::sync;
  uint64_t bitmap_granularity = 64 << 10;  // bytes per dirty bit: a power of two, 4KiB..16MiB
  uint64_t al_extent = 4 << 20;            // activity log extent, bytes
  uint32_t al_slots = 1000;                // activity log extents kept hot (at most 1012)
  uint64_t resync_rate = 200ull << 20;     // bytes per second; 0: unlimited
  uint64_t resync_min_rate = 10ull << 20;  // bytes per second resync keeps under application load
  bool resync_checksum = false;  // compare 4 KiB block digests, send only blocks that differ
  // What a detected split brain does: disconnect | discard-zero-changes |
  // discard-younger-primary | discard-least-changes (both nodes alike).
  std::string split_brain = "disconnect";
  // How this node sends resync data to the peer: none | igzip (raw DEFLATE when it shrinks).
  std::string compression = "none";
  // mode async: the write data held in memory for the peer; a full queue falls back to the
  // bitmap (and a resync).
  uint64_t async_queue = 32ull << 20;
  // mode async: a history file (or block device) the queue spills to when its memory is full,
  // before it falls back to the bitmap; empty: none (unless a replica names its own). A file
  // is created, or resized, to async_history_size when the volume attaches.
  std::string async_history;
  uint64_t async_history_size = 1ull << 30;
  // The replicator lcore that polls this volume (0..mirrors.lcores-1); absent: round-robin over
  // the volumes a node serves, in the order of `volumes`.
  std::optional<uint32_t> lcore;
  std::vector<mirror_replica> replicas;
  source_loc loc;
  field_locs locs;

  [[nodiscard]] const mirror_replica* replica(std::string_view node) const noexcept;
  // The data and metadata paths on `node` (its replica's override, else the volume's).
  [[nodiscard]] const std::string& data_on(std::string_view node) const noexcept;
  [[nodiscard]] const std::string& meta_on(std::string_view node) const noexcept;
  // The async history file on `node` (its replica's override, else the volume's; empty: none).
  [[nodiscard]] const std::string& history_on(std::string_view node) const noexcept;
};

struct mirrors_config {
  bool present = false;  // the file had a mirrors: section
  mirror_transport transport;
  std::vector<mirror_volume> volumes;
  std::string control_socket = "/run/tandem/replicator.sock";
  // The FUSE frontend's mountpoint: each attached volume is the file <fuse_mount>/<volume>.
  // Empty: no FUSE mount.
  std::string fuse_mount;
  // Serve each attached volume as /dev/tandem<index> through tandem.ko (index: the volume's
  // position in `volumes`).
  bool kernel_devices = false;
  // tandem-replicator's polling threads (1..max_mirror_lcores); each owns some of the volumes.
  uint32_t lcores = 1;
  // Lcore i runs only on CPU lcore_cpus[i % size]; empty: not pinned. Whether the CPUs exist is
  // checked when the replicator starts (the file may be written on another machine).
  std::vector<uint32_t> lcore_cpus;
  source_loc loc;
  field_locs locs;

  [[nodiscard]] const mirror_volume* find_volume(std::string_view name) const noexcept;
};

// Result of loading with every problem (errors and warnings) kept.
struct mirrors_load_result {
  mirrors_config config;  // meaningful only when diag.ok()
  diagnostics diag;
  [[nodiscard]] bool ok() const noexcept { return diag.ok(); }
};

// The replicator's loaders. The file is either a whole cluster file (it has a cluster:, nodes:
// or another cluster section; it is then validated as a whole, exactly as tandemd does, and
// replica nodes must be cluster nodes) or a file whose only sections are `mirrors:` (and
// `version:`). `file_name` is what the messages call the file.
mirrors_load_result parse_mirrors_text(std::string_view text, const std::string& file_name);
mirrors_load_result parse_mirrors_file(const std::string& path);
// Throws config_error (every problem in what()) unless the file is valid; warnings are dropped.
mirrors_config load_mirrors_file(const std::string& path);

// ---- Used by the cluster loader -----------------------------------------------------------------
class cursor;
// Reads the value of a `mirrors:` key into `out` (reporting shape, type and range problems).
void read_mirrors(const cursor& c, mirrors_config& out);
// Checks within the section (unique names and endpoints, sizes, replica counts). When
// `node_names` is not null, replica nodes must be among them.
void check_mirrors(const mirrors_config& m, diagnostics& diag,
                   const std::vector<std::string>* node_names);

}  // namespace tandem::ctl::config
