// SPDX-License-Identifier: Apache-2.0
// An in-process load generator on a mirrored volume, for crash campaigns and benchmarks: seeded
// random writes whose placement and bytes follow from (seed, index), so a verifier that reads
// the log of acknowledged writes can tell, block by block, what the volume must hold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/backend/backend.h"
#include "dataplane/mirror/volume.h"

namespace tandem::dp::app {

struct workload_options {
  uint64_t seed = 1;
  unsigned qd = 8;                // writes in flight
  uint32_t min_size = 4096;       // bytes per write: uniform in [min_size, max_size], multiples
  uint32_t max_size = 64u << 10;  // of the block size
  uint64_t count = 0;             // writes to issue; 0: until stopped or `duration_ns`
  uint64_t duration_ns = 0;       // 0: no time limit
  uint64_t region_offset = 0;     // the part of the volume written (region_size 0: to its end)
  uint64_t region_size = 0;
  unsigned fua_percent = 0;  // writes sent with FUA
  std::string log_path;      // acknowledged writes are appended here ("" : no log)
};

// Parses {"seed":..,"qd":..,"min_size":..,"max_size":..,"count":..,"seconds":..,
// "region_offset":..,"region_size":..,"fua_percent":..,"log":..}; throws std::invalid_argument
// naming the field for anything out of range for `geom`.
workload_options parse_workload(const nlohmann::json& args, const backend::geometry& geom);

struct write_shape {
  uint64_t offset = 0, length = 0;
};
// Where write `index` goes (the verifier computes the same).
write_shape shape_of(const workload_options& o, uint64_t volume_size, uint32_t block_size,
                     uint64_t index);
// The bytes of one block of write `index`: a header {index + 1, volume block number} and a
// seeded pattern. A block that holds them names the write that put them there.
void fill_block(uint8_t* out, uint32_t block_size, uint64_t seed, uint64_t index,
                uint64_t volume_block);

class workload {
 public:
  workload(mirror::volume& v, const backend::geometry& geom, const workload_options& o,
           uint64_t now_ns);
  // With writes in flight (the owner did not drain it) their buffers are left to the engine.
  ~workload();
  workload(const workload&) = delete;
  workload& operator=(const workload&) = delete;

  // Keeps `qd` writes in flight. Returns the work done. The replicator reaps the volume's
  // completions (other submitters share the volume) and hands the workload's to complete().
  int poll(uint64_t now_ns);
  void complete(uint64_t cookie, int result, uint64_t now_ns);
  unsigned in_flight() const { return in_flight_; }
  bool running() const { return !done_; }
  // No new writes; the ones in flight still complete.
  void stop() { stopping_ = true; }
  nlohmann::json status() const;

 private:
  void finish_one(uint64_t slot, int result, uint64_t now_ns);

  mirror::volume& vol_;
  backend::geometry geom_;
  workload_options o_;
  int log_fd_ = -1;
  void* buffers_ = nullptr;  // qd buffers of max_size, aligned to the backend's mem_align
  struct slot_state {
    bool busy = false;
    uint64_t index = 0;
    uint64_t length = 0;
    uint64_t submitted_ns = 0;
  };
  std::vector<slot_state> slots_;
  std::vector<uint32_t> latencies_us_;  // reserved at start; samples beyond it are dropped
  uint64_t next_index_ = 0;
  uint64_t issued_ = 0, acked_ = 0, failed_ = 0, bytes_ = 0;
  int last_error_ = 0;
  uint64_t start_ns_ = 0, end_ns_ = 0;
  bool stopping_ = false, done_ = false;
  unsigned in_flight_ = 0;
};

}  // namespace tandem::dp::app

namespace tandem::dp::app {

// What a volume image holds against a workload log (the crash campaign's check).
struct verify_result {
  uint64_t acked_writes = 0;    // "A" lines in the log
  uint64_t checked_blocks = 0;  // blocks some acknowledged write covered
  uint64_t missing = 0;         // of those: not the last acknowledged write or a later one
  uint64_t corrupt = 0;         // blocks holding bytes no write of the workload produced
  std::string first_problem;    // the first missing or corrupt block, described
};
// Reads the log and the image (a file or device with the volume's bytes from offset 0). A block
// covered by acknowledged writes must hold the last of them or a later write that covers it
// (one that was in flight); any other written block of the workload's region must hold some
// write of the workload that covers it. Blocks outside the region are not read. Throws
// std::runtime_error for an unreadable or malformed log or image.
verify_result verify_workload(const std::string& image_path, const std::string& log_path);

// The async crash campaign's check: the image (of a volume that held zeroes when the workload
// started) is exactly what the workload's first k writes, in index order, leave in its region,
// every block whole. prefix is that k (the smallest), or -1 with first_problem saying where it
// fails; acked_writes counts the log's "A" lines.
struct prefix_result {
  uint64_t acked_writes = 0;
  int64_t prefix = -1;
  std::string first_problem;
};
prefix_result verify_prefix(const std::string& image_path, const std::string& log_path);

}  // namespace tandem::dp::app
