// SPDX-License-Identifier: Apache-2.0
// The lease backend for tandem-witness: POST /v1/lease and /v1/lease/release over libcurl.
// docs/quorum.md has the API; control/witness/ is the server.
#pragma once

#include <string>

#include "control/quorum/http_client.h"
#include "control/quorum/lease.h"

namespace tandem::ctl::quorum {

struct witness_client_config {
  std::string url;      // tandem-witness base URL, e.g. http://10.0.0.3:29080
  std::string cluster;  // the lease's key on the witness: the cluster name
  std::string node;     // this node's name (the holder)
  std::string token;    // bearer token; empty: no Authorization header
  tls_options tls;      // when the witness sits behind a TLS proxy
};

class witness_client final : public lease_backend {
 public:
  // Throws std::invalid_argument for an empty url, cluster or node.
  explicit witness_client(witness_client_config cfg);

  [[nodiscard]] lease_result perform(const lease_request& req) override;
  [[nodiscard]] std::string describe() const override;

 private:
  witness_client_config cfg_;
  http_client http_;
};

// The request body for `req` (exposed for tests).
[[nodiscard]] std::string witness_request_body(const lease_request& req, const std::string& cluster,
                                               const std::string& node);
// What a witness answer means for a request of kind `op` by `node` (exposed for tests).
[[nodiscard]] lease_result parse_witness_reply(const http_reply& reply, lease_op op,
                                               const std::string& node);

}  // namespace tandem::ctl::quorum
