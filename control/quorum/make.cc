// SPDX-License-Identifier: Apache-2.0
// The quorum factory: one mode chosen at startup.
#include "control/quorum/make.h"

#include <stdexcept>
#include <utility>

#include "control/quorum/none.h"

namespace tandem::ctl::quorum {
namespace {

std::string self_name(const cluster_ref& c) {
  for (const auto& n : c.nodes)
    if (n.id == c.self) return n.name;
  throw std::invalid_argument("quorum: this node (id " + std::to_string(c.self) +
                              ") is not among the configured nodes");
}

witness_client_config witness_of(const quorum_options& o) {
  witness_client_config w = o.witness;
  if (w.node.empty()) w.node = self_name(o.cluster);
  return w;
}

etcd_client_config etcd_of(const quorum_options& o) {
  etcd_client_config e = o.etcd;
  if (e.node.empty()) e.node = self_name(o.cluster);
  return e;
}

}  // namespace

std::unique_ptr<quorum> make_quorum(const quorum_options& opts, time_point now, event_sink sink) {
  switch (opts.kind) {
    case mode::none:
      return std::make_unique<none_quorum>(opts.cluster, now, std::move(sink), opts.partition,
                                           opts.stop_timeout);
    case mode::majority:
      return std::make_unique<majority_quorum>(opts.cluster, opts.majority, now, std::move(sink),
                                               opts.partition);
    case mode::witness_lease:
    case mode::etcd_lease: {
      lease_config l = opts.lease;
      if (l.server.empty()) {
        if (opts.kind == mode::witness_lease) {
          l.server = "witness " + redact_url(opts.witness.url);
        } else {
          l.server = "etcd";
          for (size_t i = 0; i < opts.etcd.endpoints.size(); ++i)
            l.server += (i == 0 ? " " : ",") + redact_url(opts.etcd.endpoints[i]);
        }
      }
      return std::make_unique<lease_quorum>(opts.kind, opts.cluster, std::move(l), now,
                                            std::move(sink), opts.partition);
    }
  }
  throw std::invalid_argument("quorum: unknown mode");
}

std::unique_ptr<lease_backend> make_lease_backend(const quorum_options& opts) {
  switch (opts.kind) {
    case mode::witness_lease:
      return std::make_unique<witness_client>(witness_of(opts));
    case mode::etcd_lease:
      return std::make_unique<etcd_client>(etcd_of(opts));
    case mode::none:
    case mode::majority:
      return nullptr;
  }
  return nullptr;
}

}  // namespace tandem::ctl::quorum
