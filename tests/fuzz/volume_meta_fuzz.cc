// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: a volume's metadata image (superblock slots, bitmap, activity-log ring) from
// arbitrary bytes, through the decoders and metadata_store::open / replay / commit.
//
// Input format (compact, so the standalone driver's 4 KiB inputs still reach the AL ring): the
// input is cut into 512-byte chunks and chunk i becomes the first 512 bytes of the image's
// 4 KiB block i, the rest of the block zero. Block 0 and 1 are the superblock slots, then the
// bitmap pages, then the AL records. The seeds in corpus/volume_meta are written this way by
// tests/unit/volume/metadata_test.cc (fuzz_seeds.*), which says how to regenerate them.
//
// Properties: nothing crashes or leaks; a slot or record that decodes re-encodes to the same
// bytes; an image that opens keeps its bitmap count consistent with its runs, replays, commits
// and reopens to the same identity and state.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include "dataplane/volume/metadata.h"

using namespace tandem::dp::volume;

namespace {

constexpr size_t chunk = 512;
constexpr size_t max_blocks = 64;  // images up to 256 KiB

void require(bool ok) {
  if (!ok) std::abort();
}

std::vector<uint8_t> expand(const uint8_t* data, size_t size) {
  const size_t blocks = std::min(max_blocks, (size + chunk - 1) / chunk);
  std::vector<uint8_t> image(blocks * meta_block_size, 0);
  for (size_t b = 0; b < blocks; ++b) {
    const size_t n = std::min(chunk, size - b * chunk);
    std::memcpy(image.data() + b * meta_block_size, data + b * chunk, n);
  }
  return image;
}

// Closes the memfd however the run ends.
struct memfd {
  int fd = ::memfd_create("volume_meta_fuzz", MFD_CLOEXEC);
  ~memfd() {
    if (fd >= 0) ::close(fd);
  }
};

void check_codecs(const std::vector<uint8_t>& image) {
  std::vector<uint8_t> again(meta_block_size);
  std::optional<al_config> cfg;
  for (size_t b = 0; b < 2 && (b + 1) * meta_block_size <= image.size(); ++b) {
    const auto slot = std::span<const uint8_t, meta_block_size>(image.data() + b * meta_block_size,
                                                                meta_block_size);
    superblock sb;
    if (decode_superblock(slot, sb) != sb_status::ok) continue;
    encode_superblock(sb, std::span<uint8_t, meta_block_size>(again));
    require(std::memcmp(again.data(), slot.data(), meta_block_size) == 0);
    const metadata_layout l = compute_layout(sb.id.volume_size, sb.id.params);
    al_config c;
    c.volume_size = sb.id.volume_size;
    c.extent_size = sb.id.params.al_extent_size;
    c.slots = sb.id.params.al_slots;
    c.ring_records = sb.id.params.al_ring_records;
    c.ring_offset = l.al_offset;
    c.uuid = sb.id.uuid;
    cfg = c;
  }
  if (!cfg) return;
  for (size_t at = 2 * meta_block_size; at + al_record_size <= image.size(); at += al_record_size) {
    al_record r;
    const auto in = std::span<const uint8_t, al_record_size>(image.data() + at, al_record_size);
    if (decode_al_record(in, *cfg, r) != al_record_status::ok) continue;
    encode_al_record(r, std::span<uint8_t, al_record_size>(again));
    require(std::memcmp(again.data(), in.data(), al_record_size) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> image = expand(data, size);
  check_codecs(image);

  memfd f;
  require(f.fd >= 0);
  require(::pwrite(f.fd, image.data(), image.size(), 0) == static_cast<ssize_t>(image.size()));

  volume_identity id;
  volume_state state;
  uint64_t seq = 0;
  {
    std::optional<metadata_store> m;
    try {
      m.emplace(metadata_store::open_fd(f.fd, "fuzz"));
    } catch (const std::exception&) {
      return 0;  // refused with a message: fine
    }
    require(m->layout().total_size <= image.size());
    dirty_bitmap& bm = m->bitmap();
    uint64_t chunks = 0;
    dirty_bitmap::run r;
    for (uint64_t pos = 0; bm.next_dirty_run(pos, r); pos = r.offset + r.length) {
      require(r.length > 0 && r.offset + r.length <= bm.volume_size());
      chunks += (r.length + bm.granularity() - 1) / bm.granularity();
    }
    require(chunks == bm.count_dirty());

    const bool needed = m->needs_replay();
    const replay_result rr = m->replay();  // memfd I/O cannot fail: any throw is a bug
    require(rr.replayed == needed && !m->needs_replay());
    if (rr.whole_volume) require(bm.count_dirty() == bm.bits());

    // The write path on whatever geometry the image describes.
    activity_log& al = m->al();
    const uint64_t vs = m->identity().volume_size;
    const uint64_t len = std::min<uint64_t>(vs, 4096);
    if (al.note_write(0, len) >= 0) {
      require(m->commit_activity_log() >= 0);
      require(al.ready(0, len));
      al.complete_write(0, len);
    }
    bm.set_range(vs - 1, 1);
    m->state().peer_node_id ^= 1;
    require(m->commit() == 0);
    id = m->identity();
    state = m->state();
    seq = m->seq();
    m->close_clean();
  }
  // What was committed reads back.
  const metadata_store again = metadata_store::open_fd(f.fd, "fuzz");
  require(again.identity() == id);
  require(again.state().peer_node_id == state.peer_node_id);
  require(again.seq() == seq + 1);  // close_clean commits once more
  require(!again.needs_replay());
  return 0;
}
