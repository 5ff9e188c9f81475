// SPDX-License-Identifier: Apache-2.0
// The fake AWS endpoints as a test fixture.
#include "tests/lab/fake_aws.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tandem::lab {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs f on a thread that has entered network namespace `netns` (empty: this one), so that the
// control calls reach a fake inside a lab host. A lab address must never be dialled from the
// caller's own namespace: there it would leave the machine.
template <typename F>
ctl::cloud::http_reply in_netns(const std::string& netns, F f) {
  if (netns.empty()) return f();
  std::optional<ctl::cloud::http_reply> out;
  std::exception_ptr err;
  std::thread t([&] {
    try {
      const int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw std::runtime_error("fake_aws: cannot open netns " + netns);
      const int rc = ::setns(fd, CLONE_NEWNET);
      ::close(fd);
      if (rc != 0) throw std::runtime_error("fake_aws: cannot enter netns " + netns);
      out = f();
    } catch (...) {
      err = std::current_exception();
    }
  });
  t.join();
  if (err) std::rethrow_exception(err);
  return std::move(*out);
}

}  // namespace

json fake_aws::default_state() {
  return {
      {"region", "us-east-1"},
      {"accounts", {{fake_access_key, {{"secret", fake_secret_key}}}}},
      {"imds",
       {{"instance_id", "i-0fake0000000000001"},
        {"region", "us-east-1"},
        {"az", "us-east-1a"},
        {"role", "tandem-node"},
        {"macs", json::object()}}},
      {"vpcs", json::array({{{"vpc_id", "vpc-0fake0000000000001"},
                             {"cidr_blocks", json::array({"10.0.0.0/16", "10.1.0.0/16"})}}})},
      {"route_tables",
       json::array({
           {{"route_table_id", "rtb-0public000000000001"},
            {"vpc_id", "vpc-0fake0000000000001"},
            {"routes", json::array({{{"destination_cidr", "10.0.0.0/16"},
                                     {"gateway_id", "local"},
                                     {"state", "active"}},
                                    {{"destination_cidr", "10.200.0.10/32"},
                                     {"network_interface_id", "eni-0aaaaaaaaaaaaaaaa"},
                                     {"state", "active"}}})}},
           {{"route_table_id", "rtb-0private00000000002"},
            {"vpc_id", "vpc-0fake0000000000001"},
            {"routes", json::array({{{"destination_cidr", "10.0.0.0/16"},
                                     {"gateway_id", "local"},
                                     {"state", "active"}},
                                    {{"destination_cidr", "10.200.0.10/32"},
                                     {"network_interface_id", "eni-0aaaaaaaaaaaaaaaa"},
                                     {"state", "active"}}})}},
           {{"route_table_id", "rtb-0other000000000003"},
            {"vpc_id", "vpc-0fake0000000000001"},
            {"routes", json::array({{{"destination_cidr", "10.0.0.0/16"},
                                     {"gateway_id", "local"},
                                     {"state", "active"}}})}},
       })},
      {"enis", json::array({{{"eni_id", "eni-0aaaaaaaaaaaaaaaa"},
                             {"instance_id", "i-0fake0000000000001"},
                             {"private_ip", "10.0.1.10"}},
                            {{"eni_id", "eni-0bbbbbbbbbbbbbbbb"},
                             {"instance_id", "i-0fake0000000000002"},
                             {"private_ip", "10.0.2.10"}}})},
      {"addresses", json::array({{{"allocation_id", "eipalloc-0fake00000000001"},
                                  {"public_ip", "198.51.100.7"}}})},
      {"zones", json::array({{{"zone_name", "us-east-1a"},
                              {"zone_id", "use1-az1"},
                              {"state", "available"},
                              {"messages", json::array()}},
                             {{"zone_name", "us-east-1b"},
                              {"zone_id", "use1-az2"},
                              {"state", "impaired"},
                              {"messages", json::array({"Power loss in one facility"})}}})},
      {"hosted_zones",
       {{"Z0FAKE000000000000001", {{"name", "example.com."}, {"records", json::array()}}}}},
      {"insync_after_polls", 1},
      {"sns_topics", json::array({"arn:aws:sns:us-east-1:123456789012:tandem-alerts"})},
  };
}

fake_endpoints::fake_endpoints(const std::string& script, const std::string& second_port_flag,
                               const std::string& second_port_key, fake_aws_options opts,
                               const json& default_state)
    : netns_(opts.netns), listen_(opts.listen) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tdm-fake-cloud-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("fake_aws: mkdtemp failed");
  dir_ = tmpl;
  try {
    std::vector<std::string> ca = {"/bin/bash", TANDEM_SOURCE_DIR "/tests/cloud/make_test_ca.sh",
                                   dir_};
    for (const std::string& ip : opts.extra_ips)
      ca.push_back(ip);
    if (opts.listen != "127.0.0.1") ca.push_back(opts.listen);
    ctl::run_checked(ca, 30s);
    ca_file_ = dir_ + "/ca.pem";
    {
      std::ofstream out(dir_ + "/state.json");
      out << (opts.state.is_null() ? default_state : opts.state).dump(2);
    }
    log_path_ = dir_ + "/fake.log";
    ctl::spawn_options o;
    o.argv = {"/usr/bin/python3",
              TANDEM_SOURCE_DIR "/tests/cloud/" + script,
              "--cert",
              dir_ + "/server.pem",
              "--key",
              dir_ + "/server.key",
              "--state",
              dir_ + "/state.json",
              "--listen",
              opts.listen,
              "--ready-file",
              dir_ + "/ready.json",
              "--port",
              std::to_string(opts.port),
              second_port_flag,
              std::to_string(opts.imds_port)};
    o.netns = opts.netns;
    o.output_path = log_path_;
    proc_ = std::make_unique<ctl::process>(ctl::process::spawn(o));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!std::filesystem::exists(dir_ + "/ready.json")) {
      if (std::chrono::steady_clock::now() > deadline || !proc_->running())
        throw std::runtime_error(script + " did not start:\n" + slurp(log_path_));
      std::this_thread::sleep_for(10ms);
    }
    const json ready = json::parse(slurp(dir_ + "/ready.json"));
    https_port_ = ready.at("https_port").get<int>();
    second_port_ = ready.at(second_port_key).get<int>();
    ctl::cloud::http_settings hs;
    hs.ca_file = ca_file_;
    hs.use_proxy = false;
    http_ = ctl::cloud::make_curl_client(hs);
  } catch (...) {
    if (proc_) (void)proc_->stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    throw;
  }
}

