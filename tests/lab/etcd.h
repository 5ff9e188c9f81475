// SPDX-License-Identifier: Apache-2.0
// A one-member etcd (Debian's etcd-server) inside a lab host, for the etcd quorum tests.
#pragma once

#include <string>

#include "tests/lab/netns.h"

namespace tandem::lab {

inline constexpr const char* etcd_binary = "/usr/bin/etcd";

struct etcd_server {
  std::string client_url;  // http://<host's lan 0 address>:2379
  std::string dir;         // its data lives below; registered with the lab for removal
};

// Starts etcd in `host` (log name `log_name`), its data in a fresh /tmp directory. Fast
// elections (100 ms heartbeat, 1 s election timeout), warnings only in the log. Throws
// std::runtime_error when the directory cannot be made.
etcd_server spawn_etcd(lab& l, const std::string& host, const std::string& log_name);

}  // namespace tandem::lab
