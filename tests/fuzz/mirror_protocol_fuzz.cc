// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the mirror protocol decoder on any bytes. A message that decodes must
// re-encode to the same bytes (one encoding per value); a hello also goes through the handshake
// decision, which must be symmetric (both sides agree on who sends).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dataplane/mirror/handshake.h"
#include "dataplane/mirror/protocol.h"

using namespace tandem::dp::mirror;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

sync_action mirror_of(sync_action a) {
  switch (a) {
    case sync_action::source:
      return sync_action::target;
    case sync_action::target:
      return sync_action::source;
    case sync_action::full_source:
      return sync_action::full_target;
    case sync_action::full_target:
      return sync_action::full_source;
    default:
      return a;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  message m;
  const decode_status st = decode({data, size}, m);
  if (st != decode_status::ok) return 0;
  std::vector<uint8_t> again(size + 64);
  require(encode(again, m) == static_cast<int>(size));
  require(std::memcmp(again.data(), data, size) == 0);
  if (m.type == msg_type::bitmap) {
    require(m.bitmap.count >= 1 && m.bitmap.count <= max_bitmap_words);
    require(m.bitmap.words.data() >= data &&
            m.bitmap.words.data() + m.bitmap.words.size() <= data + size);
  }
  if (m.type == msg_type::hello) {
    // The peer: the same volume seen by another node, its generation ids taken from the input
    // rotated, so the decision table is exercised with related and unrelated histories.
    hello_msg peer = m.hello;
    peer.node_id = m.hello.node_id + 1;
    peer.gen.current = m.hello.gen.bitmap;
    peer.gen.bitmap = m.hello.gen.history[0];
    peer.gen.history[0] = m.hello.gen.current;
    peer.role = m.hello.role == tandem::dp::volume::role::primary
                    ? tandem::dp::volume::role::secondary
                    : m.hello.role;
    peer.flags = m.hello.flags ^ (hf_crashed_primary | hf_auto_resync);
    const handshake_result a = decide(m.hello, peer);
    const handshake_result b = decide(peer, m.hello);
    require(b.action == mirror_of(a.action));
    require(a.start_now == b.start_now);
    require(a.action != sync_action::refuse || !a.reason.empty());
  }
  return 0;
}