fake_endpoints::~fake_endpoints() {
  if (proc_) (void)proc_->stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string fake_endpoints::endpoint() const {
  return "https://" + listen_ + ":" + std::to_string(https_port_);
}

std::string fake_endpoints::second_endpoint() const {
  return "http://" + listen_ + ":" + std::to_string(second_port_);
}

fake_aws::fake_aws(fake_aws_options opts)
    : fake_endpoints("fake_aws.py", "--imds-port", "imds_port", std::move(opts), default_state()) {}

std::vector<std::pair<std::string, std::string>> fake_aws::environment(bool role) const {
  std::vector<std::pair<std::string, std::string>> env = {
      {"AWS_CA_BUNDLE", ca_file_},
      {"AWS_SHARED_CREDENTIALS_FILE", dir_ + "/no-credentials"},
      {"AWS_CONFIG_FILE", dir_ + "/no-config"},
      {"AWS_REGION", "us-east-1"},
      {"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds_endpoint()},
  };
  if (role) {
    env.emplace_back("AWS_ACCESS_KEY_ID", "");
    env.emplace_back("AWS_SECRET_ACCESS_KEY", "");
    env.emplace_back("AWS_EC2_METADATA_DISABLED", "false");
  } else {
    env.emplace_back("AWS_ACCESS_KEY_ID", fake_access_key);
    env.emplace_back("AWS_SECRET_ACCESS_KEY", fake_secret_key);
    env.emplace_back("AWS_EC2_METADATA_DISABLED", "true");
  }
  return env;
}

json fake_endpoints::control(const std::string& method, const std::string& path,
                             const std::string& body) {
  ctl::cloud::http_call c;
  c.method = method;
  c.url = endpoint() + path;
  if (!body.empty()) c.headers.emplace_back("Content-Type", "application/json");
  c.body = body;
  c.total_timeout = 5s;
  ctl::cloud::http_reply r = in_netns(netns_, [&] { return http_->send(c); });
  if (r.status != 200)
    throw std::runtime_error("fake " + method + " " + path + ": " +
                             (r.status == 0 ? r.error : "HTTP " + std::to_string(r.status)) + " " +
                             r.body);
  return r.body.empty() ? json() : json::parse(r.body);
}

json fake_endpoints::state() {
  return control("GET", "/_fake/state", "");
}
void fake_endpoints::set_state(const json& keys) {
  (void)control("POST", "/_fake/state", keys.dump());
}
void fake_endpoints::fault(const json& f) {
  (void)control("POST", "/_fake/faults", f.dump());
}
void fake_endpoints::clear_faults() {
  (void)control("DELETE", "/_fake/faults", "");
}
void fake_aws::expire_imds_tokens() {
  (void)control("POST", "/_fake/imds/expire_tokens", "");
}
json fake_endpoints::calls() {
  return control("GET", "/_fake/calls", "");
}
void fake_endpoints::reset_calls() {
  (void)control("POST", "/_fake/reset_calls", "");
}

int fake_endpoints::count(const std::string& action) {
  int n = 0;
  for (const json& c : calls())
    if (c.value("action", "") == action) ++n;
  return n;
}

std::string fake_endpoints::log() const {
  return slurp(log_path_);
}

fake_gcp_azure::fake_gcp_azure(fake_aws_options opts)
    : fake_endpoints("fake_gcp_azure.py", "--metadata-port", "metadata_port", std::move(opts),
                     default_state()) {}

json fake_gcp_azure::default_state() {
  json zone = json::object();
  zone["dns_name"] = "example.com.";
  zone["records"] = json::array();
  json gcp = json::object();
  gcp["project"] = "tandem-test";
  gcp["zones"] = json::object();
  gcp["zones"]["example-zone"] = zone;
  json az_zone = json::object();
  az_zone["records"] = json::array();
  json azure = json::object();
  azure["subscription"] = "00000000-0000-0000-0000-0000000000aa";
  azure["resource_group"] = "tandem-rg";
  azure["zones"] = json::object();
  azure["zones"]["example.com"] = az_zone;
  json st = json::object();
  st["gcp"] = gcp;
  st["azure"] = azure;
  st["done_after_polls"] = 1;
  return st;
}

std::vector<std::pair<std::string, std::string>> fake_gcp_azure::environment() const {
  return {{"GCE_METADATA_HOST", listen_ + ":" + std::to_string(second_port_)},
          {"AZURE_POD_IDENTITY_AUTHORITY_HOST", metadata_endpoint()},
          {"SSL_CERT_FILE", ca_file_}};
}

void fake_gcp_azure::expire_tokens() {
  (void)control("POST", "/_fake/expire_tokens", "");
}

}  // namespace tandem::lab
