// SPDX-License-Identifier: Apache-2.0
// The handshake decision: identity checks, generation ids, crash flags, roles and operator wishes.
#include "dataplane/mirror/handshake.h"

#include <cinttypes>
#include <cstdio>

namespace tandem::dp::mirror {
namespace {

std::string hex_uuid(const std::array<uint8_t, 16>& u) {
  std::string s;
  char b[3];
  for (uint8_t v : u) {
    std::snprintf(b, sizeof b, "%02x", v);
    s += b;
  }
  return s;
}

std::string node(const hello_msg& h) {
  return "node " + std::to_string(h.node_id);
}

handshake_result refuse(std::string why) {
  handshake_result r;
  r.action = sync_action::refuse;
  r.reason = std::move(why);
  return r;
}

// Of two nodes that both crashed as primary with equal ids: the one that is primary now, else the
// higher node id.
bool mine_wins_tie(const hello_msg& mine, const hello_msg& peer) {
  const bool mp = mine.role == volume::role::primary;
  const bool pp = peer.role == volume::role::primary;
  if (mp != pp) return mp;
  return mine.node_id > peer.node_id;
}

// A split brain's outcome under the operator's command or the policy: which side's changes are
// discarded (it becomes the target of a bitmap resync over the union of both bitmaps, which holds
// both sides' changes since the split). 1: mine are kept, -1: mine are discarded, 0: undecided,
// with `why` saying what was decided or why not.
int resolve_split_brain(const hello_msg& mine, const hello_msg& peer, std::string& why) {
  const bool md = (mine.flags & hf_discard_my_data) != 0;
  const bool pd = (peer.flags & hf_discard_my_data) != 0;
  if (md && pd) {
    why = "both nodes were told to discard their changes";
    return 0;
  }
  if (md || pd) {
    why = "the operator discards " + (md ? std::string("this node") : node(peer)) + "'s changes";
    return md ? -1 : 1;
  }
  if (mine.policy != peer.policy) {
    why = std::string("the split-brain policies differ (ours ") + to_string(mine.policy) + ", " +
          node(peer) + "'s " + to_string(peer.policy) + "): nothing is discarded";
    return 0;
  }
  const std::string both = "this node changed " + std::to_string(mine.dirty_bytes) + " bytes, " +
                           node(peer) + " " + std::to_string(peer.dirty_bytes);
  auto younger = [&](std::string& w) {
    if (mine.primary_since == 0 || peer.primary_since == 0 ||
        mine.primary_since == peer.primary_since) {
      w = "cannot tell which primary is younger";
      return 0;
    }
    const bool mine_younger = mine.primary_since > peer.primary_since;
    w = (mine_younger ? std::string("this node") : node(peer)) + " became primary last";
    return mine_younger ? -1 : 1;
  };
  switch (mine.policy) {
    case split_brain_policy::disconnect:
      why = "policy disconnect: nothing is discarded (" + both + ")";
      return 0;
    case split_brain_policy::discard_zero_changes: {
      const bool mz = mine.dirty_bytes == 0;
      const bool pz = peer.dirty_bytes == 0;
      if (mz && pz) {
        why = "policy discard-zero-changes: neither side changed anything";
        return mine_wins_tie(mine, peer) ? 1 : -1;
      }
      if (mz != pz) {
        why = "policy discard-zero-changes: " + (mz ? std::string("this node") : node(peer)) +
              " has no changes (" + both + ")";
        return mz ? -1 : 1;
      }
      why = "policy discard-zero-changes: both sides changed data (" + both + ")";
      return 0;
    }
    case split_brain_policy::discard_younger_primary: {
      std::string w;
      const int r = younger(w);
      why = "policy discard-younger-primary: " + w + " (" + both + ")";
      return r;
    }
    case split_brain_policy::discard_least_changes: {
      if (mine.dirty_bytes != peer.dirty_bytes) {
        const bool mine_less = mine.dirty_bytes < peer.dirty_bytes;
        why = "policy discard-least-changes: " + both;
        return mine_less ? -1 : 1;
      }
      std::string w;
      const int r = younger(w);
      why = "policy discard-least-changes: equal changes (" + both + "), " + w;
      return r;
    }
  }
  why = "unknown split-brain policy";
  return 0;
}

}  // namespace

const char* to_string(sync_action a) noexcept {
  switch (a) {
    case sync_action::none:
      return "none";
    case sync_action::source:
      return "source";
    case sync_action::target:
      return "target";
    case sync_action::full_source:
      return "full_source";
    case sync_action::full_target:
      return "full_target";
    case sync_action::split_brain:
      return "split_brain";
    case sync_action::refuse:
      return "refuse";
  }
  return "unknown";
}

bool is_resync(sync_action a) noexcept {
  return a == sync_action::source || a == sync_action::target || a == sync_action::full_source ||
         a == sync_action::full_target;
}
bool is_source(sync_action a) noexcept {
  return a == sync_action::source || a == sync_action::full_source;
}
bool is_full(sync_action a) noexcept {
  return a == sync_action::full_source || a == sync_action::full_target;
}

std::string describe_gens(const volume::generation_ids& g) {
  char b[128];
  std::snprintf(b, sizeof b,
                "current %016" PRIx64 " bitmap %016" PRIx64 " history %016" PRIx64 " %016" PRIx64,
                g.current, g.bitmap, g.history[0], g.history[1]);
  return b;
}

handshake_result decide(const hello_msg& mine, const hello_msg& peer) {
  using volume::disk_state;
  using volume::role;
  // 1. Identity: the same volume, seen by two different nodes.
  if (mine.node_id == peer.node_id) {
    return refuse("the peer has the same node id (" + std::to_string(mine.node_id) + ")");
  }
  if (mine.uuid != peer.uuid) {
    return refuse(node(peer) + " holds another volume (uuid " + hex_uuid(peer.uuid) + ", ours " +
                  hex_uuid(mine.uuid) + ")");
  }
  if (mine.volume_size != peer.volume_size) {
    return refuse("volume size differs: ours " + std::to_string(mine.volume_size) + " bytes, " +
                  node(peer) + "'s " + std::to_string(peer.volume_size));
  }
  if (mine.block_size != peer.block_size) {
    return refuse("block size differs: ours " + std::to_string(mine.block_size) + ", " +
                  node(peer) + "'s " + std::to_string(peer.block_size));
  }
  if (mine.bitmap_granularity != peer.bitmap_granularity) {
    return refuse("bitmap granularity differs: ours " + std::to_string(mine.bitmap_granularity) +
                  ", " + node(peer) + "'s " + std::to_string(peer.bitmap_granularity));
  }
  handshake_result r;
  r.generations = volume::compare_generations(mine.gen, peer.gen);
  const bool mine_full = (mine.flags & hf_want_full_source) != 0;
  const bool peer_full = (peer.flags & hf_want_full_source) != 0;
  bool operator_asked = (mine.flags & hf_want_resync) != 0 || (peer.flags & hf_want_resync) != 0;

  bool mine_is_source = false;
  if (mine_full && peer_full) {
    return refuse("both nodes asked to be the source of a full resync");
  } else if (mine_full || peer_full) {
    mine_is_source = mine_full;
    r.action = mine_full ? sync_action::full_source : sync_action::full_target;
    operator_asked = true;
  } else {
    switch (r.generations) {
      case volume::resync_decision::no_resync: {
        const bool mc = (mine.flags & hf_crashed_primary) != 0;
        const bool pc = (peer.flags & hf_crashed_primary) != 0;
        const bool mu = mine.disk == disk_state::up_to_date;
        const bool pu = peer.disk == disk_state::up_to_date;
        if (mc || pc) {
          // A node that crashed as primary has its activity log's extents dirty: the peer takes
          // them from it (the peer may have bits too: the resync covers the union).
          mine_is_source = mc && pc ? mine_wins_tie(mine, peer) : mc;
          r.action = mine_is_source ? sync_action::source : sync_action::target;
        } else if ((mu && pu) || (mine.gen.current == 0 && peer.gen.current == 0)) {
          r.action = sync_action::none;
        } else if (mu != pu) {
          // Same ids, one side not UpToDate: an interrupted resync between equal ids.
          mine_is_source = mu;
          r.action = mu ? sync_action::source : sync_action::target;
        } else {
          return refuse(std::string("neither node has UpToDate data (ours ") +
                        volume::to_string(mine.disk) + ", " + node(peer) + "'s " +
                        volume::to_string(peer.disk) + ")");
        }
        break;
      }
      case volume::resync_decision::source:
        mine_is_source = true;
        r.action = sync_action::source;
        break;
      case volume::resync_decision::target:
        r.action = sync_action::target;
        break;
      case volume::resync_decision::full_sync_source:
        mine_is_source = true;
        r.action = sync_action::full_source;
        break;
      case volume::resync_decision::full_sync_target:
        r.action = sync_action::full_target;
        break;
      case volume::resync_decision::split_brain: {
        const std::string what = "split brain: this node and " + node(peer) +
                                 " both changed the data since they last shared it (ours " +
                                 describe_gens(mine.gen) + "; theirs " + describe_gens(peer.gen) +
                                 ")";
        std::string why;
        const int keep = resolve_split_brain(mine, peer, why);
        r.split_brain = true;
        if (keep == 0) {
          r.action = sync_action::split_brain;
          r.reason = what + "; " + why;
          return r;
        }
        // Resolved: a bitmap resync from the side kept, over the union of both bitmaps.
        r.reason = what + "; resolved: " + why;
        mine_is_source = keep > 0;
        r.action = mine_is_source ? sync_action::source : sync_action::target;
        operator_asked = true;  // the policy (or the operator) decided: start it now
        break;
      }
      case volume::resync_decision::unrelated:
        return refuse(node(peer) + " shares no data history with this node (ours " +
                      describe_gens(mine.gen) + "; theirs " + describe_gens(peer.gen) + ")");
    }
  }
  // Two primaries that diverged are a split brain (reported as such, above); otherwise one of
  // them must go.
  if (mine.role == role::primary && peer.role == role::primary) {
    if (r.split_brain) {
      r.action = sync_action::split_brain;
      r.reason += "; both nodes are primary: demote the one whose changes are discarded";
      return r;
    }
    return refuse("both nodes are primary");
  }
  if (r.action == sync_action::none) return r;

  const hello_msg& src = mine_is_source ? mine : peer;
  const hello_msg& dst = mine_is_source ? peer : mine;
  if (src.disk != disk_state::up_to_date) {
    return refuse("the sync source (" + node(src) + ") is " + volume::to_string(src.disk) +
                  ", not UpToDate");
  }
  if (dst.role == role::primary && r.split_brain) {
    r.action = sync_action::split_brain;
    r.reason += "; " + node(dst) + " is primary: demote it first";
    return r;
  }
  if (dst.role == role::primary) {
    return refuse("the primary (" + node(dst) +
                  ") would be the sync target: its data is older than " + node(src) +
                  "'s; demote it first");
  }
  const bool auto_ok = (mine.flags & hf_auto_resync) != 0 && (peer.flags & hf_auto_resync) != 0;
  r.start_now = auto_ok || operator_asked;
  return r;
}

}  // namespace tandem::dp::mirror
