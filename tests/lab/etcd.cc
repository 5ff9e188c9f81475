// SPDX-License-Identifier: Apache-2.0
// A one-member etcd inside a lab host.
#include "tests/lab/etcd.h"

#include <stdlib.h>

#include <stdexcept>

namespace tandem::lab {

etcd_server spawn_etcd(lab& l, const std::string& host, const std::string& log_name) {
  char dir[] = "/tmp/tdm-etcd-XXXXXX";
  if (::mkdtemp(dir) == nullptr) throw std::runtime_error("spawn_etcd: mkdtemp failed");
  l.register_path(dir);  // the lab's janitor removes it once etcd is stopped
  etcd_server s{"http://" + l.address(host, 0) + ":2379", dir};
  l.spawn(host, log_name,
          {etcd_binary,
           "--name",
           "lab",
           "--data-dir",
           s.dir + "/data",
           "--listen-client-urls",
           s.client_url,
           "--advertise-client-urls",
           s.client_url,
           "--listen-peer-urls",
           "http://127.0.0.1:2380",
           "--initial-advertise-peer-urls",
           "http://127.0.0.1:2380",
           "--initial-cluster",
           "lab=http://127.0.0.1:2380",
           "--initial-cluster-state",
           "new",
           "--heartbeat-interval",
           "100",
           "--election-timeout",
           "1000",
           "--logger",
           "zap",
           "--log-outputs",
           "stderr",
           "--log-level",
           "warn"});
  return s;
}

}  // namespace tandem::lab
