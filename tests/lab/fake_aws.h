// SPDX-License-Identifier: Apache-2.0
// The fake AWS endpoints (tests/cloud/fake_aws.py: EC2, Route 53 and IMDSv2 with every
// signature checked by botocore) as a test fixture: its own CA and certificate in a temporary
// directory, the process, and its control API (state, faults, the calls it saw).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/cloud/http.h"
#include "control/exec/process.h"

namespace tandem::lab {

// Access keys the default state accepts: long-term keys, and the instance role that the fake
// IMDS hands out (with a session token).
inline constexpr const char* fake_access_key = "AKIDTANDEMFAKE000001";
inline constexpr const char* fake_secret_key = "tandem/fake/secret/key/000000000000000001";

struct fake_aws_options {
  nlohmann::json state;  // the state file (tests/cloud/README.md); null: default_state()
  std::string netns;     // run in /run/netns/<netns>; empty: the caller's namespace
  std::string listen = "127.0.0.1";    // the address both ports listen on
  std::vector<std::string> extra_ips;  // more addresses for the certificate
  int port = 0;                        // HTTPS; 0: any free port
  int imds_port = 0;                   // the metadata service (plain HTTP); 0: any free port
};

class fake_aws {
 public:
  // Makes the CA, starts the fake and waits until it listens (10 s at most). Throws
  // std::runtime_error with the fake's log when it does not come up.
  explicit fake_aws(fake_aws_options opts = {});
  ~fake_aws();
  fake_aws(const fake_aws&) = delete;
  fake_aws& operator=(const fake_aws&) = delete;

  // A VPC 10.0.0.0/16 (vpc-0fake0000000000001) with three route tables: two hold
  // 10.200.0.10/32 (to eni-0aaa...), one does not; ENIs eni-0aaaaaaaaaaaaaaaa (node1) and
  // eni-0bbbbbbbbbbbbbbbb (node2); an Elastic IP eipalloc-0fake00000000001 (198.51.100.7),
  // unassociated; zones us-east-1a (available) and us-east-1b (impaired); a hosted zone
  // Z0FAKE000000000000001 for example.com. Region us-east-1.
  static nlohmann::json default_state();

  [[nodiscard]] std::string endpoint() const;       // https://<listen>:<port>
  [[nodiscard]] std::string imds_endpoint() const;  // http://<listen>:<imds port>
  [[nodiscard]] const std::string& ca_file() const noexcept { return ca_file_; }
  // AWS_* variables that point the SDK-style credential chain and CA at this fake: long-term
  // keys (role=false) or the instance role through the fake IMDS (role=true).
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> environment(bool role) const;

  nlohmann::json state();
  void set_state(const nlohmann::json& top_level_keys);
  // {"service": "ec2", "action": "ReplaceRoute", "kind": "throttle", "count": 2, ...}
  void fault(const nlohmann::json& f);
  void expire_imds_tokens();
  nlohmann::json calls();
  void reset_calls();
  // How many calls of `action` the fake answered: an EC2 action ("ReplaceRoute"), a Route 53
  // operation, or an IMDS path below /latest/ ("api/token").
  int count(const std::string& action);

  [[nodiscard]] std::string log() const;

 private:
  nlohmann::json control(const std::string& method, const std::string& path,
                         const std::string& body);

  std::string netns_, dir_, ca_file_, listen_, log_path_;
  int https_port_ = 0, imds_port_ = 0;
  std::unique_ptr<ctl::process> proc_;
  std::unique_ptr<ctl::cloud::http_client> http_;
};

}  // namespace tandem::lab
