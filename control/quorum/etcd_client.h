// SPDX-License-Identifier: Apache-2.0
// The lease backend for etcd v3, through its JSON gateway (etcd 3.4: /v3/..., also /v3beta/).
//
//   acquire  POST /v3/lease/grant {TTL}                       -> lease ID (countdown starts)
//            POST /v3/kv/txn  if create_revision(key) == 0     -> put key=node with that lease
//                             else                             -> range key (who holds it)
//            lost the race: POST /v3/lease/timetolive (holder's time left),
//                           POST /v3/lease/revoke (our unused lease)
//   renew    POST /v3/lease/keepalive {ID}  -> TTL (absent: the lease expired)
//            POST /v3/kv/range key          -> still ours (value == node, lease == ID)?
//   release  POST /v3/lease/revoke {ID}     -> the key goes with it
//
// Keys and values are base64 in the gateway's JSON; 64-bit integers are strings. The epoch
// reported for a grant is the key's create_revision: it grows with every new holder.
// The key holds this node's name; a key with this node's name but another lease (a previous
// run, or another process configured with the same name) is treated as another holder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/quorum/http_client.h"
#include "control/quorum/lease.h"

namespace tandem::ctl::quorum {

struct etcd_client_config {
  std::vector<std::string> endpoints;  // http(s)://host:2379, tried in order on failures
  std::string key;                     // e.g. /tandem/<cluster>/quorum
  std::string node;                    // this node's name: the key's value
  std::string api_prefix = "/v3";      // "/v3beta" for gateways older than 3.4
  tls_options tls;
};

class etcd_client final : public lease_backend {
 public:
  // Throws std::invalid_argument for no endpoints, an empty key or node.
  explicit etcd_client(etcd_client_config cfg);

  [[nodiscard]] lease_result perform(const lease_request& req) override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] int64_t lease_id() const noexcept { return lease_id_; }

 private:
  struct call {
    http_reply reply;
    std::string endpoint;
  };
  // POSTs to the current endpoint, moving on to the next ones on transport errors while time
  // is left before `deadline`.
  call post(const std::string& path, const std::string& body,
            std::chrono::steady_clock::time_point deadline);
  lease_result acquire(const lease_request& req);
  lease_result renew(const lease_request& req);
  lease_result release(const lease_request& req);
  void revoke_quietly(int64_t id, std::chrono::steady_clock::time_point deadline);

  etcd_client_config cfg_;
  http_client http_;
  size_t current_ = 0;    // endpoint that answered last
  int64_t lease_id_ = 0;  // this node's lease, 0: none
};

// Base64 as the gateway wants it (exposed for tests).
[[nodiscard]] std::string base64_encode(const std::string& in);
// nullopt for invalid input.
[[nodiscard]] std::optional<std::string> base64_decode(const std::string& in);

}  // namespace tandem::ctl::quorum
