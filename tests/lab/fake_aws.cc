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
  };
}

fake_aws::fake_aws(fake_aws_options opts) : netns_(opts.netns), listen_(opts.listen) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tdm-fake-aws-XXXXXX").string();
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
      out << (opts.state.is_null() ? default_state() : opts.state).dump(2);
    }
    log_path_ = dir_ + "/fake_aws.log";
    ctl::spawn_options o;
    o.argv = {"/usr/bin/python3",
              TANDEM_SOURCE_DIR "/tests/cloud/fake_aws.py",
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
              "--imds-port",
              std::to_string(opts.imds_port)};
    o.netns = opts.netns;
    o.output_path = log_path_;
    proc_ = std::make_unique<ctl::process>(ctl::process::spawn(o));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!std::filesystem::exists(dir_ + "/ready.json")) {
      if (std::chrono::steady_clock::now() > deadline || !proc_->running())
        throw std::runtime_error("fake_aws did not start:\n" + slurp(log_path_));
      std::this_thread::sleep_for(10ms);
    }
    const json ready = json::parse(slurp(dir_ + "/ready.json"));
    https_port_ = ready.at("https_port").get<int>();
    imds_port_ = ready.at("imds_port").get<int>();
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

fake_aws::~fake_aws() {
  if (proc_) (void)proc_->stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string fake_aws::endpoint() const {
  return "https://" + listen_ + ":" + std::to_string(https_port_);
}

std::string fake_aws::imds_endpoint() const {
  return "http://" + listen_ + ":" + std::to_string(imds_port_);
}

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

json fake_aws::control(const std::string& method, const std::string& path,
                       const std::string& body) {
  ctl::cloud::http_call c;
  c.method = method;
  c.url = endpoint() + path;
  if (!body.empty()) c.headers.emplace_back("Content-Type", "application/json");
  c.body = body;
  c.total_timeout = 5s;
  ctl::cloud::http_reply r = in_netns(netns_, [&] { return http_->send(c); });
  if (r.status != 200)
    throw std::runtime_error("fake_aws " + method + " " + path + ": " +
                             (r.status == 0 ? r.error : "HTTP " + std::to_string(r.status)) + " " +
                             r.body);
  return r.body.empty() ? json() : json::parse(r.body);
}

json fake_aws::state() {
  return control("GET", "/_fake/state", "");
}
void fake_aws::set_state(const json& keys) {
  (void)control("POST", "/_fake/state", keys.dump());
}
void fake_aws::fault(const json& f) {
  (void)control("POST", "/_fake/faults", f.dump());
}
void fake_aws::expire_imds_tokens() {
  (void)control("POST", "/_fake/imds/expire_tokens", "");
}
json fake_aws::calls() {
  return control("GET", "/_fake/calls", "");
}
void fake_aws::reset_calls() {
  (void)control("POST", "/_fake/reset_calls", "");
}

int fake_aws::count(const std::string& action) {
  int n = 0;
  for (const json& c : calls())
    if (c.value("action", "") == action) ++n;
  return n;
}

std::string fake_aws::log() const {
  return slurp(log_path_);
}

}  // namespace tandem::lab
