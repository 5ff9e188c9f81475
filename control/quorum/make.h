// SPDX-License-Identifier: Apache-2.0
// Builds the quorum the configuration asks for: plain structs in, the mode's object out.
// The daemon maps its configuration onto quorum_options, then (lease modes) runs the quorum
// with make_lease_backend() under a lease_runner.
#pragma once

#include <chrono>
#include <memory>

#include "control/quorum/etcd_client.h"
#include "control/quorum/lease.h"
#include "control/quorum/majority.h"
#include "control/quorum/quorum.h"
#include "control/quorum/witness_client.h"

namespace tandem::ctl::quorum {

struct quorum_options {
  mode kind = mode::majority;
  cluster_ref cluster;                              // every node, this one included
  majority_config majority;                         // majority
  duration stop_timeout = std::chrono::seconds(5);  // none: after a partition-resolution loss
  lease_config lease;                               // witness / etcd (server: filled if empty)
  witness_client_config witness;                    // witness (node: this node's name if empty)
  etcd_client_config etcd;                          // etcd (node: this node's name if empty)
  partition_config partition;                       // any mode
};

// Throws std::invalid_argument for an invalid combination (see each mode's constructor).
[[nodiscard]] std::unique_ptr<quorum> make_quorum(const quorum_options& opts, time_point now,
                                                  event_sink sink);
// The backend for a lease mode (nullptr for majority and none).
[[nodiscard]] std::unique_ptr<lease_backend> make_lease_backend(const quorum_options& opts);

}  // namespace tandem::ctl::quorum
