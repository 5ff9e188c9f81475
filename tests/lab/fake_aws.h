// SPDX-License-Identifier: Apache-2.0
// The fake AWS endpoints (tests/cloud/fake_aws.py: EC2, Route 53, SNS, CloudWatch and IMDSv2
// with every signature checked by botocore) as a test fixture: its own CA and certificate in a
// temporary directory, the process, and its control API (state, faults, the calls it saw).
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
  int imds_port = 0;                   // the metadata service(s) (plain HTTP); 0: any free port
};

// One fake endpoint process of tests/cloud: its CA, the process, and its /_fake/ control API.
class fake_endpoints {
 public:
  virtual ~fake_endpoints();
  fake_endpoints(const fake_endpoints&) = delete;
  fake_endpoints& operator=(const fake_endpoints&) = delete;

  [[nodiscard]] std::string endpoint() const;  // https://<listen>:<port>
  [[nodiscard]] const std::string& ca_file() const noexcept { return ca_file_; }

  nlohmann::json state();
  void set_state(const nlohmann::json& top_level_keys);
  // {"service": "ec2", "action": "ReplaceRoute", "kind": "throttle", "count": 2, ...}
  void fault(const nlohmann::json& f);
  void clear_faults();
  nlohmann::json calls();
  void reset_calls();
  // How many calls of `action` the fake answered: an EC2, SNS or CloudWatch action
  // ("ReplaceRoute", "Publish", "PutMetricData"), a Route 53 operation, an IMDS path below
  // /latest/ ("api/token"), a Google or Azure action
  // ("changes.create", "recordsets.put", "gce.token").
  int count(const std::string& action);

  [[nodiscard]] std::string log() const;

 protected:
  // Makes the CA, starts `script` and waits until it listens (10 s at most); the ready file's
  // `second_port_key` is the plain-HTTP metadata port, passed to the script as `second_port_flag`.
  fake_endpoints(const std::string& script, const std::string& second_port_flag,
                 const std::string& second_port_key, fake_aws_options opts,
                 const nlohmann::json& default_state);
  nlohmann::json control(const std::string& method, const std::string& path,
                         const std::string& body);
  [[nodiscard]] std::string second_endpoint() const;  // http://<listen>:<metadata port>

  std::string netns_, dir_, ca_file_, listen_, log_path_;
  int https_port_ = 0, second_port_ = 0;
  std::unique_ptr<ctl::process> proc_;
  std::unique_ptr<ctl::cloud::http_client> http_;
};

// tests/cloud/fake_aws.py: EC2, Route 53, SNS, CloudWatch and IMDSv2 with every signature checked
// by botocore.
class fake_aws final : public fake_endpoints {
 public:
  explicit fake_aws(fake_aws_options opts = {});

  // A VPC 10.0.0.0/16 + 10.1.0.0/16 (vpc-0fake0000000000001) with three route tables: two hold
  // 10.200.0.10/32 (to eni-0aaa...), one does not; ENIs eni-0aaaaaaaaaaaaaaaa (node1) and
  // eni-0bbbbbbbbbbbbbbbb (node2); an Elastic IP eipalloc-0fake00000000001 (198.51.100.7),
  // unassociated; zones us-east-1a (available) and us-east-1b (impaired); a hosted zone
  // Z0FAKE000000000000001 for example.com; an SNS topic
  // arn:aws:sns:us-east-1:123456789012:tandem-alerts. Region us-east-1.
  static nlohmann::json default_state();

  [[nodiscard]] std::string imds_endpoint() const { return second_endpoint(); }
  // AWS_* variables that point the SDK-style credential chain and CA at this fake: long-term
  // keys (role=false) or the instance role through the fake IMDS (role=true). An empty value
  // means unset.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> environment(bool role) const;
  void expire_imds_tokens();
};

// tests/cloud/fake_gcp_azure.py: Google Cloud DNS + the GCE metadata server, Azure DNS + Azure
// IMDS, with bearer tokens only the fake's metadata services issue.
class fake_gcp_azure final : public fake_endpoints {
 public:
  explicit fake_gcp_azure(fake_aws_options opts = {});

  // Google project tandem-test with managed zone example-zone (example.com.); Azure subscription
  // 00000000-0000-0000-0000-0000000000aa, resource group tandem-rg, zone example.com. No records.
  static nlohmann::json default_state();

  [[nodiscard]] std::string metadata_endpoint() const { return second_endpoint(); }
  // GCE_METADATA_HOST, AZURE_POD_IDENTITY_AUTHORITY_HOST and SSL_CERT_FILE for this fake.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> environment() const;
  void expire_tokens();
};

}  // namespace tandem::lab
